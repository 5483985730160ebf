// (client) The run options of `runs create` as the request's fields: each option sets one field
// (`--retry-on busy,no-answer` is `retry.on`), values are sent as given (numbers as numbers, lists
// split at commas) and the API judges them, so that a bad value is named by the API's own rules and
// mapped back to its option (OPTION_OF) rather than checked twice.

import type { components } from './api-types.ts';

type RunRequest = components['schemas']['RunRequest'];
/** The fields a run request may carry besides its leads (or `from_run`). */
export type RunOptionsBody = Omit<Extract<RunRequest, { leads: unknown[] }>, 'leads' | 'from_run'>;

/** Each request field with the option that sets it: `[field path, option, kind]`. */
const FIELDS = [
  ['retry.on', 'retry-on', 'list'],
  ['retry.delay_seconds', 'retry-delay', 'number'],
  ['retry.max_attempts', 'max-attempts', 'number'],
  ['window.time_zone', 'window-tz', 'text'],
  ['window.days', 'window-days', 'list'],
  ['window.start', 'window-start', 'text'],
  ['window.end', 'window-end', 'text'],
  ['from', 'from', 'text'],
  ['phone_types', 'phone-types', 'list'],
  ['twiml_url', 'twiml-url', 'text'],
  ['twiml', 'twiml', 'text'],
  ['machine_detection', 'machine-detection', 'text'],
  ['voicemail_twiml', 'voicemail-twiml', 'text'],
  ['voicemail_url', 'voicemail-url', 'text'],
  ['on_machine', 'on-machine', 'text'],
  ['start_at', 'start-at', 'text'],
  ['expires_at', 'expires-at', 'text'],
  ['pause_when.failed_ratio', 'pause-failed-ratio', 'number'],
  ['pause_when.min_calls', 'pause-min-calls', 'number'],
  ['frequency_cap', 'frequency-cap', 'text'],
  ['opt_out.digit', 'opt-out-digit', 'text'],
  ['opt_out.message', 'opt-out-message', 'text'],
] as const satisfies readonly (readonly [string, string, 'text' | 'list' | 'number'])[];

/** The option that sets each request field, for naming what the API refused. */
export const OPTION_OF_FIELD: Record<string, string> = Object.fromEntries(
  FIELDS.flatMap(([field, option]) => {
    const [head] = field.split('.');
    // A whole object refused (`retry`, `window`, `pause_when`) is named by its first option.
    return head === field
      ? [[field, `--${option}`]]
      : [
          [field, `--${option}`],
          [head!, `--${option}`],
        ];
  }).reverse(),
);

/** The request's option fields from the command line; absent options are left out. */
export function runOptionsFrom(
  values: Readonly<Record<string, unknown>>,
  concurrency: number | undefined,
): RunOptionsBody {
  const body: Record<string, unknown> = concurrency === undefined ? {} : { concurrency };
  for (const [field, option, kind] of FIELDS) {
    const raw = values[option];
    if (typeof raw !== 'string') continue;
    const value =
      kind === 'list'
        ? raw
            .split(',')
            .map((item) => item.trim())
            .filter(Boolean)
        : kind === 'number' && /^\s*-?\d+(\.\d+)?\s*$/.test(raw)
          ? Number(raw)
          : raw;
    const [head, tail] = field.split('.') as [string, string | undefined];
    if (tail === undefined) body[head] = value;
    else body[head] = { ...(body[head] as Record<string, unknown> | undefined), [tail]: value };
  }
  return body as RunOptionsBody;
}
