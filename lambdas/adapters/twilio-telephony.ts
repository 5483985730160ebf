// (adapter) The Telephony port on Twilio's REST API (the 2010-04-01 Calls resource), pointed at any
// Twilio-compatible base URL (the simulator locally, Twilio in AWS).
//
// It speaks HTTP itself, through Node's fetch, rather than through the official client: the four
// requests it needs (create, fetch, update and list calls) are a few lines each, while the official
// client is 3.35 MB of a 4.7 MB Lambda bundle, loaded on every cold start. What that client did and
// is done here by hand: form-encoded bodies (StatusCallbackEvent repeated), HTTP Basic auth, a timeout
// per request, Twilio's JSON errors `{code, message, status, more_info}`, and paging by
// `next_page_uri`. Redirects are not followed, and nothing is ever sent twice but after a 401 (below).
//
// How a create's outcome is classified decides whether a lead can be called twice, so it is spelled
// out here and in `classifyCreateError`:
// - 2xx with a CallSid → created.
// - 429 / 20429, and 22005 (Twilio's call queue is full) → throttled: never processed, retry later.
// - 401 / 403 / 404 (bad or rotated credentials, suspended account, wrong account URL) → throttled,
//   after one credential refresh. The call was certainly not created, and it is not the lead's
//   fault: failing it ('rejected') would fail every lead of every run until someone fixes the
//   secret; 'unknown' would pin a slot per attempt for the reconciler to settle. As 'throttled' the
//   job goes back to the queue with a backoff, nothing is lost, and the run resumes by itself once
//   the credentials work. Each occurrence is logged at error level so that an alarm can fire.
// - Any other 4xx (21211 invalid To, 21214, 21215, 21216, 21217, 21210, 13224, 13227, 32205, 14111,
//   21205, 21401, …) → rejected with the code: Twilio validated the request and refused it, so the
//   same request would be refused again.
// - 5xx, 3xx, timeouts, connection errors, an unreadable 2xx → unknown: the call may exist. Never
//   retried here, because a retry could call the lead twice.
// Twilio's error messages quote phone numbers; they are redacted before they leave this file.

import type { CallRequest, CallResult, Log, Telephony } from '../core/ports.ts';
import { isTwilioCallStatus, type TwilioCallStatus } from '../core/states.ts';

export const TWILIO_API_BASE_URL = 'https://api.twilio.com';

/** Every status callback event: the webhook needs `initiated`…`answered` to track dialing vs calling. */
export const STATUS_CALLBACK_EVENTS = ['initiated', 'ringing', 'answered', 'completed'];

export interface TwilioCredentialPair {
  accountSid: string;
  authToken: string;
}

/** Where credentials come from (twilio-credentials.ts provides one); `refresh` skips any cache. */
export interface TwilioCredentialProvider {
  get(options?: { refresh?: boolean }): Promise<TwilioCredentialPair>;
  readonly refreshable: boolean;
}

export interface TwilioTelephonyOptions {
  credentials: TwilioCredentialProvider | TwilioCredentialPair;
  /** TWILIO_API_BASE_URL: Twilio by default, or any compatible endpoint (may be plain http). */
  apiBaseUrl?: string;
  /** Per request; a create that times out is `unknown`. */
  timeoutMs?: number;
  /**
   * Reuse connections between requests. Off by default: a Lambda frozen between invocations can
   * wake up holding a socket the far end has closed, and a create sent on it fails with ECONNRESET,
   * an `unknown` outcome that holds a slot until reconciled. A fresh connection costs one TLS
   * handshake, nothing next to a phone ringing.
   */
  keepAlive?: boolean;
  log?: Log;
}

export interface TwilioCallSummary {
  sid: string;
  /** A status the core does not know is reported as `queued`: live, so its slot stays held. */
  status: TwilioCallStatus;
  /** Empty until Twilio dials the call (a call in Twilio's CPS backlog has none). */
  startTime?: Date;
  dateCreated?: Date;
  endTime?: Date;
}

export type CallUpdateResult =
  | { kind: 'updated'; status: TwilioCallStatus }
  | { kind: 'not-found' }
  /** Twilio 21220: the call is past the point where this change applies (e.g. cancel once answered). */
  | { kind: 'invalid-state'; message: string };

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
const CREDENTIAL_STATUSES = new Set([401, 403, 404]);

/** Maps what a create threw to the port's result; see the file header for the reasons. */
export function classifyCreateError(error: unknown): Exclude<CallResult, { kind: 'created' }> {
  const http = httpFailure(error);
  if (http) {
    const { status, code } = http;
    if (status === 429 || (code !== undefined && THROTTLE_CODES.has(code))) return { kind: 'throttled' };
    if (CREDENTIAL_STATUSES.has(status)) return { kind: 'throttled' };
    if (status >= 400 && status < 500) return { kind: 'rejected', code, message: redact(http.message) };
    return { kind: 'unknown', reason: `HTTP ${status}${code === undefined ? '' : ` (code ${code})`}` };
  }
  return { kind: 'unknown', reason: transportReason(error) };
}

const API_VERSION = '2010-04-01';
/** What the official client was asked for: pages of 100, at most 1,000 calls per list. */
const PAGE_SIZE = 100;
const LIST_LIMIT = 1000;

export class TwilioTelephony implements Telephony {
  readonly #credentials: TwilioCredentialProvider;
  readonly #apiBaseUrl: string;
  readonly #timeoutMs: number;
  readonly #keepAlive: boolean;
  readonly #log: Log | undefined;

  constructor(options: TwilioTelephonyOptions) {
    const { credentials } = options;
    this.#credentials =
      'get' in credentials ? credentials : { refreshable: false, get: async () => credentials };
    this.#apiBaseUrl = (options.apiBaseUrl ?? TWILIO_API_BASE_URL).replace(/\/+$/, '');
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#keepAlive = options.keepAlive ?? false;
    this.#log = options.log;
  }

  async createCall(request: CallRequest): Promise<CallResult> {
    const form = new URLSearchParams({ To: request.to, From: request.from });
    if ('twimlUrl' in request.content) form.set('Url', request.content.twimlUrl);
    else form.set('Twiml', request.content.twiml);
    form.set('StatusCallback', request.statusCallbackUrl);
    form.set('StatusCallbackMethod', 'POST');
    for (const event of STATUS_CALLBACK_EVENTS) form.append('StatusCallbackEvent', event);
    form.set('Timeout', String(request.ringTimeoutSeconds));
    form.set('TimeLimit', String(request.timeLimitSeconds));
    let call: unknown;
    try {
      // Sent once: only a 401 is sent again (see #withAccount), and Twilio processed nothing then.
      call = await this.#withAccount((account) =>
        this.#json(account, 'POST', `${this.#callsUrl(account)}.json`, form),
      );
    } catch (error) {
      if (error instanceof CredentialsUnavailable) {
        // No request was sent: certainly not created.
        this.#log?.error('Twilio credentials unavailable; call not placed', { error: error.message });
        return { kind: 'throttled' };
      }
      const result = classifyCreateError(error);
      const http = httpFailure(error);
      if (http && CREDENTIAL_STATUSES.has(http.status)) {
        this.#log?.error('Twilio refused the account credentials; call not placed', {
          status: http.status,
          code: http.code,
        });
      }
      return result;
    }
    const sid = isRecord(call) ? call.sid : undefined;
    if (typeof sid !== 'string' || !sid.startsWith('CA')) {
      return { kind: 'unknown', reason: 'create answered without a CallSid' };
    }
    return { kind: 'created', callSid: sid, status: knownStatus(isRecord(call) ? call.status : undefined) };
  }

  /** The call's current state, or undefined when Twilio has no such call. */
  async fetchCall(sid: string): Promise<TwilioCallSummary | undefined> {
    try {
      const call = await this.#withAccount((account) =>
        this.#json(account, 'GET', this.#callUrl(account, sid)),
      );
      return summarize(call);
    } catch (error) {
      if (httpFailure(error)?.status === 404) return undefined;
      throw toApiError(error);
    }
  }

  /**
   * Calls to `to` that started at or after `startedAfter`, plus those still in Twilio's queue, which
   * have no start time yet and so escape a StartTime filter: a create whose answer was lost may be
   * sitting there. Also filtered here (on the start time, else the creation time), because Twilio
   * documents the filter by day only. Pass a time a little before the create to allow for clock skew.
   */
  async findCalls(query: { to: string; startedAfter: Date }): Promise<TwilioCallSummary[]> {
    try {
      const [started, queued] = await Promise.all([
        this.#list({ To: query.to, 'StartTime>': iso8601DateTime(query.startedAfter) }),
        this.#list({ To: query.to, Status: 'queued' }),
      ]);
      const bySid = new Map<string, TwilioCallSummary>();
      for (const call of [...started, ...queued]) bySid.set(call.sid, call);
      const after = query.startedAfter.getTime();
      return [...bySid.values()].filter((call) => {
        const at = call.startTime ?? call.dateCreated;
        return at === undefined || at.getTime() >= after;
      });
    } catch (error) {
      throw toApiError(error);
    }
  }

  /** Ends a queued or ringing call; one already answered is `invalid-state` (hang it up instead). */
  cancelCall(sid: string): Promise<CallUpdateResult> {
    return this.#update(sid, 'canceled');
  }

  /** Ends any live call (Twilio reports an unanswered one as `canceled`). */
  hangUpCall(sid: string): Promise<CallUpdateResult> {
    return this.#update(sid, 'completed');
  }

  async #update(sid: string, status: 'canceled' | 'completed'): Promise<CallUpdateResult> {
    try {
      const call = await this.#withAccount((account) =>
        this.#json(account, 'POST', this.#callUrl(account, sid), new URLSearchParams({ Status: status })),
      );
      return { kind: 'updated', status: knownStatus(isRecord(call) ? call.status : undefined) };
    } catch (error) {
      const http = httpFailure(error);
      if (http?.status === 404) return { kind: 'not-found' };
      if (http?.code === 21220) return { kind: 'invalid-state', message: redact(http.message) };
      throw toApiError(error);
    }
  }

  /** Every page of a filtered list, up to LIST_LIMIT calls, following Twilio's `next_page_uri`. */
  #list(filters: Record<string, string>): Promise<TwilioCallSummary[]> {
    return this.#withAccount(async (account) => {
      const calls: TwilioCallSummary[] = [];
      const query = new URLSearchParams({ ...filters, PageSize: String(PAGE_SIZE) });
      let url: string | undefined = `${this.#callsUrl(account)}.json?${query}`;
      while (url !== undefined && calls.length < LIST_LIMIT) {
        const page = await this.#json(account, 'GET', url);
        if (!isRecord(page) || !Array.isArray(page.calls)) throw new Error('a list page without `calls`');
        calls.push(...page.calls.map(summarize));
        url = page.calls.length === 0 ? undefined : this.#nextPage(page);
      }
      return calls.slice(0, LIST_LIMIT);
    });
  }

  /**
   * The next page's URL on our base URL. Twilio names it by path (`next_page_uri`); an absolute URL
   * is accepted on Twilio's API host or ours only, as the credentials go with it.
   */
  #nextPage(page: Record<string, unknown>): string | undefined {
    const meta = page.meta;
    const next =
      (isRecord(meta) && typeof meta.next_page_url === 'string' && meta.next_page_url) ||
      (typeof page.next_page_uri === 'string' && page.next_page_uri) ||
      undefined;
    if (next === undefined) return undefined;
    if (next.startsWith('/')) return `${this.#apiBaseUrl}${next}`;
    const url = new URL(next);
    if (url.origin === new URL(this.#apiBaseUrl).origin) return next;
    if (/^api(\.[a-z0-9-]+)*\.twilio\.com$/.test(url.hostname)) {
      return `${this.#apiBaseUrl}${url.pathname}${url.search}`;
    }
    throw new Error(`a next page on another host (${url.host})`);
  }

  #callsUrl(account: Account): string {
    return `${this.#apiBaseUrl}/${API_VERSION}/Accounts/${encodeURIComponent(account.accountSid)}/Calls`;
  }

  #callUrl(account: Account, sid: string): string {
    return `${this.#callsUrl(account)}/${encodeURIComponent(sid)}.json`;
  }

  /**
   * Runs `operation` with the current credentials. A 401 means Twilio did not process the request,
   * so after one refresh (a rotated token) it is safe to send it again, create included.
   */
  async #withAccount<T>(operation: (account: Account) => Promise<T>): Promise<T> {
    const account = await this.#account(false);
    try {
      return await operation(account);
    } catch (error) {
      if (httpFailure(error)?.status !== 401 || !this.#credentials.refreshable) throw error;
      const refreshed = await this.#account(true);
      if (refreshed.authorization === account.authorization) throw error;
      return operation(refreshed);
    }
  }

  async #account(refresh: boolean): Promise<Account> {
    let credentials: TwilioCredentialPair;
    try {
      credentials = await this.#credentials.get({ refresh });
    } catch (error) {
      throw new CredentialsUnavailable((error as Error).message);
    }
    const { accountSid, authToken } = credentials;
    // What the official client refused before sending anything.
    if (!accountSid?.startsWith('AC') || !authToken) {
      throw new CredentialsUnavailable('Twilio credentials need an account SID (AC…) and an auth token');
    }
    return {
      accountSid,
      authorization: `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`,
    };
  }

  /** One request; a 2xx body parsed as JSON, anything else thrown as a TwilioHttpError. */
  async #json(
    account: Account,
    method: 'GET' | 'POST',
    url: string,
    form?: URLSearchParams,
  ): Promise<unknown> {
    const headers: Record<string, string> = {
      authorization: account.authorization,
      accept: 'application/json',
    };
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    // keepAlive off: the socket is closed after the answer, so the next request opens a fresh one.
    if (!this.#keepAlive) headers.connection = 'close';
    let status: number;
    let text: string;
    try {
      const response = await fetch(url, {
        method,
        headers,
        ...(form ? { body: form.toString() } : {}),
        redirect: 'manual',
        // Covers the body too: a create whose answer stops halfway is a timeout, hence `unknown`.
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      throw transportError(error);
    }
    if (status < 200 || status >= 300) throw httpError(status, text);
    return JSON.parse(text);
  }
}

interface Account {
  accountSid: string;
  authorization: string;
}

class CredentialsUnavailable extends Error {
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
function httpError(status: number, text: string): TwilioHttpError {
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

/** fetch's failures as `{code, message}`: its timeout as ETIMEDOUT, a socket error by its code. */
function transportError(error: unknown): unknown {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' });
  }
  // fetch throws TypeError('fetch failed') with the socket's error (ECONNREFUSED, ECONNRESET…) as cause.
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
function httpFailure(error: unknown): HttpFailure | undefined {
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

function toApiError(error: unknown): TwilioApiError {
  if (error instanceof CredentialsUnavailable) return new TwilioApiError(error.message, undefined, undefined);
  const http = httpFailure(error);
  if (http) return new TwilioApiError(redact(http.message), http.status, http.code);
  return new TwilioApiError(transportReason(error), undefined, undefined);
}

function knownStatus(status: unknown): TwilioCallStatus {
  return typeof status === 'string' && isTwilioCallStatus(status) ? status : 'queued';
}

/** A Call resource as JSON (snake_case, RFC 2822 dates, null when unset) to its summary. */
function summarize(call: unknown): TwilioCallSummary {
  if (!isRecord(call) || typeof call.sid !== 'string') throw new Error('a call without a sid');
  const startTime = rfc2822(call.start_time);
  const dateCreated = rfc2822(call.date_created);
  const endTime = rfc2822(call.end_time);
  return {
    sid: call.sid,
    status: knownStatus(call.status),
    ...(startTime ? { startTime } : {}),
    ...(dateCreated ? { dateCreated } : {}),
    ...(endTime ? { endTime } : {}),
  };
}

/** `Tue, 10 Aug 2010 08:02:17 +0000`, which Date parses; anything else is no date. */
function rfc2822(value: unknown): Date | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** As the official client sends a Date filter: `YYYY-MM-DDTHH:mm:ssZ`, UTC, whole seconds. */
function iso8601DateTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Phone numbers (and any long digit run) out of provider messages, which end up in logs. */
export function redact(message: string): string {
  return message.replace(/\+?\d[\d ().-]{5,}\d/g, '[number]');
}
