// The REST API's OpenAPI 3.1 document, built from the zod schemas of lambdas/core/api-schemas.ts.
// `npm run openapi` writes it to docs/openapi.json, which the api function serves at GET /openapi.json;
// test/unit/openapi.test.ts fails when the committed file and this builder disagree.

import { fileURLToPath } from 'node:url';
import openapiTS from 'openapi-typescript';
import { z } from 'zod';
import {
  createDocument,
  type ZodOpenApiOperationObject,
  type ZodOpenApiParameters,
  type ZodOpenApiResponseObject,
} from 'zod-openapi';
import {
  AppendedLeads,
  AppendLeadsRequest,
  CallList,
  CreatedRun,
  ErrorBody,
  GatewayError,
  JobStatus,
  LeadsCsv,
  PageQuery,
  QueueingIncompleteBody,
  RunId,
  RunList,
  RunRequest,
  RunView,
  SuppressionList,
  SuppressionRequest,
  SuppressionsCsv,
  SuppressionsImported,
  SuppressionView,
} from '../../lambdas/core/api-schemas.ts';
import { LEADS_PER_CHUNK } from '../../lambdas/core/create-run.ts';
import { MACHINE_DETECTION_MODES, ON_MACHINE_MODES } from '../../lambdas/core/machine-detection.ts';
import { RETRYABLE_OUTCOMES } from '../../lambdas/core/run-options.ts';
import { PHONE_TYPES } from '../../lambdas/definitions/formats.ts';

const VERSION = '0.1.0';

// ---- Responses shared by several operations -----------------------------------------------------

const requestId = z.string().meta({
  description: 'The request’s id at API Gateway (and in the access log).',
  example: 'c0ffee00-1d2b-4c55-9e0a-3f1c9a4e7b2d',
  header: { id: 'RequestId' },
});

function json(description: string, schema: z.ZodType, headers = true): ZodOpenApiResponseObject {
  return {
    description,
    ...(headers ? { headers: z.object({ 'x-amzn-RequestId': requestId }) } : {}),
    content: { 'application/json': { schema } },
  };
}

/** An answer of the function's in the error shape, registered as a component response named `id`. */
function error(id: string, description: string, code: string, message: string, details: object[] = []) {
  return {
    id,
    ...json(description, ErrorBody),
    content: {
      'application/json': {
        schema: ErrorBody,
        examples: { [code]: { value: { error: { code, message, details } } } },
      },
    },
  } satisfies ZodOpenApiResponseObject;
}

const invalid = error(
  'InvalidRequest',
  'The request is invalid; `details` names every problem (field, lead row, CSV line). Nothing was changed.',
  'invalid_request',
  '1 lead(s) are invalid; nothing was created.',
  [
    {
      field: 'phone',
      row: 2,
      line: 4,
      message: 'not a valid number in US: no such range there',
    },
  ],
);
const notFound = error('NotFound', 'No run with this id.', 'not_found', 'No run with id "3f1c9a4e".');
const conflict = error(
  'Conflict',
  'The run’s status does not allow it (e.g. resuming a completed run).',
  'conflict',
  'Cannot resume a run that is completed.',
);
const unsupported = error(
  'UnsupportedMediaType',
  'The body is neither `application/json` nor `text/csv`.',
  'unsupported_media_type',
  'Send the body as application/json (got "text/plain").',
);
const tooLarge: ZodOpenApiResponseObject = {
  id: 'PayloadTooLarge',
  description:
    'Too many leads for one run (dialgate’s error, with the count in `details`), or a body over API ' +
    'Gateway’s 10 MB (its own `{message}`).',
  content: {
    'application/json': {
      schema: z.union([ErrorBody, GatewayError]),
      examples: {
        payload_too_large: {
          value: {
            error: {
              code: 'payload_too_large',
              message: 'A run takes at most 100000 leads.',
              details: [{ field: 'leads', message: '100001 leads given, at most 100000 allowed' }],
            },
          },
        },
        gateway: { value: { message: 'Request Too Long' } },
      },
    },
  },
};
const internal = error(
  'InternalError',
  'Something failed on dialgate’s side; nothing was lost, the request can be retried.',
  'internal_error',
  'Something went wrong on our side; nothing was lost, try again.',
);
const unauthorized: ZodOpenApiResponseObject = {
  id: 'Unauthorized',
  description:
    'API-key mode on the local stack (`API_KEY` set): no `x-api-key` was sent. (In AWS, API Gateway ' +
    'answers a missing key or signature with 403.)',
  content: {
    'application/json': {
      schema: ErrorBody,
      examples: {
        unauthorized: {
          value: { error: { code: 'unauthorized', message: 'Send your API key in x-api-key.', details: [] } },
        },
      },
    },
  },
};
const forbidden: ZodOpenApiResponseObject = {
  id: 'Forbidden',
  description:
    'The request is not authenticated: in AWS, API Gateway’s own `{message}` (no or a bad SigV4 ' +
    'signature, no or a bad API key, or an IAM principal without `execute-api:Invoke`); on the local ' +
    'stack, with the error shape, a wrong `x-api-key`, a `Host` header that does not name the local ' +
    'server (DNS rebinding), or a POST from a web page of another site (`Origin`, `Sec-Fetch-Site`).',
  content: {
    'application/json': {
      schema: z.union([ErrorBody, GatewayError]),
      examples: {
        gateway: { value: { message: 'Forbidden' } },
        local: { value: { error: { code: 'forbidden', message: 'The API key is not valid.', details: [] } } },
        crossSite: {
          value: {
            error: {
              code: 'forbidden',
              message:
                'POST from another site is refused (Origin says so): the local stack changes runs only for ' +
                'its own pages (the console, same origin) and for clients that are not browsers (the CLI, ' +
                'curl, scripts).',
              details: [],
            },
          },
        },
      },
    },
  },
};
const throttled: ZodOpenApiResponseObject = {
  id: 'Throttled',
  description:
    'API Gateway’s throttling (50 requests a second per stage, bursts of 100): retry with backoff.',
  content: {
    'application/json': {
      schema: GatewayError,
      examples: { gateway: { value: { message: 'Too Many Requests' } } },
    },
  },
};

const queueingIncomplete: ZodOpenApiResponseObject = {
  id: 'QueueingIncomplete',
  description:
    'Accepted, but not every lead reached the queue (the body says how many did): send the same request ' +
    'again with the same Idempotency-Key when `retryable`.',
  headers: z.object({
    'x-amzn-RequestId': requestId,
    'Retry-After': z
      .string()
      .regex(/^\d+$/)
      .meta({ description: 'Seconds to wait before the retry.', example: '1' }),
  }),
  content: { 'application/json': { schema: QueueingIncompleteBody } },
};

/** What any authenticated operation may answer besides its own outcomes. */
const common = { 401: unauthorized, 403: forbidden, 429: throttled, 500: internal };

// ---- Parameters ---------------------------------------------------------------------------------

const runPath = { path: z.object({ run_id: RunId }) } satisfies ZodOpenApiParameters;

/** A CSV upload's run options, under the JSON field paths. */
const csvOptions = z.object({
  concurrency: z
    .string()
    .regex(/^\d+$/)
    .meta({ description: 'As `concurrency` in JSON.', example: '3' })
    .optional(),
  'retry.on': z
    .string()
    .meta({
      description: `Comma-separated, from ${RETRYABLE_OUTCOMES.join(', ')}.`,
      example: 'busy,no-answer',
    })
    .optional(),
  'retry.delay_seconds': z.string().regex(/^\d+$/).meta({ example: '600' }).optional(),
  'retry.max_attempts': z.string().regex(/^\d+$/).meta({ example: '3' }).optional(),
  'window.time_zone': z.string().meta({ example: 'Asia/Jerusalem' }).optional(),
  'window.days': z
    .string()
    .meta({ description: 'Comma-separated.', example: 'sun,mon,tue,wed,thu' })
    .optional(),
  'window.start': z.string().meta({ example: '09:00' }).optional(),
  'window.end': z.string().meta({ example: '20:00' }).optional(),
  from: z.string().meta({ example: '+15005550006' }).optional(),
  twiml_url: z.string().meta({ description: 'As `twiml_url` in JSON.' }).optional(),
  twiml: z
    .string()
    .meta({ description: 'As `twiml` in JSON: a template of the lead fields (the CSV columns).' })
    .optional(),
  phone_types: z
    .string()
    .meta({ description: `Comma-separated, from ${PHONE_TYPES.join(', ')}.`, example: 'mobile' })
    .optional(),
  frequency_cap: z.enum(['end', 'wait']).optional(),
  'opt_out.digit': z.string().meta({ example: '9' }).optional(),
  'opt_out.message': z.string().optional(),
  machine_detection: z
    .enum(MACHINE_DETECTION_MODES)
    .meta({ description: 'As `machine_detection` in JSON.', example: 'Enable' })
    .optional(),
  voicemail_url: z.string().meta({ description: 'As `voicemail_url` in JSON.' }).optional(),
  voicemail_twiml: z.string().meta({ description: 'As `voicemail_twiml` in JSON.' }).optional(),
  on_machine: z
    .enum(ON_MACHINE_MODES)
    .meta({ description: 'As `on_machine` in JSON.', example: 'continue' })
    .optional(),
});

const idempotencyKey = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/)
  .meta({
    description:
      'Makes a retry safe: the same key with the same body answers the same run (202, same `run_id`) for 24 ' +
      'hours, even when retries race, and queues its leads again (ingested once). The same key with a ' +
      'different body is 422 `idempotency_key_reused`. 1–255 printable ASCII characters.',
    example: 'crm-campaign-2026-11-29-a',
  })
  .optional();

// ---- Operations ---------------------------------------------------------------------------------

const leadsBody = (schema: z.ZodType, jsonExamples: Record<string, { summary: string; value: unknown }>) => ({
  required: true,
  content: {
    'application/json': { schema, examples: jsonExamples },
    'text/csv': {
      schema: LeadsCsv,
      examples: {
        csv: {
          summary: 'Leads as CSV',
          value: 'phone,name\n+972524118203,Dana\n+972536651094,Noa\n+14155550123,Sam\n',
        },
      },
    },
  },
});

const createRun: ZodOpenApiOperationObject = {
  operationId: 'createRun',
  tags: ['runs'],
  summary: 'Start a run',
  description:
    'Validates the leads (every problem named, nothing created on error) — or reads them from another ' +
    'run (`from_run`) —, creates the run and queues its ' +
    `leads (in chunks of ${LEADS_PER_CHUNK}); dialing starts at once. The body is JSON, or CSV ` +
    '(`text/csv`) with the run’s options in the query string under their JSON paths ' +
    '(`?concurrency=3&retry.on=busy,no-answer`); the query options are refused with JSON.',
  requestParams: { header: z.object({ 'Idempotency-Key': idempotencyKey }), query: csvOptions.partial() },
  requestBody: leadsBody(RunRequest, {
    again: {
      summary: 'Another run’s busy and unanswered leads, called again',
      value: {
        from_run: { run_id: '3f1c9a4e-7b2d-4c55-9e0a-1d2b3c4d5e6f', outcomes: ['busy', 'no-answer'] },
        concurrency: 2,
      },
    },
    minimal: {
      summary: 'Two leads, the default cap',
      value: { leads: [{ phone: '+972524118203' }, { phone: '+14155550123' }] },
    },
    policy: {
      summary: 'Cap, retries and a calling window',
      value: {
        concurrency: 5,
        leads: [
          { phone: '+972524118203', name: 'Dana', time_zone: 'Asia/Jerusalem' },
          { phone: '+14155550123', name: 'Sam', time_zone: 'America/Los_Angeles' },
        ],
        retry: { on: ['busy', 'no-answer'], delay_seconds: 900, max_attempts: 2 },
        window: {
          time_zone: 'Asia/Jerusalem',
          days: ['sun', 'mon', 'tue', 'wed', 'thu'],
          start: '09:00',
          end: '20:00',
        },
      },
    },
  }),
  responses: {
    202: json('Created (or the run of a retried Idempotency-Key); its leads are on their way.', CreatedRun),
    400: invalid,
    404: error(
      'FromRunNotFound',
      'The run named by `from_run` does not exist.',
      'not_found',
      'No run with id "3f1c9a4e".',
    ),
    413: tooLarge,
    415: unsupported,
    503: queueingIncomplete,
    422: error(
      'IdempotencyKeyReused',
      'This Idempotency-Key was used with a different body: a client bug, not a retry.',
      'idempotency_key_reused',
      'This Idempotency-Key was already used with a different request.',
    ),
    ...common,
  },
};

const listRuns: ZodOpenApiOperationObject = {
  operationId: 'listRuns',
  tags: ['runs'],
  summary: 'List runs, newest first',
  description: 'Pass `next_cursor` back as `cursor`, unchanged, until it is null.',
  requestParams: { query: PageQuery },
  responses: { 200: json('A page of runs.', RunList), 400: invalid, ...common },
};

const getRun: ZodOpenApiOperationObject = {
  operationId: 'getRun',
  tags: ['runs'],
  summary: 'A run’s progress',
  requestParams: runPath,
  responses: { 200: json('The run.', RunView), 404: notFound, ...common },
};

function control(action: 'pause' | 'resume' | 'cancel', summary: string, description: string) {
  return {
    operationId: `${action}Run`,
    tags: ['controls'],
    summary,
    description,
    requestParams:
      action === 'cancel'
        ? {
            ...runPath,
            query: z.object({
              hangup: z
                .enum(['true', 'false'])
                .meta({ description: 'Also hang up the calls in progress (they are otherwise left to end).' })
                .optional(),
            }),
          }
        : runPath,
    responses: {
      200: json('The run after the control.', RunView),
      ...(action === 'cancel' ? { 400: invalid } : {}),
      404: notFound,
      409: conflict,
      ...common,
    },
  } satisfies ZodOpenApiOperationObject;
}

const appendLeads: ZodOpenApiOperationObject = {
  operationId: 'appendLeads',
  tags: ['leads'],
  summary: 'Add leads to a run',
  description:
    'For a running or paused run: the run’s lead count grows by the whole batch before any of it is ' +
    'queued. JSON `{leads}` or CSV; no options (the run’s own apply).',
  requestParams: { ...runPath, header: z.object({ 'Idempotency-Key': idempotencyKey }) },
  requestBody: leadsBody(AppendLeadsRequest, {
    one: { summary: 'One more lead', value: { leads: [{ phone: '+972536651094', name: 'Noa' }] } },
  }),
  responses: {
    202: json('Accepted; the appended leads are on their way.', AppendedLeads),
    400: invalid,
    404: notFound,
    409: error(
      'AppendConflict',
      'The run is completed or canceled.',
      'conflict',
      'Cannot add leads to a run that is completed.',
    ),
    413: tooLarge,
    415: unsupported,
    422: error(
      'AppendIdempotencyKeyReused',
      'This Idempotency-Key was used with a different body: a client bug, not a retry.',
      'idempotency_key_reused',
      'This Idempotency-Key was already used with a different request.',
    ),
    503: queueingIncomplete,
    ...common,
  },
};

const listCalls: ZodOpenApiOperationObject = {
  operationId: 'listCalls',
  tags: ['calls'],
  summary: 'A run’s leads and their calls, in lead order',
  requestParams: {
    ...runPath,
    query: PageQuery.extend({
      status: z
        .string()
        .meta({
          description: `Comma-separated job statuses to keep (${JobStatus.options.join(', ')}).`,
          example: 'failed,canceled',
        })
        .optional(),
      outcome: z
        .string()
        .meta({
          description:
            'Comma-separated outcomes to keep (`suppressed`, `frequency_capped`, `busy`, `no-answer`, …); with ' +
            '`status`, both must hold.',
          example: 'suppressed,frequency_capped',
        })
        .optional(),
      reveal_phone: z
        .enum(['true', 'false'])
        .meta({ description: 'Whole phone numbers instead of masked ones.' })
        .optional(),
    }),
  },
  responses: { 200: json('A page of calls.', CallList), 400: invalid, 404: notFound, ...common },
};

// ---- The suppression list -----------------------------------------------------------------------

const phonePath = {
  path: z.object({
    phone: z.string().meta({
      description:
        'The number: E.164 with its `+` (or `%2B`), or a national number when the deployment sets ' +
        '`DEFAULT_COUNTRY`; read as leads are and stored in E.164. An invalid number is 400.',
      example: '+972524118203',
    }),
  }),
} satisfies ZodOpenApiParameters;
const suppressionNotFound = error(
  'SuppressionNotFound',
  'The number is not suppressed (or its suppression has expired).',
  'not_found',
  'That number is not suppressed.',
);

const putSuppression: ZodOpenApiOperationObject = {
  operationId: 'putSuppression',
  tags: ['suppressions'],
  summary: 'Suppress a number',
  description:
    'Adds or replaces the number’s suppression. Once this answers, no lead with this number is dialed: ' +
    'the check is a condition of the transaction that takes the lead’s slot, and such a lead ends with ' +
    'outcome `suppressed`. A client’s own TwiML app records an opt-out with `{"reason": "opt-out"}`.',
  requestParams: phonePath,
  requestBody: {
    required: false,
    content: { 'application/json': { schema: SuppressionRequest } },
  },
  responses: {
    200: json('The suppression as stored.', SuppressionView),
    400: invalid,
    415: unsupported,
    ...common,
  },
};

const getSuppression: ZodOpenApiOperationObject = {
  operationId: 'getSuppression',
  tags: ['suppressions'],
  summary: 'Is this number suppressed?',
  requestParams: phonePath,
  responses: {
    200: json('The number’s suppression.', SuppressionView),
    400: invalid,
    404: suppressionNotFound,
    ...common,
  },
};

const deleteSuppression: ZodOpenApiOperationObject = {
  operationId: 'deleteSuppression',
  tags: ['suppressions'],
  summary: 'Lift a number’s suppression',
  requestParams: phonePath,
  responses: {
    204: { description: 'Removed; the number may be called again.' },
    400: invalid,
    404: suppressionNotFound,
    ...common,
  },
};

const listSuppressions: ZodOpenApiOperationObject = {
  operationId: 'listSuppressions',
  tags: ['suppressions'],
  summary: 'The suppression list, in E.164 order',
  requestParams: {
    query: PageQuery.extend({
      prefix: z
        .string()
        .meta({ description: 'Only numbers starting with these digits (`+` optional).', example: '+97252' })
        .optional(),
    }),
  },
  responses: { 200: json('A page of suppressions.', SuppressionList), 400: invalid, ...common },
};

const importSuppressions: ZodOpenApiOperationObject = {
  operationId: 'importSuppressions',
  tags: ['suppressions'],
  summary: 'Import suppressions from a CSV file',
  description: 'Every row or none: one invalid row refuses the file, each problem named by its line.',
  requestBody: { required: true, content: { 'text/csv': { schema: SuppressionsCsv } } },
  responses: {
    200: json('Every row was imported.', SuppressionsImported),
    400: invalid,
    415: unsupported,
    ...common,
  },
};

const getOpenApi: ZodOpenApiOperationObject = {
  operationId: 'getOpenApi',
  tags: ['meta'],
  summary: 'This document',
  description:
    'Public: it describes the API, holds no data, and is what code generators and gateways fetch before ' +
    'they have credentials. Every other operation needs them.',
  security: [],
  responses: {
    200: {
      description: 'The OpenAPI document.',
      content: {
        'application/json': {
          schema: {
            type: 'object',
            properties: { openapi: { type: 'string' }, paths: { type: 'object' } },
            required: ['openapi', 'paths'],
          },
        },
      },
    },
    429: throttled,
  },
};

export function buildOpenApiDocument() {
  return createDocument(
    {
      openapi: '3.1.1',
      info: {
        title: 'dialgate',
        version: VERSION,
        summary: 'Bulk outbound calling through Twilio with a hard cap on live calls per run.',
        description:
          'A client posts a list of leads; dialgate calls them with never more than `concurrency` calls live ' +
          'at once (dialing or in a call) and dials the next lead the moment a call ends.\n\n' +
          '**Errors** have one shape, `{"error": {"code", "message", "details"}}`; switch on `code`. API ' +
          'Gateway’s own refusals (authentication, throttling, a body over 10 MB) are `{"message"}`.\n\n' +
          '**Authentication** depends on the deployment (`-c apiAuth=`): IAM (SigV4-signed requests for the ' +
          'service `execute-api`, the default) or an API key in `x-api-key`. The local stack (`npm start`) ' +
          'asks for none, or for `x-api-key` when started with `API_KEY`.\n\n' +
          '**Pages** (`GET /runs`, `GET /runs/{run_id}/calls`, `GET /suppressions`): pass `next_cursor` back as `cursor`, ' +
          'unchanged, until it is null. Cursors are opaque.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [
        { url: 'http://127.0.0.1:3000', description: 'The local stack (`npm start`)' },
        {
          url: 'https://{api_id}.execute-api.{region}.amazonaws.com/{stage}',
          description: 'A deployment: the stack’s `ApiUrl` output',
          variables: {
            api_id: { default: 'abc123', description: 'The REST API’s id' },
            region: { default: 'eu-west-1' },
            stage: { default: 'prod', description: 'The `-c stage=` it was deployed with' },
          },
        },
      ],
      security: [{ sigv4: [] }, { apiKey: [] }],
      tags: [
        { name: 'runs', description: 'Start runs and follow them.' },
        { name: 'controls', description: 'Pause, resume and cancel a run.' },
        { name: 'leads', description: 'Add leads to a run.' },
        { name: 'calls', description: 'The calls of a run, lead by lead.' },
        { name: 'suppressions', description: 'Numbers dialgate never calls (do-not-call, opt-outs).' },
        { name: 'meta', description: 'About the API itself.' },
      ],
      paths: {
        '/runs': { post: createRun, get: listRuns },
        '/runs/{run_id}': { get: getRun },
        '/runs/{run_id}/pause': {
          post: control(
            'pause',
            'Pause a run',
            'No new dials from now on; live calls finish. Repeating it answers 200.',
          ),
        },
        '/runs/{run_id}/resume': {
          post: control(
            'resume',
            'Resume a paused run',
            'The run refills to its cap at once. Repeating it answers 200.',
          ),
        },
        '/runs/{run_id}/cancel': {
          post: control(
            'cancel',
            'Cancel a run',
            'No new dials; Twilio-queued and ringing calls are canceled, calls in progress are left to end (or ' +
              'hung up with `hangup=true`), queued leads become canceled. May be repeated; 409 on a completed run.',
          ),
        },
        '/runs/{run_id}/leads': { post: appendLeads },
        '/runs/{run_id}/calls': { get: listCalls },
        '/suppressions': { get: listSuppressions, post: importSuppressions },
        '/suppressions/{phone}': { get: getSuppression, put: putSuppression, delete: deleteSuppression },
        '/openapi.json': { get: getOpenApi },
      },
      components: {
        securitySchemes: {
          sigv4: {
            type: 'apiKey',
            name: 'Authorization',
            in: 'header',
            description:
              'IAM (`-c apiAuth=iam`, the default): AWS Signature Version 4 for the service `execute-api`, by a ' +
              'principal allowed `execute-api:Invoke` on the API (e.g. with awscurl or the AWS SDK’s signer).',
            'x-amazon-apigateway-authtype': 'awsSigv4',
          },
          apiKey: {
            type: 'apiKey',
            name: 'x-api-key',
            in: 'header',
            description: 'API key (`-c apiAuth=apiKey`): the key of the stage’s usage plan.',
          },
        },
      },
    },
    {
      // zod's safe-integer bounds and its datetime regex say nothing a reader (or a format check) needs.
      override: ({ jsonSchema }) => {
        if (jsonSchema.format === 'date-time') delete jsonSchema.pattern;
        if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
        if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
      },
    },
  );
}

/** The document as committed: two-space JSON and a final newline. */
export function openApiText(): string {
  return `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;
}

/** Where the document is committed (and read by the api function's bundle). */
export const OPENAPI_PATH = fileURLToPath(new URL('../../docs/openapi.json', import.meta.url));

/** Where the CLI's API types are generated from it. */
export const CLIENT_TYPES_PATH = fileURLToPath(new URL('../../clients/cli/api-types.ts', import.meta.url));

/** The CLI's types of the API (paths, operations, schemas), as openapi-typescript writes them. */
export async function clientTypesText(document = buildOpenApiDocument()): Promise<string> {
  // openapi-typescript 6 prints types as text; 7 needs TypeScript 5's compiler API, which tsc 7 lacks.
  const types = await openapiTS(structuredClone(document) as Parameters<typeof openapiTS>[0], {
    exportType: false,
  });
  return `// Generated by \`npm run openapi\` from docs/openapi.json (openapi-typescript); do not edit.\n${types}`;
}
