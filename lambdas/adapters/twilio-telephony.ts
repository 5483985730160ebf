// (adapter) The Telephony port on Twilio's REST API through the official client, pointed at any
// Twilio-compatible base URL (the simulator locally, Twilio in AWS).
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
//   retried here (the client's autoRetry is off), because a retry could call the lead twice.
// Twilio's error messages quote phone numbers; they are redacted before they leave this file.

import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient.js';
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

/**
 * The official client's HTTP layer with Twilio's API origin swapped for `baseUrl`. `edge`/`region`
 * (or TWILIO_EDGE/TWILIO_REGION in the environment) rename api.twilio.com, so any api.*.twilio.com
 * host is swapped too.
 */
export class BaseUrlRequestClient extends twilio.RequestClient {
  readonly #baseUrl: string;

  constructor(baseUrl: string, options: RequestClient.RequestClientOptions = {}) {
    super(options);
    this.#baseUrl = baseUrl.replace(/\/+$/, '');
  }

  override request<TData>(opts: RequestClient.RequestOptions<TData>) {
    return super.request({ ...opts, uri: rebase(opts.uri, this.#baseUrl) });
  }
}

export function rebase(uri: string, baseUrl: string): string {
  if (baseUrl === TWILIO_API_BASE_URL) return uri;
  const url = new URL(uri);
  if (url.hostname !== 'api.twilio.com' && !/^api\.[a-z0-9.-]+\.twilio\.com$/.test(url.hostname)) return uri;
  return `${baseUrl.replace(/\/+$/, '')}${url.pathname}${url.search}`;
}

const THROTTLE_CODES = new Set([20429, 22005]);
const CREDENTIAL_STATUSES = new Set([401, 403, 404]);

/** Maps what `calls.create` threw to the port's result; see the file header for the reasons. */
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

export class TwilioTelephony implements Telephony {
  readonly #credentials: TwilioCredentialProvider;
  readonly #apiBaseUrl: string;
  readonly #timeoutMs: number;
  readonly #keepAlive: boolean;
  readonly #log: Log | undefined;
  #client: { key: string; client: twilio.Twilio } | undefined;

  constructor(options: TwilioTelephonyOptions) {
    const { credentials } = options;
    this.#credentials =
      'get' in credentials ? credentials : { refreshable: false, get: async () => credentials };
    this.#apiBaseUrl = options.apiBaseUrl ?? TWILIO_API_BASE_URL;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#keepAlive = options.keepAlive ?? false;
    this.#log = options.log;
  }

  async createCall(request: CallRequest): Promise<CallResult> {
    const params = {
      to: request.to,
      from: request.from,
      ...('twimlUrl' in request.content
        ? { url: request.content.twimlUrl }
        : { twiml: request.content.twiml }),
      statusCallback: request.statusCallbackUrl,
      statusCallbackMethod: 'POST',
      statusCallbackEvent: STATUS_CALLBACK_EVENTS,
      timeout: request.ringTimeoutSeconds,
      timeLimit: request.timeLimitSeconds,
    };
    let call: { sid?: unknown; status?: unknown };
    try {
      call = await this.#withClient((client) => client.calls.create(params));
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
    if (typeof call.sid !== 'string' || !call.sid.startsWith('CA')) {
      return { kind: 'unknown', reason: 'create answered without a CallSid' };
    }
    return { kind: 'created', callSid: call.sid, status: knownStatus(call.status) };
  }

  /** The call's current state, or undefined when Twilio has no such call. */
  async fetchCall(sid: string): Promise<TwilioCallSummary | undefined> {
    try {
      return summarize(await this.#withClient((client) => client.calls(sid).fetch()));
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
        this.#withClient((client) =>
          client.calls.list({ to: query.to, startTimeAfter: query.startedAfter, pageSize: 100, limit: 1000 }),
        ),
        this.#withClient((client) =>
          client.calls.list({ to: query.to, status: 'queued', pageSize: 100, limit: 1000 }),
        ),
      ]);
      const bySid = new Map<string, TwilioCallSummary>();
      for (const call of [...started, ...queued]) bySid.set(call.sid, summarize(call));
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
      const call = await this.#withClient((client) => client.calls(sid).update({ status }));
      return { kind: 'updated', status: knownStatus(call.status) };
    } catch (error) {
      const http = httpFailure(error);
      if (http?.status === 404) return { kind: 'not-found' };
      if (http?.code === 21220) return { kind: 'invalid-state', message: redact(http.message) };
      throw toApiError(error);
    }
  }

  /**
   * Runs `operation` with a client for the current credentials. A 401 means Twilio did not process
   * the request, so after one refresh (a rotated token) it is safe to send it again, create included.
   */
  async #withClient<T>(operation: (client: twilio.Twilio) => Promise<T>): Promise<T> {
    const client = await this.#clientFor(false);
    try {
      return await operation(client);
    } catch (error) {
      if (httpFailure(error)?.status !== 401 || !this.#credentials.refreshable) throw error;
      const refreshed = await this.#clientFor(true);
      if (refreshed === client) throw error;
      return operation(refreshed);
    }
  }

  async #clientFor(refresh: boolean): Promise<twilio.Twilio> {
    let credentials: TwilioCredentialPair;
    try {
      credentials = await this.#credentials.get({ refresh });
    } catch (error) {
      throw new CredentialsUnavailable((error as Error).message);
    }
    const key = `${credentials.accountSid}:${credentials.authToken}`;
    if (this.#client?.key !== key) {
      const httpClient = new BaseUrlRequestClient(this.#apiBaseUrl, {
        timeout: this.#timeoutMs,
        keepAlive: this.#keepAlive,
        // Never: a retried create can call a lead twice (DESIGN invariant 3).
        autoRetry: false,
      });
      this.#client = { key, client: twilio(credentials.accountSid, credentials.authToken, { httpClient }) };
    }
    return this.#client.client;
  }
}

class CredentialsUnavailable extends Error {
  override readonly name = 'CredentialsUnavailable';
}

interface HttpFailure {
  status: number;
  code: number | undefined;
  message: string;
}

/** Twilio's RestException and TwilioServiceException both carry the HTTP status and Twilio's code. */
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

function summarize(call: {
  sid: string;
  status: unknown;
  startTime?: Date | null;
  dateCreated?: Date | null;
  endTime?: Date | null;
}): TwilioCallSummary {
  return {
    sid: call.sid,
    status: knownStatus(call.status),
    ...(validDate(call.startTime) ? { startTime: call.startTime } : {}),
    ...(validDate(call.dateCreated) ? { dateCreated: call.dateCreated } : {}),
    ...(validDate(call.endTime) ? { endTime: call.endTime } : {}),
  };
}

function validDate(value: Date | null | undefined): value is Date {
  return value instanceof Date && !Number.isNaN(value.getTime());
}

/** Phone numbers (and any long digit run) out of provider messages, which end up in logs. */
export function redact(message: string): string {
  return message.replace(/\+?\d[\d ().-]{5,}\d/g, '[number]');
}
