// (core) A run's dialer policy, as its owner asked for it: retries, a calling window, the caller id and
// what the callee hears. Validated field by field (every problem named), within the bounds the
// deployment configures (CallPolicy), because a caller id or a TwiML URL is a way to abuse the account.

import { PHONE_TYPES, type PhoneType } from '../definitions/formats.ts';
import { checkPhone, type PhoneRules } from '../definitions/phone-numbers.ts';
import { type CallingWindow, isValidTimeZone, minutesOf, WEEKDAYS, type Weekday } from './calling-window.ts';
import type { ErrorDetail } from './errors.ts';
import {
  MACHINE_DETECTION_MODES,
  MACHINE_OUTCOME,
  type MachineDetectionMode,
  ON_MACHINE_DEFAULT,
  ON_MACHINE_MODES,
  type OnMachine,
} from './machine-detection.ts';
import { isTemplate, parseTemplate } from './twiml-template.ts';

/** `machine`: answered by a machine or a fax (with `machine_detection` only). */
export const RETRYABLE_OUTCOMES = ['busy', 'no-answer', 'failed', MACHINE_OUTCOME] as const;
export type RetryableOutcome = (typeof RETRYABLE_OUTCOMES)[number];

export interface RetryPolicy {
  /** Final Twilio outcomes that put the lead back in the queue. */
  on: RetryableOutcome[];
  /** Wait after the failed attempt ended before the lead may be dialed again. */
  delaySeconds: number;
  /** Calls per lead in all, the first included (1 = no retry). */
  maxAttempts: number;
}

export interface RunOptions {
  retry?: RetryPolicy;
  window?: CallingWindow;
  /** Caller id; the deployment's TWILIO_FROM_NUMBER when unset. */
  from?: string;
  /** What the callee hears; the deployment's TwiML when neither is set. */
  twimlUrl?: string;
  twiml?: string;
  /** The number types this run's leads (its appended ones too) may be; the deployment's when unset. */
  phoneTypes?: PhoneType[];
  /** Nothing is dialed before this time (ISO 8601, UTC); the run is `scheduled` until then. */
  startAt?: string;
  /** No call starts after this time (ISO 8601, UTC); leads not final by then end `expired`. */
  expiresAt?: string;
  /** The failure breaker: the run pauses itself when too many of its recent calls fail. */
  pauseWhen?: PauseWhen;
  /**
   * A lead whose number is over the deployment's frequency cap: `wait` keeps it queued until the
   * number's next window; unset, it ends uncalled (`frequency_capped`).
   */
  frequencyCap?: 'wait';
  /** The callee may press `digit` to be suppressed for good (see opt-out.ts). */
  optOut?: OptOut;
  /** Answering-machine detection (Twilio's mode), asynchronous: the callee hears the content at once. */
  machineDetection?: MachineDetectionMode;
  /** What a machine is left once its greeting ends (DetectMessageEnd only): inline TwiML, or a URL. */
  voicemailTwiml?: string;
  voicemailUrl?: string;
  /**
   * A machine or fax the run leaves no voicemail: hung up, or played the content (with detection only).
   * Stored with the run, the default included, so a run keeps what it was created with; unset on a
   * run with detection created before the option existed, which plays on (`continue`).
   */
  onMachine?: OnMachine;
}

/**
 * Pause the run once at least `minCalls` attempts have ended and more than `failedRatio` of the last
 * `minCalls` of them failed (Twilio outcome `failed`, or refused by Twilio at create).
 */
export interface PauseWhen {
  failedRatio: number;
  minCalls: number;
}

export const PAUSE_WHEN_LIMITS = { maxMinCalls: 100 };
/** How far ahead `start_at` and `expires_at` may be. */
export const SCHEDULE_HORIZON_DAYS = 366;

export interface OptOut {
  /** One key: 0–9, * or #. */
  digit: string;
  /** Said before the call's content when set (or when the content is not all speech). */
  message?: string;
}

export const FREQUENCY_CAP_MODES = ['end', 'wait'] as const;
export const OPT_OUT_DIGIT = /^[0-9*#]$/;
/** Longest opt-out message: a sentence, said by Twilio's <Say>. */
export const MAX_OPT_OUT_MESSAGE = 300;

/** The bounds a deployment puts on run options (from its configuration). */
export interface CallPolicy {
  /** Caller ids a run may use (TWILIO_FROM_NUMBER always may). */
  allowedFrom: readonly string[];
  /** A run's twiml_url must be under one of these (same https host, path within); none = runs cannot set one. */
  twimlUrlPrefixes: readonly string[];
  /** Largest inline TwiML a run may carry, in bytes; 0 = runs cannot set inline TwiML. */
  maxTwimlBytes: number;
  /** Whose national numbers a number without a country code is (DEFAULT_COUNTRY); unset: none. */
  defaultCountry?: string | undefined;
  /** The number types any lead may be (ALLOWED_PHONE_TYPES); unset or empty: any. */
  allowedPhoneTypes?: readonly PhoneType[] | undefined;
}

/**
 * How a run's leads are read: national numbers as the deployment's default country's, and only of the
 * run's own `phone_types`, else of the deployment's allowed types.
 */
export function phoneRulesFor(
  policy: Pick<CallPolicy, 'defaultCountry' | 'allowedPhoneTypes'>,
  options: Pick<RunOptions, 'phoneTypes'>,
): PhoneRules {
  const deployment = policy.allowedPhoneTypes ?? [];
  return {
    defaultCountry: policy.defaultCountry,
    ...(options.phoneTypes
      ? { types: options.phoneTypes, typesFrom: 'phone_types' }
      : deployment.length > 0
        ? { types: deployment, typesFrom: 'ALLOWED_PHONE_TYPES' }
        : {}),
  };
}

export const RETRY_DEFAULTS = {
  on: ['busy', 'no-answer'] as RetryableOutcome[],
  delaySeconds: 600,
  maxAttempts: 3,
};
export const RETRY_LIMITS = { maxDelaySeconds: 7 * 24 * 3600, maxAttempts: 10 };
export const WINDOW_DEFAULT_DAYS: Weekday[] = [...WEEKDAYS];

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads the option fields of a run request; every problem goes to `details`. `nowMs`: the schedule's "now". */
export function validateRunOptions(
  body: Record<string, unknown>,
  policy: CallPolicy,
  details: ErrorDetail[],
  nowMs: number,
): RunOptions {
  const options: RunOptions = {};
  const problem = (field: string, message: string) => details.push({ field, message });

  if (body.retry !== undefined && body.retry !== null) {
    const retry = validateRetry(body.retry, problem);
    if (retry) options.retry = retry;
  }
  if (body.window !== undefined && body.window !== null) {
    const window = validateWindow(body.window, problem);
    if (window) options.window = window;
  }
  if (body.from !== undefined && body.from !== null) {
    // A caller id is read as leads are (any type: a landline may call), and compared in E.164.
    const check =
      typeof body.from === 'string'
        ? checkPhone(body.from, { defaultCountry: policy.defaultCountry })
        : undefined;
    if (check === undefined) problem('from', 'expected a caller id in E.164 (+15005550006)');
    else if (!check.ok) problem('from', check.problem);
    else if (!policy.allowedFrom.includes(check.phone)) {
      problem('from', 'this caller id is not allowed here (ALLOWED_FROM_NUMBERS)');
    } else {
      options.from = check.phone;
    }
  }
  if (body.phone_types !== undefined && body.phone_types !== null) {
    const types = validatePhoneTypes(body.phone_types, policy, problem);
    if (types) options.phoneTypes = types;
  }
  if (body.frequency_cap !== undefined && body.frequency_cap !== null) {
    if (!(FREQUENCY_CAP_MODES as readonly unknown[]).includes(body.frequency_cap))
      problem('frequency_cap', `expected one of ${FREQUENCY_CAP_MODES.join(', ')}`);
    else if (body.frequency_cap === 'wait') options.frequencyCap = 'wait';
  }
  if (body.opt_out !== undefined && body.opt_out !== null) {
    const optOut = validateOptOut(body.opt_out, problem);
    if (optOut) options.optOut = optOut;
  }
  const hasUrl = body.twiml_url !== undefined && body.twiml_url !== null;
  const hasTwiml = body.twiml !== undefined && body.twiml !== null;
  if (hasUrl && hasTwiml) problem('twiml', 'give twiml_url or twiml, not both');
  else if (hasUrl) {
    const url = validateTwimlUrl(body.twiml_url, policy, problem);
    if (url) options.twimlUrl = url;
  } else if (hasTwiml) {
    const twiml = validateTwiml(body.twiml, policy, problem, 'twiml');
    if (twiml) options.twiml = twiml;
  }
  validateSchedule(body, nowMs, problem, options);
  if (body.pause_when !== undefined && body.pause_when !== null) {
    const pauseWhen = validatePauseWhen(body.pause_when, problem);
    if (pauseWhen) options.pauseWhen = pauseWhen;
  }
  validateMachineDetection(body, policy, options, problem);
  return options;
}

/**
 * `machine_detection`, the voicemail a machine is left, what is done with a machine otherwise, and the
 * retry outcome that only detection can produce: each refused with its field when it could not take
 * effect (a misspelt mode, a voicemail without DetectMessageEnd, `on_machine` or
 * `retry.on: ["machine"]` without detection), never silently ignored.
 */
function validateMachineDetection(
  body: Record<string, unknown>,
  policy: CallPolicy,
  options: RunOptions,
  problem: Problem,
): void {
  const mode = body.machine_detection;
  if (mode !== undefined && mode !== null) {
    if ((MACHINE_DETECTION_MODES as readonly unknown[]).includes(mode))
      options.machineDetection = mode as MachineDetectionMode;
    else problem('machine_detection', `expected ${MACHINE_DETECTION_MODES.join(' or ')} (Twilio's modes)`);
  }
  const hasUrl = body.voicemail_url !== undefined && body.voicemail_url !== null;
  const hasTwiml = body.voicemail_twiml !== undefined && body.voicemail_twiml !== null;
  const field = hasTwiml ? 'voicemail_twiml' : 'voicemail_url';
  if (hasUrl && hasTwiml) problem('voicemail_twiml', 'give voicemail_url or voicemail_twiml, not both');
  else if ((hasUrl || hasTwiml) && options.machineDetection !== 'DetectMessageEnd') {
    // Only DetectMessageEnd waits for the greeting to end; a message left at its start would be cut.
    problem(field, 'needs machine_detection "DetectMessageEnd" (the voicemail is left after the greeting)');
  } else if (hasUrl) {
    const url = validateTwimlUrl(body.voicemail_url, policy, problem, 'voicemail_url');
    if (url) options.voicemailUrl = url;
  } else if (hasTwiml) {
    const twiml = validateTwiml(body.voicemail_twiml, policy, problem, 'voicemail_twiml');
    if (twiml) options.voicemailTwiml = twiml;
  }
  const onMachine = body.on_machine;
  if (onMachine !== undefined && onMachine !== null) {
    if (!(ON_MACHINE_MODES as readonly unknown[]).includes(onMachine))
      problem('on_machine', `expected ${ON_MACHINE_MODES.join(' or ')}`);
    else if (mode === undefined || mode === null)
      // (A misspelt mode is named on its own; repeating it here would only add noise.)
      problem('on_machine', 'needs machine_detection: without it no call is known to be a machine');
    else options.onMachine = onMachine as OnMachine;
  }
  // The default is stored with the run: what it does cannot change under it once it is dialing.
  if (options.machineDetection !== undefined) options.onMachine ??= ON_MACHINE_DEFAULT;
  if (options.retry?.on.includes(MACHINE_OUTCOME) && options.machineDetection === undefined) {
    problem('retry.on', '"machine" needs machine_detection: without it no call ends machine');
  }
}

type Problem = (field: string, message: string) => void;

function wholeNumber(value: unknown, min: number, max: number): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
    ? value
    : undefined;
}

function unknownFields(value: Record<string, unknown>, known: string[], prefix: string, problem: Problem) {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) problem(`${prefix}.${key}`, `unknown field; expected ${known.join(', ')}`);
  }
}

function validateOptOut(value: unknown, problem: Problem): OptOut | undefined {
  if (!isPlainObject(value)) {
    problem('opt_out', 'expected an object { digit, message? }');
    return undefined;
  }
  unknownFields(value, ['digit', 'message'], 'opt_out', problem);
  let ok = true;
  if (typeof value.digit !== 'string' || !OPT_OUT_DIGIT.test(value.digit)) {
    problem('opt_out.digit', 'required, one key: 0-9, * or #');
    ok = false;
  }
  const message = value.message;
  if (message !== undefined && message !== null) {
    if (typeof message !== 'string' || message.trim() === '' || message.length > MAX_OPT_OUT_MESSAGE) {
      problem('opt_out.message', `expected a sentence of at most ${MAX_OPT_OUT_MESSAGE} characters`);
      ok = false;
    }
  }
  if (!ok) return undefined;
  return {
    digit: value.digit as string,
    ...(typeof message === 'string' ? { message: message.trim() } : {}),
  };
}

function validatePhoneTypes(value: unknown, policy: CallPolicy, problem: Problem): PhoneType[] | undefined {
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    !value.every((t) => (PHONE_TYPES as readonly unknown[]).includes(t)) ||
    new Set(value).size !== value.length
  ) {
    problem('phone_types', `expected a non-empty list of distinct types from ${PHONE_TYPES.join(', ')}`);
    return undefined;
  }
  const allowed = policy.allowedPhoneTypes ?? [];
  const refused = value.filter((type) => allowed.length > 0 && !allowed.includes(type));
  if (refused.length > 0) {
    problem(
      'phone_types',
      `not allowed here: ${refused.join(', ')} (ALLOWED_PHONE_TYPES is ${allowed.join(', ')})`,
    );
    return undefined;
  }
  return PHONE_TYPES.filter((type) => value.includes(type));
}

function validateRetry(value: unknown, problem: Problem): RetryPolicy | undefined {
  if (!isPlainObject(value)) {
    problem('retry', 'expected an object { on, delay_seconds, max_attempts }');
    return undefined;
  }
  unknownFields(value, ['on', 'delay_seconds', 'max_attempts'], 'retry', problem);
  let ok = true;
  let on = RETRY_DEFAULTS.on;
  if (value.on !== undefined) {
    const list = value.on;
    if (
      !Array.isArray(list) ||
      list.length === 0 ||
      !list.every((o) => (RETRYABLE_OUTCOMES as readonly unknown[]).includes(o)) ||
      new Set(list).size !== list.length
    ) {
      problem(
        'retry.on',
        `expected a non-empty list of distinct outcomes from ${RETRYABLE_OUTCOMES.join(', ')}`,
      );
      ok = false;
    } else {
      on = list as RetryableOutcome[];
    }
  }
  let delaySeconds = RETRY_DEFAULTS.delaySeconds;
  if (value.delay_seconds !== undefined) {
    const delay = wholeNumber(value.delay_seconds, 0, RETRY_LIMITS.maxDelaySeconds);
    if (delay === undefined) {
      problem('retry.delay_seconds', `expected whole seconds from 0 to ${RETRY_LIMITS.maxDelaySeconds}`);
      ok = false;
    } else delaySeconds = delay;
  }
  let maxAttempts = RETRY_DEFAULTS.maxAttempts;
  if (value.max_attempts !== undefined) {
    const max = wholeNumber(value.max_attempts, 1, RETRY_LIMITS.maxAttempts);
    if (max === undefined) {
      problem(
        'retry.max_attempts',
        `expected a whole number from 1 to ${RETRY_LIMITS.maxAttempts} (calls per lead)`,
      );
      ok = false;
    } else maxAttempts = max;
  }
  return ok ? { on, delaySeconds, maxAttempts } : undefined;
}

function validateWindow(value: unknown, problem: Problem): CallingWindow | undefined {
  if (!isPlainObject(value)) {
    problem('window', 'expected an object { time_zone, days, start, end }');
    return undefined;
  }
  unknownFields(value, ['time_zone', 'days', 'start', 'end'], 'window', problem);
  let ok = true;
  const timeZone = value.time_zone;
  if (typeof timeZone !== 'string' || !isValidTimeZone(timeZone)) {
    problem('window.time_zone', 'required, an IANA time zone such as Asia/Jerusalem');
    ok = false;
  }
  let days = WINDOW_DEFAULT_DAYS;
  if (value.days !== undefined) {
    const list = value.days;
    if (
      !Array.isArray(list) ||
      list.length === 0 ||
      !list.every((d) => (WEEKDAYS as readonly unknown[]).includes(d)) ||
      new Set(list).size !== list.length
    ) {
      problem('window.days', `expected a non-empty list of distinct days from ${WEEKDAYS.join(', ')}`);
      ok = false;
    } else {
      days = WEEKDAYS.filter((d) => list.includes(d));
    }
  }
  const start = typeof value.start === 'string' ? minutesOf(value.start) : undefined;
  const end = typeof value.end === 'string' ? minutesOf(value.end, { end: true }) : undefined;
  if (start === undefined) problem('window.start', 'required, a local time HH:MM (09:00)');
  if (end === undefined) problem('window.end', 'required, a local time HH:MM (20:00) or 24:00');
  if (start === undefined || end === undefined) ok = false;
  else if (end <= start) {
    problem('window.end', 'must be after window.start (a window cannot span midnight)');
    ok = false;
  }
  return ok
    ? { timeZone: timeZone as string, days, start: value.start as string, end: value.end as string }
    : undefined;
}

/** ISO 8601 date and time with seconds optional, a fraction optional, and a `Z` or `±HH:MM` offset. */
const ISO_WITH_OFFSET =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-](\d{2}):(\d{2}))$/;

/** The instant an ISO 8601 time with an offset names, or undefined when it is malformed or no real date. */
export function parseIsoWithOffset(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const match = ISO_WITH_OFFSET.exec(value);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second = '0', zone, offsetHours = '0', offsetMinutes = '0'] =
    match;
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) return undefined;
  if (Number(offsetHours) > 23 || Number(offsetMinutes) > 59) return undefined;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) return undefined;
  // Date.parse rolls 31 April over into 1 May: the local date must read back as written.
  const offset =
    zone === 'Z' ? 0 : (zone!.startsWith('-') ? -1 : 1) * (Number(offsetHours) * 60 + Number(offsetMinutes));
  const local = new Date(ms + offset * 60_000);
  return local.getUTCFullYear() === Number(year) &&
    local.getUTCMonth() + 1 === Number(month) &&
    local.getUTCDate() === Number(day)
    ? ms
    : undefined;
}

/**
 * `start_at` and `expires_at`: each in the future (within the horizon), and the end after the start.
 * Kept in UTC (`toISOString`), the form the run view shows.
 */
function validateSchedule(
  body: Record<string, unknown>,
  nowMs: number,
  problem: Problem,
  options: RunOptions,
) {
  const horizon = nowMs + SCHEDULE_HORIZON_DAYS * 24 * 3600 * 1000;
  const read = (field: 'start_at' | 'expires_at'): number | undefined => {
    const value = body[field];
    if (value === undefined || value === null) return undefined;
    const ms = parseIsoWithOffset(value);
    if (ms === undefined) {
      problem(field, 'expected an ISO 8601 time with an offset (2026-12-01T09:00:00+02:00 or …Z)');
      return undefined;
    }
    if (ms <= nowMs) {
      problem(field, `must be in the future (it is ${new Date(nowMs).toISOString()} now)`);
      return undefined;
    }
    if (ms > horizon) {
      problem(field, `at most ${SCHEDULE_HORIZON_DAYS} days ahead`);
      return undefined;
    }
    return ms;
  };
  const startAt = read('start_at');
  const expiresAt = read('expires_at');
  if (startAt !== undefined && expiresAt !== undefined && expiresAt <= startAt) {
    problem('expires_at', 'must be after start_at');
    return;
  }
  if (startAt !== undefined) options.startAt = new Date(startAt).toISOString();
  if (expiresAt !== undefined) options.expiresAt = new Date(expiresAt).toISOString();
}

function validatePauseWhen(value: unknown, problem: Problem): PauseWhen | undefined {
  if (!isPlainObject(value)) {
    problem('pause_when', 'expected an object { failed_ratio, min_calls }');
    return undefined;
  }
  unknownFields(value, ['failed_ratio', 'min_calls'], 'pause_when', problem);
  let ok = true;
  const ratio = value.failed_ratio;
  if (typeof ratio !== 'number' || !Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    problem('pause_when.failed_ratio', 'required, a number from 0 to 1 (0.5: more than half failed)');
    ok = false;
  }
  const minCalls = wholeNumber(value.min_calls, 1, PAUSE_WHEN_LIMITS.maxMinCalls);
  if (minCalls === undefined) {
    problem(
      'pause_when.min_calls',
      `required, a whole number from 1 to ${PAUSE_WHEN_LIMITS.maxMinCalls} (the calls judged together)`,
    );
    ok = false;
  }
  return ok ? { failedRatio: ratio as number, minCalls: minCalls as number } : undefined;
}

function validateTwimlUrl(
  value: unknown,
  policy: CallPolicy,
  problem: Problem,
  field = 'twiml_url',
): string | undefined {
  const url = typeof value === 'string' && URL.canParse(value) ? new URL(value) : undefined;
  if (url?.protocol !== 'https:' || url.username !== '' || url.password !== '') {
    problem(field, 'expected an https URL without a user name or password');
    return undefined;
  }
  if (policy.twimlUrlPrefixes.length === 0) {
    problem(field, 'runs cannot choose a TwiML URL here (TWIML_URL_ALLOWED_PREFIXES is empty)');
    return undefined;
  }
  if (!policy.twimlUrlPrefixes.some((prefix) => isUnderPrefix(url, prefix))) {
    problem(field, 'not under an allowed prefix (TWIML_URL_ALLOWED_PREFIXES)');
    return undefined;
  }
  // The parsed form is what was checked (dot segments resolved, host lower-cased), so it is what Twilio gets.
  return url.href;
}

/**
 * Whether `url` is under an allowed prefix, compared as parsed URLs, never as strings: the same scheme
 * and exact host and port (`https://twiml.example.com.evil.example/` and
 * `https://twiml.example.com@evil.example/` are other hosts), and the path within the prefix's path,
 * at a segment boundary (`/voice` allows `/voice/x`, not `/voice-admin`).
 */
export function isUnderPrefix(url: URL, prefix: string): boolean {
  if (!URL.canParse(prefix)) return false;
  const allowed = new URL(prefix);
  if (url.protocol !== allowed.protocol || url.host !== allowed.host) return false;
  if (allowed.pathname.endsWith('/')) return url.pathname.startsWith(allowed.pathname);
  return url.pathname === allowed.pathname || url.pathname.startsWith(`${allowed.pathname}/`);
}

function validateTwiml(
  value: unknown,
  policy: CallPolicy,
  problem: Problem,
  field: 'twiml' | 'voicemail_twiml',
): string | undefined {
  if (typeof value !== 'string' || !/<Response[\s>/]/.test(value)) {
    problem(field, 'expected TwiML: <Response>…</Response>');
    return undefined;
  }
  if (policy.maxTwimlBytes === 0) {
    problem(field, 'runs cannot carry inline TwiML here (MAX_TWIML_BYTES is 0)');
    return undefined;
  }
  const bytes = Buffer.byteLength(value);
  if (bytes > policy.maxTwimlBytes) {
    problem(field, `${bytes} bytes, at most ${policy.maxTwimlBytes} allowed`);
    return undefined;
  }
  // A template of the lead's fields (`{{name}}`, `{{name|default}}`): its fields are checked against
  // every lead with the leads (call-content.ts).
  const template = isTemplate(value) ? parseTemplate(value) : undefined;
  if (template && 'problem' in template) {
    problem(field, `not a template of lead fields: ${template.problem}`);
    return undefined;
  }
  return value;
}

/** The options as a client sees them in a RunView (the request's own field names). */
export function optionsView(options: RunOptions) {
  return {
    retry: options.retry
      ? {
          on: [...options.retry.on],
          delay_seconds: options.retry.delaySeconds,
          max_attempts: options.retry.maxAttempts,
        }
      : null,
    window: options.window
      ? {
          time_zone: options.window.timeZone,
          days: [...options.window.days],
          start: options.window.start,
          end: options.window.end,
        }
      : null,
    from: options.from ?? null,
    twiml_url: options.twimlUrl ?? null,
    twiml: options.twiml ?? null,
    phone_types: options.phoneTypes ? [...options.phoneTypes] : null,
    start_at: options.startAt ?? null,
    expires_at: options.expiresAt ?? null,
    pause_when: options.pauseWhen
      ? { failed_ratio: options.pauseWhen.failedRatio, min_calls: options.pauseWhen.minCalls }
      : null,
    frequency_cap: options.frequencyCap ?? ('end' as const),
    opt_out: options.optOut ? { digit: options.optOut.digit, message: options.optOut.message ?? null } : null,
    machine_detection: options.machineDetection ?? null,
    voicemail_twiml: options.voicemailTwiml ?? null,
    voicemail_url: options.voicemailUrl ?? null,
    // With detection, what it does with a machine (a run from before the option plays on); else null.
    on_machine: options.machineDetection ? (options.onMachine ?? ('continue' as const)) : null,
  };
}

/** Query parameters a CSV upload may carry, with the JSON field each one stands for. */
const QUERY_OPTIONS = [
  'concurrency',
  'retry.on',
  'retry.delay_seconds',
  'retry.max_attempts',
  'window.time_zone',
  'window.days',
  'window.start',
  'window.end',
  'from',
  'twiml_url',
  'twiml',
  'phone_types',
  'start_at',
  'expires_at',
  'pause_when.failed_ratio',
  'pause_when.min_calls',
  'frequency_cap',
  'opt_out.digit',
  'opt_out.message',
  'machine_detection',
  'voicemail_url',
  'voicemail_twiml',
  'on_machine',
] as const;
const LIST_OPTIONS = new Set(['retry.on', 'window.days', 'phone_types']);
const NUMBER_OPTIONS = new Set([
  'concurrency',
  'retry.delay_seconds',
  'retry.max_attempts',
  'pause_when.failed_ratio',
  'pause_when.min_calls',
]);

/**
 * A CSV upload's options come in the query string under the JSON field paths
 * (`?concurrency=3&retry.on=busy,no-answer&window.time_zone=Asia/Jerusalem`). Returns the JSON shape,
 * so that one validator serves both; an unknown parameter is a problem (a typo must not pass silently).
 */
export function optionsFromQuery(
  query: Record<string, string | undefined>,
  details: ErrorDetail[],
): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(query)) {
    if (raw === undefined) continue;
    if (!(QUERY_OPTIONS as readonly string[]).includes(name)) {
      details.push({ field: name, message: `unknown option; expected one of ${QUERY_OPTIONS.join(', ')}` });
      continue;
    }
    let value: unknown = raw;
    if (LIST_OPTIONS.has(name)) value = raw.split(',').map((item) => item.trim());
    else if (NUMBER_OPTIONS.has(name) && /^\d+(\.\d+)?$/.test(raw)) value = Number(raw);
    const [head, tail] = name.split('.') as [string, string | undefined];
    if (tail === undefined) body[head] = value;
    else body[head] = { ...(body[head] as Record<string, unknown> | undefined), [tail]: value };
  }
  return body;
}
