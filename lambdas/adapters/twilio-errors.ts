// (adapter) Twilio's errors: how an answer that is not a success is read, and how a create's failure
// is classified for the core. The classification decides whether a lead can be called twice:
// - 429 / 20429, and 22005 (Twilio's call queue is full) → throttled: never processed, retry later.
// - 401 / 403 / 404 (bad or rotated credentials, suspended account, wrong account URL) → throttled,
//   after one credential refresh. The call was certainly not created, and it is not the lead's
//   fault: failing it ('rejected') would fail every lead of every run until someone fixes the
//   secret; 'unknown' would pin a slot per attempt for the reconciler to settle. As 'throttled' the
//   job goes back to the queue with a backoff, nothing is lost, and the run resumes by itself once
//   the credentials work. Each occurrence is logged at error level so that an alarm can fire.
// - 21205, 21210, 21212, 21213, 21606 (the From number or the call content is wrong) → misconfigured:
//   the run's setup, not the lead, so the core pauses the run and keeps the lead.
// - Any other 4xx (21211 invalid To, 21214, 21215, 21216, 21217, 13224, 13227, 32205, 14111, 21401,
//   …) → rejected with the code: Twilio validated the request and refused it, so the same request
//   would be refused again.
// - 5xx, 3xx, timeouts, connection errors, an unreadable 2xx → unknown: the call may exist. Never
//   retried, because a retry could call the lead twice.
// Twilio's error messages quote phone numbers; they are redacted before they leave the adapter.

import type { CallResult } from '../core/ports.ts';

/** An error from Twilio with its HTTP status and code, message redacted. */
export class TwilioApiError extends Error {
  override readonly name = 'TwilioApiError';
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code: number | undefined,
  ) {
    super(message);
  }
}

const THROTTLE_CODES = new Set([20429, 22005]);
export const CREDENTIAL_STATUSES = new Set([401, 403, 404]);

/**
 * Twilio errors that say the run's own setup is wrong, not the lead: the From number is not the
 * account's or not verified (21210, 21212, 21606), or the call content (Url/Twiml) is missing or
 * invalid (21205, 21213).
 */
const CONFIGURATION_ERRORS = new Set([21205, 21210, 21212, 21213, 21606]);

/** Maps what a create threw to the port's result; see the file header for the reasons. */
export function classifyCreateError(error: unknown): Exclude<CallResult, { kind: 'created' }> {
  const http = httpFailure(error);
  if (http) {
    const { status, code } = http;
    if (status === 429 || (code !== undefined && THROTTLE_CODES.has(code))) return { kind: 'throttled' };
    if (CREDENTIAL_STATUSES.has(status)) return { kind: 'throttled' };
    if (status >= 400 && status < 500) {
      const message = redact(http.message);
      if (code !== undefined && CONFIGURATION_ERRORS.has(code))
        return { kind: 'misconfigured', code, message };
      return { kind: 'rejected', code, message };
    }
    return { kind: 'unknown', reason: `HTTP ${status}${code === undefined ? '' : ` (code ${code})`}` };
  }
  return { kind: 'unknown', reason: transportReason(error) };
}

export class CredentialsUnavailable extends Error {
  override readonly name = 'CredentialsUnavailable';
}

/** A non-2xx answer: the HTTP status, and Twilio's code and message from its JSON error body. */
class TwilioHttpError extends Error {
  override readonly name = 'TwilioHttpError';
  constructor(
    readonly status: number,
    readonly code: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Twilio's error body is `{code, message, status, more_info}` (the newer RFC 9457 form has `detail`).
 * The status is the response's; a body without a message or not JSON gets a generic one.
 */
export function httpError(status: number, text: string): TwilioHttpError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!isRecord(body))
    return new TwilioHttpError(status, undefined, `[HTTP ${status}] Failed to execute request`);
  const message =
    typeof body.detail === 'string'
      ? body.detail
      : typeof body.message === 'string'
        ? body.message
        : `HTTP ${status}`;
  return new TwilioHttpError(status, typeof body.code === 'number' ? body.code : undefined, message);
}

/** A request's failures as `{code, message}`: its timeout as ETIMEDOUT, a socket error by its code. */
export function transportError(error: unknown): unknown {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' });
  }
  // The socket's error (ECONNREFUSED, ECONNRESET…), on the error itself or as its cause (fetch's way).
  for (let cause = error, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++) {
    const { code } = cause as { code?: unknown };
    if (typeof code === 'string') return Object.assign(new Error(cause.message), { code });
  }
  return error;
}

interface HttpFailure {
  status: number;
  code: number | undefined;
  message: string;
}

/** An HTTP answer that was not a success, with Twilio's code and message. */
export function httpFailure(error: unknown): HttpFailure | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { status, code, message, detail } = error as Record<string, unknown>;
  if (typeof status !== 'number' || error instanceof CredentialsUnavailable) return undefined;
  return {
    status,
    code: typeof code === 'number' ? code : undefined,
    message: typeof detail === 'string' ? detail : typeof message === 'string' ? message : `HTTP ${status}`,
  };
}

function transportReason(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message : String(error);
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || /timeout/i.test(text)) return 'timeout';
  if (typeof code === 'string') return `network error (${code})`;
  // e.g. a 2xx body that is not JSON: the request reached Twilio, so the call may exist.
  return `unexpected error (${redact(text).slice(0, 200)})`;
}

export function toApiError(error: unknown): TwilioApiError {
  if (error instanceof CredentialsUnavailable) return new TwilioApiError(error.message, undefined, undefined);
  const http = httpFailure(error);
  if (http) return new TwilioApiError(redact(http.message), http.status, http.code);
  return new TwilioApiError(transportReason(error), undefined, undefined);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Phone numbers (and any long digit run) out of provider messages, which end up in logs. */
export function redact(message: string): string {
  return message.replace(/\+?\d[\d ().-]{5,}\d/g, '[number]');
}
