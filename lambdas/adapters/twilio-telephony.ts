// (adapter) The Telephony port on Twilio's REST API (the 2010-04-01 Calls resource), pointed at any
// Twilio-compatible base URL (the simulator locally, Twilio in AWS).
//
// It speaks HTTP itself, through node:https, rather than through the official client: the four
// requests it needs (create, fetch, update and list calls) are a few lines each, while the official
// client is 3.35 MB of a 4.7 MB Lambda bundle, loaded on every cold start. What that client would do
// is done here by hand: form-encoded bodies (StatusCallbackEvent repeated), HTTP Basic auth, a timeout
// per request, Twilio's JSON errors `{code, message, status, more_info}`, and paging by
// `next_page_uri`. Redirects are not followed, and nothing is ever sent twice but after a 401 (below).
// Its requests go through node:http(s), not Node's fetch (http-request.ts says why).
//
// A create's outcome is classified in twilio-errors.ts (`classifyCreateError`): created only with a
// CallSid; a 401 is sent once more after a credential refresh, as Twilio processed nothing then.

import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import pLimit, { type LimitFunction } from 'p-limit';
import type { CallContent, CallRequest, CallResult, FoundCall, Log, Telephony } from '../core/ports.ts';
import { isTwilioCallStatus, type TwilioCallStatus } from '../core/states.ts';
import { type HttpAgents, sendHttpRequest } from './http-request.ts';
import {
  CREDENTIAL_STATUSES,
  CredentialsUnavailable,
  classifyCreateError,
  httpError,
  httpFailure,
  isRecord,
  redact,
  toApiError,
  transportError,
} from './twilio-errors.ts';

export const TWILIO_API_BASE_URL = 'https://api.twilio.com';

/**
 * The status callbacks the webhook acts on: `answered` (dialing → calling) and `completed` (every
 * final status comes on it: busy, no-answer, failed and canceled too). `initiated` and `ringing` are
 * not asked for: the job is `dialing` from its acquire, so they could change nothing, and they were
 * half of the webhook's invocations (a callback for a call placed before still gets its 200).
 */
export const STATUS_CALLBACK_EVENTS = ['answered', 'completed'];

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
  /** Creates sent at once by this client; the rest wait their turn before they are sent. */
  createsInFlight?: number;
  log?: Log;
}

/**
 * Twilio limits the REST requests an account has in flight at once, and answers past it 429 (error
 * 20429: never processed, safe to retry). A dispatcher filling a cap of hundreds places its calls
 * without waiting for each create, so one container could send hundreds at once: this many are sent,
 * the others wait before they are sent (their timeout starts when they are). A create that waited
 * is still one request, sent once.
 */
export const CREATES_IN_FLIGHT = 50;

export interface TwilioCallSummary {
  sid: string;
  /** A status the core does not know is reported as `queued`: live, so its slot stays held. */
  status: TwilioCallStatus;
  /** Twilio's AnsweredBy, once answering-machine detection has told. */
  answeredBy?: string;
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

const API_VERSION = '2010-04-01';
const FINAL_STATUSES = new Set<TwilioCallStatus>(['completed', 'busy', 'failed', 'no-answer', 'canceled']);
/** Pages of 100, at most 1,000 calls per list. */
const PAGE_SIZE = 100;
const LIST_LIMIT = 1000;

export class TwilioTelephony implements Telephony {
  readonly #credentials: TwilioCredentialProvider;
  readonly #apiBaseUrl: string;
  readonly #timeoutMs: number;
  readonly #keepAlive: boolean;
  /** Connections for each scheme: reused only with `keepAlive`. */
  readonly #agents: HttpAgents;
  readonly #log: Log | undefined;
  readonly #createSlots: LimitFunction;

  constructor(options: TwilioTelephonyOptions) {
    const { credentials } = options;
    this.#credentials =
      'get' in credentials ? credentials : { refreshable: false, get: async () => credentials };
    this.#apiBaseUrl = (options.apiBaseUrl ?? TWILIO_API_BASE_URL).replace(/\/+$/, '');
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#keepAlive = options.keepAlive ?? false;
    this.#agents = {
      http: new HttpAgent({ keepAlive: this.#keepAlive }),
      https: new HttpsAgent({ keepAlive: this.#keepAlive }),
    };
    this.#log = options.log;
    this.#createSlots = pLimit(options.createsInFlight ?? CREATES_IN_FLIGHT);
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
    if (request.machineDetection) {
      // Asynchronous: the call goes on at once (a human is never held in silence while Twilio
      // listens), and the verdict is posted to the webhook, signed like a status callback.
      form.set('MachineDetection', request.machineDetection.mode);
      form.set('AsyncAmd', 'true');
      form.set('AsyncAmdStatusCallback', request.machineDetection.callbackUrl);
      form.set('AsyncAmdStatusCallbackMethod', 'POST');
    }
    let call: unknown;
    try {
      // Sent once: only a 401 is sent again (see #withAccount), and Twilio processed nothing then.
      call = await this.#createSlots(() =>
        this.#withAccount((account) => this.#json(account, 'POST', `${this.#callsUrl(account)}.json`, form)),
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
  async findCalls(query: { to: string; startedAfter: Date }): Promise<(TwilioCallSummary & FoundCall)[]> {
    try {
      const [started, queued] = await Promise.all([
        this.#list({ To: query.to, 'StartTime>': iso8601DateTime(query.startedAfter) }),
        this.#list({ To: query.to, Status: 'queued' }),
      ]);
      const bySid = new Map<string, TwilioCallSummary>();
      for (const call of [...started, ...queued]) bySid.set(call.sid, call);
      const after = query.startedAfter.getTime();
      return [...bySid.values()]
        .filter((call) => {
          const at = call.startTime ?? call.dateCreated;
          return at === undefined || at.getTime() >= after;
        })
        .map((call) => {
          // When the create reached Twilio: what ties a call to the attempt that sent it.
          const createdAt = call.dateCreated ?? call.startTime;
          return { ...call, ...(createdAt ? { createdAt } : {}) };
        });
    } catch (error) {
      throw toApiError(error);
    }
  }

  /**
   * Calls that ended at or after `endedAfter` (Twilio's `EndTime>` filter; filtered here on the end
   * time too, since Twilio documents the filter by day), final ones only.
   */
  async listEndedCalls(endedAfter: Date): Promise<TwilioCallSummary[]> {
    try {
      const ended = await this.#list({ 'EndTime>': iso8601DateTime(endedAfter) });
      const after = endedAfter.getTime();
      return ended.filter(
        (call) =>
          FINAL_STATUSES.has(call.status) && call.endTime !== undefined && call.endTime.getTime() >= after,
      );
    } catch (error) {
      throw toApiError(error);
    }
  }

  /** Ends a queued or ringing call; one already answered is `invalid-state` (hang it up instead). */
  cancelCall(sid: string): Promise<CallUpdateResult> {
    return this.#update(sid, new URLSearchParams({ Status: 'canceled' }));
  }

  /** Ends any live call (Twilio reports an unanswered one as `canceled`). */
  hangUpCall(sid: string): Promise<CallUpdateResult> {
    return this.#update(sid, new URLSearchParams({ Status: 'completed' }));
  }

  /** What a call in progress hears from now on (a voicemail): its TwiML replaced, or fetched from a URL. */
  redirectCall(sid: string, content: CallContent): Promise<CallUpdateResult> {
    return this.#update(
      sid,
      new URLSearchParams('twimlUrl' in content ? { Url: content.twimlUrl } : { Twiml: content.twiml }),
    );
  }

  async #update(sid: string, form: URLSearchParams): Promise<CallUpdateResult> {
    try {
      const call = await this.#withAccount((account) =>
        this.#json(account, 'POST', this.#callUrl(account, sid), form),
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
    // Refused before anything is sent: Twilio would answer 401 to these.
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
      // The timeout covers the body too: a create whose answer stops halfway is `unknown`.
      ({ status, text } = await sendHttpRequest(url, {
        method,
        headers,
        body: form?.toString(),
        timeoutMs: this.#timeoutMs,
        agents: this.#agents,
      }));
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
    ...(typeof call.answered_by === 'string' && call.answered_by !== ''
      ? { answeredBy: call.answered_by }
      : {}),
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
