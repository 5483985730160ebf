// (core) The REST API's contract as zod schemas: what each route takes and answers. The answers'
// TypeScript types (RunView, CallView, …) are inferred from these schemas, and the OpenAPI document
// (docs/openapi.json, built by tools/openapi) is generated from them, so the shape is written once.
// The request schemas describe what the validators in leads.ts and run-options.ts accept; those
// validators, not these schemas, report the errors (by row, CSV line and deployment bound).
// `.meta({ id })` names a schema as an OpenAPI component; `description` and `examples` are shown to
// readers of the document.

import { z } from 'zod';
import { ID, PHONE_TYPES } from '../definitions/formats.ts';
import { WEEKDAYS } from './calling-window.ts';
import { MAX_LEAD_BYTES } from './leads.ts';
import {
  ANSWERED_BY,
  MACHINE_DETECTION_MODES,
  MACHINE_OUTCOME,
  ON_MACHINE_MODES,
} from './machine-detection.ts';
import {
  FREQUENCY_CAP_MODES,
  MAX_OPT_OUT_MESSAGE,
  OPT_OUT_DIGIT,
  PAUSE_WHEN_LIMITS,
  RETRY_DEFAULTS,
  RETRY_LIMITS,
  RETRYABLE_OUTCOMES,
  SCHEDULE_HORIZON_DAYS,
} from './run-options.ts';
import { FINAL_STATES, JOB_STATES, LIVE_STATES } from './states.ts';

/** Items per page of GET /runs and GET /runs/{run_id}/calls: by default, and at most. */
export const PAGE_DEFAULT = 50;
export const PAGE_MAX = 100;

/**
 * Final statuses, and the outcomes a lead can end with (Twilio's, `rejected` for a refused number,
 * `frequency_capped` for a number over its cap: calling those again in a later window is the point;
 * `machine` for a call a machine or fax answered).
 */
export const FROM_RUN_OUTCOMES = [
  ...FINAL_STATES,
  'busy',
  'no-answer',
  'rejected',
  'frequency_capped',
  MACHINE_OUTCOME,
] as const;

const RUN_ID_EXAMPLE = '3f1c9a4e-7b2d-4c55-9e0a-1d2b3c4d5e6f';
const TIME = '2026-11-29T09:30:00.000Z';

// ---- Shared pieces ----------------------------------------------------------------------------

export const RunId = z
  .string()
  .regex(ID)
  .meta({ description: 'The run’s id, as `POST /runs` answered it (a UUID).', example: RUN_ID_EXAMPLE });

export const JobId = z
  .string()
  .regex(/^\d{6,}$/)
  .meta({
    description: 'A lead’s place in its run, zero-padded so that ids sort in lead order.',
    example: '000042',
  });

const Timestamp = z.iso.datetime().meta({ description: 'An ISO 8601 time, UTC.', example: TIME });

export const RunStatus = z
  .enum(['scheduled', 'running', 'paused', 'canceling', 'canceled', 'completed'])
  .meta({
    id: 'RunStatus',
    description:
      '`scheduled` waits for its `start_at` (then `running`); `running` dials; `paused` dials nothing new ' +
      '(`pause_reason` says why when the run paused itself); `canceling` was canceled and still has leads ' +
      'that are not final; `completed` and `canceled` are terminal: every lead final, no slot held.',
  });

export const JobStatus = z.enum(JOB_STATES).meta({
  id: 'JobStatus',
  description:
    '`queued` waits for a slot (or its retry delay, or its calling window); `dialing` (Twilio queued, ' +
    'initiated, ringing) and `calling` (in progress) hold a slot; `completed`, `failed` and `canceled` are final.',
});

const Weekday = z.enum(WEEKDAYS);
const MachineDetection = z.enum(MACHINE_DETECTION_MODES).meta({
  id: 'MachineDetection',
  description:
    'Answering-machine detection, Twilio’s modes, always asynchronous (the callee hears the run’s content ' +
    'at once): `Enable` tells as soon as it knows, `DetectMessageEnd` waits for a machine’s greeting to ' +
    'end (for `voicemail_twiml`/`voicemail_url`). A call a machine or fax answered ends with outcome ' +
    '`machine` (failed), which `retry.on` may name.',
});
const OnMachine = z.enum(ON_MACHINE_MODES).meta({
  id: 'OnMachine',
  description:
    'With `machine_detection`: what is done with a call a machine or fax answered that the run leaves ' +
    'no voicemail (a voicemail is left only after a greeting ends, with `DetectMessageEnd`). `hangup` ' +
    '(the default) ends it as soon as the verdict comes, once, so no more talk time is billed and the ' +
    'slot is freed; `continue` plays the run’s content on until the call ends. Either way it ends with ' +
    'outcome `machine`.',
});
const RetryableOutcome = z.enum(RETRYABLE_OUTCOMES);
const LocalTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/);

export const LeadAttributeValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);

// ---- Requests -----------------------------------------------------------------------------------

export const Lead = z
  .looseObject({
    phone: z.string().meta({
      description:
        'E.164 (`+972522345678`), valid for its country (libphonenumber’s full metadata: a number its ' +
        'country does not assign is refused). Spaces, dashes, dots and brackets are dropped and a leading ' +
        '`00` becomes `+`. A number without a country code is refused unless the deployment sets ' +
        '`DEFAULT_COUNTRY` (then `052-234-5678` with `IL` is `+972522345678`). With `phone_types` (the ' +
        'run’s, else the deployment’s `ALLOWED_PHONE_TYPES`), a number of another type is refused. The ' +
        'E.164 form is what is stored and called; the same number twice in one request is refused.',
      example: '+972524118203',
    }),
  })
  .catchall(LeadAttributeValue)
  .meta({
    id: 'Lead',
    description:
      `One person to call: \`phone\`, and any fields of your own (strings, numbers, booleans or null, at most ` +
      `${MAX_LEAD_BYTES} bytes as JSON), kept with the lead and shown in its calls. With a calling window, ` +
      'a `time_zone` field (IANA) overrides the window’s zone for this lead.',
    example: { phone: '+972524118203', name: 'Dana', time_zone: 'Asia/Jerusalem' },
  });

export const RetryRequest = z
  .strictObject({
    on: z
      .array(RetryableOutcome)
      .min(1)
      .meta({ description: 'Outcomes that put the lead back in the queue (distinct).' })
      .optional(),
    delay_seconds: z
      .int()
      .min(0)
      .max(RETRY_LIMITS.maxDelaySeconds)
      .meta({ description: 'Wait after a failed attempt ends before the lead may be dialed again.' })
      .optional(),
    max_attempts: z
      .int()
      .min(1)
      .max(RETRY_LIMITS.maxAttempts)
      .meta({ description: 'Calls per lead in all, the first included (1 = no retry).' })
      .optional(),
  })
  .meta({
    id: 'RetryRequest',
    description:
      `Retries. Defaults: on ${JSON.stringify(RETRY_DEFAULTS.on)}, delay_seconds ${RETRY_DEFAULTS.delaySeconds}, ` +
      `max_attempts ${RETRY_DEFAULTS.maxAttempts}.`,
    example: { on: ['busy', 'no-answer'], delay_seconds: 600, max_attempts: 3 },
  });

export const OptOutRequest = z
  .strictObject({
    digit: z.string().regex(OPT_OUT_DIGIT).meta({ description: 'The key: 0-9, * or #.', example: '9' }),
    message: z
      .string()
      .min(1)
      .max(MAX_OPT_OUT_MESSAGE)
      .meta({
        description:
          'Said inside the same <Gather>: after inline content a Gather can hold, before a TwiML URL’s ' +
          'content or verbs a Gather cannot hold, such as <Dial> (default: “To stop calls from us, press <digit>.”).',
        example: 'To stop these calls, press 9.',
      })
      .nullish(),
  })
  .meta({
    id: 'OptOutRequest',
    description:
      'An opt-out by keypress: the call’s content is played inside a `<Gather numDigits="1">` whose ' +
      'action is dialgate’s webhook; pressing `digit` suppresses the number (reason `opt-out`, with the ' +
      'run and the time) and the callee hears goodbye. Content that cannot be nested in a Gather (a ' +
      '`twiml_url`, or TwiML with verbs other than Say, Play and Pause) is played after the message.',
    example: { digit: '9', message: 'To stop these calls, press 9.' },
  });

export const WindowRequest = z
  .strictObject({
    time_zone: z.string().meta({ description: 'IANA time zone.', example: 'Asia/Jerusalem' }),
    days: z.array(Weekday).min(1).meta({ description: 'Distinct days; all seven when absent.' }).optional(),
    start: LocalTime.meta({ description: 'Local time a call may start from, HH:MM.', example: '09:00' }),
    end: z
      .string()
      .regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/)
      .meta({
        description: 'Local time calls stop starting, HH:MM or 24:00; after `start`.',
        example: '20:00',
      }),
  })
  .meta({
    id: 'WindowRequest',
    description:
      'A calling window: a call may start only on these days between start and end, in the lead’s ' +
      '`time_zone` or else the window’s. Calls already live are not cut at its end.',
    example: {
      time_zone: 'Asia/Jerusalem',
      days: ['sun', 'mon', 'tue', 'wed', 'thu'],
      start: '09:00',
      end: '20:00',
    },
  });

export const PauseWhenRequest = z
  .strictObject({
    failed_ratio: z.number().min(0).max(1).meta({
      description: 'Pause when more than this share of the last `min_calls` attempts failed.',
      example: 0.5,
    }),
    min_calls: z.int().min(1).max(PAUSE_WHEN_LIMITS.maxMinCalls).meta({
      description: 'Attempts judged together: the breaker waits for this many to end.',
      example: 20,
    }),
  })
  .meta({
    id: 'PauseWhen',
    description:
      'The failure breaker: once at least `min_calls` attempts have ended and more than `failed_ratio` of ' +
      'the last `min_calls` of them failed (Twilio outcome `failed`, or the number refused by Twilio), the ' +
      'run pauses itself with a `pause_reason`. Live calls finish; resume as usual. The count starts again ' +
      'at every pause and resume.',
    example: { failed_ratio: 0.5, min_calls: 20 },
  });

const ScheduleTime = z.string().meta({
  description: `An ISO 8601 time with an offset (\`Z\` or \`±HH:MM\`), in the future, at most ${SCHEDULE_HORIZON_DAYS} days ahead.`,
  example: '2026-12-01T09:00:00+02:00',
});

export const FromRun = z
  .strictObject({
    run_id: RunId,
    outcomes: z.array(z.enum(FROM_RUN_OUTCOMES)).min(1).meta({
      description:
        'A final status (`failed` takes busy, no-answer, failed, rejected and machine leads) or outcome.',
    }),
  })
  .meta({
    id: 'FromRun',
    description:
      'Another run’s leads that ended so, read by dialgate (the numbers never leave it), in lead order.',
    example: { run_id: RUN_ID_EXAMPLE, outcomes: ['busy', 'no-answer'] },
  });

/** What a new run may say besides its leads: its cap and its dialer policy. */
const runOptionFields = {
  concurrency: z
    .int()
    .min(1)
    .meta({
      description:
        'Calls live at once (dialing or in a call), at most the deployment’s `maxConcurrency` (20 by ' +
        'default); the deployment’s `defaultConcurrency` (3) when absent.',
      example: 3,
    })
    .nullish(),
  retry: RetryRequest.nullish(),
  window: WindowRequest.nullish(),
  from: z
    .string()
    .meta({
      description:
        'Caller id, read as a lead’s phone is (valid for its country; national with `DEFAULT_COUNTRY`) ' +
        'and compared in E.164: the deployment’s own number or one of its `allowedFromNumbers`.',
      example: '+15005550006',
    })
    .nullish(),
  phone_types: z
    .array(z.enum(PHONE_TYPES))
    .min(1)
    .meta({
      description:
        'The number types this run’s leads (appended ones too) may be, libphonenumber’s (distinct); a ' +
        'lead of another type is refused by row. Within the deployment’s `ALLOWED_PHONE_TYPES` when it ' +
        'sets them, which apply when this is absent. US and Canadian numbers are `fixed_line_or_mobile`.',
      example: ['mobile'],
    })
    .nullish(),
  frequency_cap: z
    .enum(FREQUENCY_CAP_MODES)
    .meta({
      description:
        'A lead whose number has had the deployment’s `RECIPIENT_MAX_CALLS` calls in its window (across ' +
        'all runs): `end` (the default) ends it uncalled with outcome `frequency_capped`; `wait` keeps it ' +
        'queued until the number’s next window opens.',
      example: 'wait',
    })
    .nullish(),
  opt_out: OptOutRequest.nullish(),
  twiml_url: z
    .url()
    .meta({
      description:
        'What the callee hears: a TwiML URL under one of the deployment’s `twimlUrlAllowedPrefixes`. ' +
        'Twilio requests it (POST, its call parameters in the body) with dialgate’s in the query string: ' +
        '`run_id`, `job_id`, `attempt`, and each of the lead’s fields as `lead_<name>` (null as empty). ' +
        'Not with `twiml`.',
    })
    .nullish(),
  twiml: z
    .string()
    .meta({
      description:
        'Inline TwiML (`<Response>…</Response>`), at most the deployment’s `maxTwimlBytes` (0 by default: ' +
        'refused). A template of the lead’s fields: `{{name}}`, or `{{name|default}}` for leads without ' +
        'one (absent or null); `{{phone}}` is the lead’s number. Values are XML-escaped. A field some lead ' +
        'lacks without a default is refused with the run (400 naming the field and the row), and so is a ' +
        'lead whose filled-in TwiML passes Twilio’s 4000 bytes.',
      example: '<Response><Say>Hello {{name|there}}, this is Acme.</Say></Response>',
    })
    .nullish(),
  start_at: ScheduleTime.meta({
    description:
      'Nothing is dialed before this time; the run is `scheduled` until then. ISO 8601 with an offset, ' +
      `in the future, at most ${SCHEDULE_HORIZON_DAYS} days ahead.`,
    example: '2026-12-01T09:00:00+02:00',
  }).nullish(),
  expires_at: ScheduleTime.meta({
    description:
      'No call starts after this time: leads not final by then end with outcome `expired` (calls live ' +
      'then finish) and the run completes. ISO 8601 with an offset, in the future and after `start_at`.',
    example: '2026-12-01T20:00:00+02:00',
  }).nullish(),
  pause_when: PauseWhenRequest.nullish(),
  machine_detection: MachineDetection.nullish(),
  voicemail_twiml: z
    .string()
    .meta({
      description:
        'With `machine_detection: DetectMessageEnd`: inline TwiML a machine is left once its greeting ' +
        'ends (the live call is redirected to it), at most the deployment’s `maxTwimlBytes`; a template ' +
        'of the lead’s fields as `twiml` is. Not with `voicemail_url`.',
      example: '<Response><Say>Sorry we missed you. We will call again tomorrow.</Say></Response>',
    })
    .nullish(),
  voicemail_url: z
    .url()
    .meta({
      description:
        'With `machine_detection: DetectMessageEnd`: a TwiML URL (under `twimlUrlAllowedPrefixes`) the ' +
        'live call is redirected to once a machine’s greeting ends, with the parameters of `twiml_url`. ' +
        'Not with `voicemail_twiml`.',
    })
    .nullish(),
  on_machine: OnMachine.nullish(),
};

export const RunRequest = z
  .union([
    z.object({
      leads: z.array(Lead).min(1).meta({
        description: 'At most the deployment’s `maxLeadsPerRun` (100,000 by default); more is 413.',
      }),
      from_run: z.never().optional(),
      ...runOptionFields,
    }),
    z.object({
      from_run: FromRun,
      leads: z.never().optional(),
      ...runOptionFields,
    }),
  ])
  .meta({
    id: 'RunRequest',
    description:
      'A new run: its leads, or another run’s by outcome (`from_run`, e.g. to call the busy ones again), ' +
      'and, optionally, its cap and dialer policy.',
    example: {
      concurrency: 3,
      leads: [{ phone: '+972524118203', name: 'Dana' }, { phone: '+14155550123' }],
      retry: { on: ['busy', 'no-answer'], delay_seconds: 600, max_attempts: 3 },
    },
  });

export const AppendLeadsRequest = z.strictObject({ leads: z.array(Lead).min(1) }).meta({
  id: 'AppendLeadsRequest',
  description: 'More leads for a running or paused run; they take the run’s own options.',
  example: { leads: [{ phone: '+972536651094', name: 'Noa' }] },
});

export const LeadsCsv = z.string().meta({
  id: 'LeadsCsv',
  description:
    'A header row with a `phone` column (any case), then one lead per row; every other column is a lead ' +
    'field (an empty cell is an absent field). UTF-8, a byte order mark allowed. Problems are named by ' +
    'line, counting the header as line 1.',
  example: 'phone,name,time_zone\n+972524118203,Dana,Asia/Jerusalem\n+14155550123,Sam,America/Los_Angeles\n',
});

// ---- Answers ------------------------------------------------------------------------------------

export const RetryView = z
  .strictObject({
    on: z.array(RetryableOutcome),
    delay_seconds: z.int(),
    max_attempts: z.int(),
  })
  .meta({ id: 'RetryView', description: 'The run’s retry policy, defaults filled in.' });

export const WindowView = z
  .strictObject({
    time_zone: z.string(),
    days: z.array(Weekday),
    start: z.string(),
    end: z.string(),
  })
  .meta({ id: 'WindowView', description: 'The run’s calling window, days filled in.' });

export const LiveCallView = z
  .strictObject({
    job_id: JobId,
    attempt: z.int().min(1),
    state: z.enum(LIVE_STATES),
    since: Timestamp.meta({ description: 'When the slot was taken.' }),
  })
  .meta({ id: 'LiveCall', description: 'A held slot: whose call it is, and since when.' });

const Count = z.int().min(0);

export const RunView = z
  .strictObject({
    run_id: RunId,
    status: RunStatus,
    created_at: Timestamp,
    total_leads: Count.meta({ description: 'Leads accepted, appended ones included.' }),
    concurrency: z.int().min(1).meta({ description: 'The cap: calls live at once, at most.' }),
    queued: Count.meta({ description: 'Leads waiting for a slot (or their retry delay or window).' }),
    in_progress: Count.meta({
      description: '`dialing` + `calling`: slots held now, never above `concurrency`.',
    }),
    dialing: Count,
    calling: Count,
    completed: Count,
    failed: Count,
    canceled: Count,
    pending_ingest: Count.meta({ description: 'Leads accepted and still on their way into the run.' }),
    outcomes: z.record(z.string(), Count).meta({
      description: 'Final leads by outcome (`completed`, `busy`, `no-answer`, `failed`, `canceled`, …).',
    }),
    live: z.array(LiveCallView).meta({ description: 'Every held slot, oldest first.' }),
    retry: RetryView.nullable(),
    window: WindowView.nullable(),
    from: z.string().nullable().meta({ description: 'Caller id; null: the deployment’s own.' }),
    twiml_url: z.string().nullable(),
    twiml: z.string().nullable(),
    phone_types: z.array(z.enum(PHONE_TYPES)).nullable().meta({
      description: 'The run’s own number types; null: the deployment’s (any type when it sets none).',
    }),
    pause_reason: z
      .string()
      .nullable()
      .meta({
        description:
          'Why a paused run paused itself (the failure breaker, or Twilio refusing its caller id or ' +
          'content); null when a person paused it, or when it is not paused.',
      }),
    start_at: Timestamp.nullable().meta({ description: 'Nothing is dialed before this time (UTC).' }),
    expires_at: Timestamp.nullable().meta({
      description: 'No call starts after this time (UTC); leads not final then end `expired`.',
    }),
    pause_when: z
      .strictObject({ failed_ratio: z.number(), min_calls: z.int() })
      .nullable()
      .meta({ description: 'The failure breaker, as asked for.' }),
    frequency_cap: z.enum(FREQUENCY_CAP_MODES).meta({
      description: 'What a lead over the frequency cap does: `end` uncalled, or `wait` for its window.',
    }),
    opt_out: z
      .strictObject({ digit: z.string(), message: z.string().nullable() })
      .nullable()
      .meta({ description: 'The run’s opt-out by keypress; null: none.' }),
    machine_detection: MachineDetection.nullable(),
    voicemail_twiml: z.string().nullable(),
    voicemail_url: z.string().nullable(),
    on_machine: OnMachine.nullable().meta({
      description:
        'With `machine_detection`: `hangup` or `continue` (a run created before the option existed plays ' +
        'on: `continue`); null without detection.',
    }),
  })
  .meta({
    id: 'RunView',
    description: 'A run’s progress, its held slots and its options.',
    example: {
      run_id: RUN_ID_EXAMPLE,
      status: 'running',
      created_at: TIME,
      total_leads: 100,
      concurrency: 3,
      queued: 55,
      in_progress: 3,
      dialing: 1,
      calling: 2,
      completed: 38,
      failed: 4,
      canceled: 0,
      pending_ingest: 0,
      outcomes: { completed: 38, busy: 3, 'no-answer': 1 },
      live: [
        { job_id: '000041', attempt: 1, state: 'calling', since: '2026-11-29T09:41:02.114Z' },
        { job_id: '000044', attempt: 1, state: 'calling', since: '2026-11-29T09:41:20.530Z' },
        { job_id: '000046', attempt: 2, state: 'dialing', since: '2026-11-29T09:41:31.008Z' },
      ],
      retry: { on: ['busy', 'no-answer'], delay_seconds: 600, max_attempts: 3 },
      window: null,
      from: null,
      twiml_url: null,
      twiml: null,
      phone_types: null,
      pause_reason: null,
      start_at: null,
      expires_at: null,
      pause_when: null,
      frequency_cap: 'end',
      opt_out: { digit: '9', message: null },
      machine_detection: null,
      voicemail_twiml: null,
      voicemail_url: null,
      on_machine: null,
    },
  });

export const CreatedRun = z
  .strictObject({
    run_id: RunId,
    status: RunStatus,
    total_leads: Count,
    concurrency: z.int().min(1),
  })
  .meta({
    id: 'CreatedRun',
    description: 'The run was created (or, for a retried Idempotency-Key, found) and its leads queued.',
    example: { run_id: RUN_ID_EXAMPLE, status: 'running', total_leads: 2, concurrency: 3 },
  });

export const AppendedLeads = RunView.extend({
  appended: z.int().min(1).meta({ description: 'Leads added by this request.' }),
  first_job_id: JobId.meta({ description: 'The first appended lead’s job id; the others follow in order.' }),
}).meta({
  id: 'AppendedLeads',
  description: 'The run after the append, with what was added.',
});

const Cursor = z
  .string()
  .nullable()
  .meta({ description: 'Pass it back as `cursor` for the next page; null on the last page.' });

export const RunList = z
  .strictObject({ runs: z.array(RunView), next_cursor: Cursor })
  .meta({ id: 'RunList', description: 'A page of runs, newest first.' });

export const CallView = z
  .strictObject({
    job_id: JobId,
    phone: z.string().meta({
      description: 'Masked (`+972*******03`) unless `reveal_phone=true`.',
      example: '+972*******03',
    }),
    status: JobStatus,
    attempts: Count.meta({ description: 'Calls placed for this lead so far, the current one included.' }),
    outcome: z
      .string()
      .nullable()
      .meta({ description: 'The last finished attempt’s outcome (`completed`, `busy`, …).' }),
    error_code: z.int().nullable().meta({ description: 'Twilio’s error code, when a create was refused.' }),
    call_sid: z.string().nullable(),
    answered_by: z
      .string()
      .nullable()
      .meta({
        description:
          `With \`machine_detection\`: who answered the latest call, Twilio’s AnsweredBy (${ANSWERED_BY.map((v) => `\`${v}\``).join(', ')}); ` +
          'null when detection did not run or has not told yet.',
        example: 'human',
      }),
    queued_at: Timestamp,
    dialed_at: Timestamp.nullable(),
    answered_at: Timestamp.nullable(),
    ended_at: Timestamp.nullable(),
    next_attempt_at: Timestamp.nullable().meta({
      description: 'While queued: the earliest time it will be dialed (a retry’s delay, a closed window).',
    }),
    attributes: z.record(z.string(), LeadAttributeValue).meta({ description: 'The lead’s own fields.' }),
  })
  .meta({
    id: 'CallView',
    description: 'One lead of a run and its latest call.',
    example: {
      job_id: '000000',
      phone: '+972*******03',
      status: 'completed',
      attempts: 1,
      outcome: 'completed',
      error_code: null,
      call_sid: 'CA0123456789abcdef0123456789abcdef',
      answered_by: null,
      queued_at: '2026-11-29T09:30:00.412Z',
      dialed_at: '2026-11-29T09:30:01.020Z',
      answered_at: '2026-11-29T09:30:07.881Z',
      ended_at: '2026-11-29T09:31:12.330Z',
      next_attempt_at: null,
      attributes: { name: 'Dana' },
    },
  });

export const CallList = z.strictObject({ calls: z.array(CallView), next_cursor: Cursor }).meta({
  id: 'CallList',
  description:
    'A page of a run’s leads, in lead order. With a `status` filter a page may be shorter than `limit` ' +
    'while `next_cursor` is still set.',
});

export const ErrorCode = z
  .enum([
    'invalid_request',
    'unauthorized',
    'forbidden',
    'not_found',
    'method_not_allowed',
    'conflict',
    'payload_too_large',
    'unsupported_media_type',
    'idempotency_key_reused',
    'queueing_incomplete',
    'internal_error',
  ])
  .meta({ id: 'ErrorCode' });

export const ErrorDetail = z
  .strictObject({
    field: z.string().meta({
      description:
        'Where the problem is: a path into the request (`leads[3].phone`, `retry.on`), a CSV column, a parameter.',
      example: 'leads[3].phone',
    }),
    row: z.int().min(0).meta({ description: '0-based index of the lead the detail is about.' }).optional(),
    line: z
      .int()
      .min(1)
      .meta({ description: 'For a CSV upload: the line the row starts on (the header is line 1).' })
      .optional(),
    message: z.string(),
  })
  .meta({ id: 'ErrorDetail' });

export const ErrorBody = z
  .strictObject({
    error: z.strictObject({
      code: ErrorCode,
      message: z.string().meta({ description: 'For a person; may change. Switch on `code`.' }),
      details: z
        .array(ErrorDetail)
        .meta({ description: 'Every problem found (the first 50 leads’ at most).' }),
    }),
  })
  .meta({
    id: 'Error',
    description: 'Every error dialgate itself answers has this shape.',
    example: {
      error: {
        code: 'invalid_request',
        message: '2 lead(s) are invalid; nothing was created.',
        details: [
          {
            field: 'leads[3].phone',
            row: 3,
            message: 'not a valid number in IL: no such range there',
          },
          { field: 'leads[5].phone', row: 5, message: 'the same number as leads[1]' },
        ],
      },
    },
  });

export const QueueingIncompleteBody = z
  .strictObject({
    error: z.strictObject({
      code: z.literal('queueing_incomplete'),
      message: z.string(),
      details: z.array(ErrorDetail),
      run_id: RunId.meta({ description: 'The run that exists now.' }),
      queued_leads: Count.meta({ description: 'Of this request’s leads, those known to be queued.' }),
      leads: Count.meta({ description: 'This request’s leads.' }),
      retryable: z.boolean().meta({
        description:
          'Whether sending the same request again finishes it: only with an Idempotency-Key (no lead is called ' +
          'twice); otherwise cancel the run.',
      }),
    }),
  })
  .meta({
    id: 'QueueingIncomplete',
    description:
      'The run was accepted (or the leads reserved on it) but not all of the leads reached the queue.',
    example: {
      error: {
        code: 'queueing_incomplete',
        message:
          'Run 3f1c9a4e-7b2d-4c55-9e0a-1d2b3c4d5e6f was accepted but only 90 of these 200 lead(s) are known to be ' +
          'queued; send the same request again with the same Idempotency-Key to queue the rest (no lead is called twice).',
        details: [],
        run_id: RUN_ID_EXAMPLE,
        queued_leads: 90,
        leads: 200,
        retryable: true,
      },
    },
  });

export const GatewayError = z.looseObject({ message: z.string() }).meta({
  id: 'GatewayError',
  description:
    'An answer of API Gateway itself, before dialgate runs: a missing or bad signature or API key (403), ' +
    'throttling (429), a body over 10 MB (413).',
  example: { message: 'Forbidden' },
});

// ---- The suppression list ---------------------------------------------------------------------

const SUPPRESSION_REASON_DESCRIPTION =
  'Why: `opt-out` (the callee pressed the run’s opt-out digit, or your own TwiML app says so), or a ' +
  'word of your own (`dnc-registry`, `complaint`); a letter, then up to 63 letters, digits, spaces or ' +
  '`-_.:`. Default `manual`.';

export const SuppressionRequest = z
  .strictObject({
    reason: z.string().meta({ description: SUPPRESSION_REASON_DESCRIPTION, example: 'opt-out' }).nullish(),
    expires_at: Timestamp.meta({
      description: 'The number may be called again from this time (in the future); absent = for good.',
    }).nullish(),
    run_id: RunId.meta({
      description: 'The run whose call the callee opted out of, for the record.',
    }).nullish(),
  })
  .meta({
    id: 'SuppressionRequest',
    description: 'Optional details of a suppression; an empty body (or none) suppresses for good.',
    example: { reason: 'opt-out', run_id: RUN_ID_EXAMPLE },
  });

export const SuppressionView = z
  .strictObject({
    phone: z.string().meta({ description: 'E.164, as stored and checked.', example: '+972524118203' }),
    reason: z.string(),
    run_id: RunId.nullable(),
    created_at: Timestamp,
    expires_at: Timestamp.nullable(),
  })
  .meta({
    id: 'Suppression',
    description:
      'A number dialgate will not call: checked in the same transaction that takes a slot for its lead, so ' +
      'a lead whose number is suppressed before its dial ends with outcome `suppressed`, uncalled.',
    example: {
      phone: '+972524118203',
      reason: 'opt-out',
      run_id: RUN_ID_EXAMPLE,
      created_at: TIME,
      expires_at: null,
    },
  });

export const SuppressionList = z
  .strictObject({ suppressions: z.array(SuppressionView), next_cursor: Cursor })
  .meta({
    id: 'SuppressionList',
    description:
      'A page of the suppression list, in E.164 order (expired ones left out; a page may then be shorter ' +
      'than `limit` while `next_cursor` is still set).',
  });

export const SuppressionsCsv = z.string().meta({
  id: 'SuppressionsCsv',
  description:
    'A header row with a `phone` column (any case) and optionally `reason` and `expires_at`, then one ' +
    'number per row. Every row is checked first: one bad row refuses the file (nothing imported), each ' +
    'problem named by its line (header = line 1).',
  example: 'phone,reason\n+972524118203,dnc-registry\n+14155550123,complaint\n',
});

export const SuppressionsImported = z
  .strictObject({ imported: Count.meta({ description: 'Distinct numbers suppressed (added or replaced).' }) })
  .meta({ id: 'SuppressionsImported', description: 'Every row was imported.', example: { imported: 2 } });

// ---- Query parameters ---------------------------------------------------------------------------

export const PageQuery = z.object({
  limit: z
    .string()
    .regex(/^\d+$/)
    .meta({ description: `Items per page, 1 to ${PAGE_MAX} (default ${PAGE_DEFAULT}).`, example: '50' })
    .optional(),
  cursor: z
    .string()
    .meta({ description: 'Opaque: the previous page’s `next_cursor`, unchanged.' })
    .optional(),
});

export type RunView = z.infer<typeof RunView>;
export type LiveCallView = z.infer<typeof LiveCallView>;
export type CallView = z.infer<typeof CallView>;
export type CreatedRun = z.infer<typeof CreatedRun>;
export type AppendedLeads = z.infer<typeof AppendedLeads>;
export type RunList = z.infer<typeof RunList>;
export type CallList = z.infer<typeof CallList>;
export type ErrorBody = z.infer<typeof ErrorBody>;
export type SuppressionView = z.infer<typeof SuppressionView>;
