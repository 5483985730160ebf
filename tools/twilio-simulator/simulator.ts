/**
 * An in-process Twilio double: enough of the Voice REST API for dialgate, status callbacks signed
 * exactly like Twilio's, seeded fault injection, and an observer that tests treat as ground truth.
 * The observer sees only what Twilio would see (creates, state changes, callbacks), never dialgate's
 * database, so "never more than N live calls per run" is checked from the outside.
 *
 * Start it:
 *   const sim = await startTwilioSimulator({ ringMs: 30, talkMs: 50, random: mulberry32(42) });
 *   // point the adapter at sim.url with sim.accountSid / sim.authToken
 *   await sim.waitForFinal(10);
 *   expect(sim.stats().runs.R?.maxLive).toBeLessThanOrEqual(3);
 *   await sim.stop();
 * Standalone: `npx tsx bin/twilio-simulator.ts` (PORT, prints URL, SID and token).
 * Also exported: `mulberry32(seed)` (seeded PRNG), `weightedOutcomes(weights, random)` (a behavior),
 * `twilioSignature(token, url, params)` (to forge or check signatures in other tests), `rfc2822`.
 *
 * REST (HTTP Basic accountSid:authToken, form-encoded in, JSON out, Twilio's error shape
 * `{code, message, more_info, status}`):
 *   POST /2010-04-01/Accounts/{Sid}/Calls.json        create (To, From, Url|Twiml, StatusCallback,
 *        StatusCallbackMethod, StatusCallbackEvent (repeated), Timeout, TimeLimit) → 201 `queued`
 *   GET  /2010-04-01/Accounts/{Sid}/Calls.json        list: To, From, Status, StartTime, StartTime>,
 *        StartTime<, EndTime…, PageSize, Page; newest first, Twilio's paging fields
 *   GET  /2010-04-01/Accounts/{Sid}/Calls/{CallSid}.json   fetch
 *   POST /2010-04-01/Accounts/{Sid}/Calls/{CallSid}.json   Status=canceled (queued/ringing only, else
 *        21220) or Status=completed (hangs up any live call; an unanswered one ends `canceled`)
 *
 * Lifecycle per call: queued → initiated → ringing → in-progress → completed, or busy / no-answer /
 * failed / canceled as the call's script says. The REST resource shows `queued` until ringing (Twilio
 * has no REST status `initiated`), and `start_time` is empty until the call is dialed (initiated),
 * as Twilio documents: a call stuck in Twilio's CPS backlog is not found by a StartTime filter.
 * `Timeout` (ring seconds) shorter than the scripted ring makes it no-answer; `TimeLimit` caps talk.
 * `secondMs` says how long one Twilio second lasts here, so tests can use Timeout=3 at 10 ms/s.
 *
 * Callbacks: for the requested events only (just `completed` when none), every final status on
 * `completed`, sent one after another per call (so a receiver sees Twilio's order unless a fault
 * reorders them), signed with X-Twilio-Signature, retried once on a connection error or 5xx (the
 * StatusCallback's `#rc=N` fragment changes the count, `#rt=MS` the read timeout, as on Twilio).
 *
 * Faults (probabilities 0..1, decided from `random`): per callback drop / duplicate / reorder
 * (delivered after the call's next callback); per create 429 (nothing created), 500 without
 * creating, 500 after really creating (the caller cannot know). Each call draws its own PRNG seed
 * from `random` when created, so a call's jitter and callback faults replay with the same seed and
 * the same create order, whatever the timing of other calls.
 *
 * Observer: a call is live from its creation (queued) until Twilio considers it final, which is
 * before its final callback is sent. `stats()` has live / maxLive overall and per run (the `run`
 * query parameter of the StatusCallback URL), creates per To number, outcomes and callback counts;
 * `timeline()` has every create, final state and first send of a final callback, from which
 * `refillLatencies()` computes "final callback sent → next create received" per run.
 */

import { createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mulberry32 } from '../../lambdas/core/random.ts';

export type FinalCallStatus = 'completed' | 'busy' | 'no-answer' | 'failed' | 'canceled';
/** Statuses of the REST resource (Twilio's `initiated` exists only in callbacks). */
export type SimCallStatus = 'queued' | 'ringing' | 'in-progress' | FinalCallStatus;
export type CallbackEvent = 'initiated' | 'ringing' | 'answered' | 'completed';

export const FINAL_CALL_STATUSES: readonly FinalCallStatus[] = [
  'completed',
  'busy',
  'no-answer',
  'failed',
  'canceled',
];
const CALLBACK_EVENTS: readonly CallbackEvent[] = ['initiated', 'ringing', 'answered', 'completed'];

/** How one call goes. Times in ms; unset ones come from the simulator's defaults (with jitter). */
export interface CallScript {
  outcome: FinalCallStatus;
  /** Time in `queued` before the call is dialed (Twilio's CPS backlog). */
  queuedMs?: number;
  /** Time ringing before the outcome (answer, busy, no-answer, canceled) or before `failed`. */
  ringMs?: number;
  /** Time in progress once answered. */
  talkMs?: number;
}

export interface ApiError {
  status: number;
  code: number;
  message: string;
}

export interface SimulatorFaults {
  /** Per callback: deliver it twice (same SequenceNumber, same signature). */
  duplicateCallback?: number;
  /** Per callback: hold it and deliver it after the call's next callback. */
  reorderCallback?: number;
  /** Per callback: never deliver it. */
  dropCallback?: number;
  /** Per create: 429 / 20429, nothing created. */
  createThrottled?: number;
  /** Per create: the call is created and runs, but the answer is a 500. */
  createServerErrorAfterCreating?: number;
  /** Per create: 500, nothing created. */
  createServerErrorWithoutCreating?: number;
}

export interface SimulatorOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  accountSid?: string;
  authToken?: string;
  /** How each call goes; default: answered after the ring time, completed after the talk time. */
  behavior?: (call: { to: string; from: string; index: number }) => CallScript;
  queuedMs?: number;
  ringMs?: number;
  talkMs?: number;
  /** Each default time varies by ± this fraction (0..1), from the call's PRNG. Default 0. */
  jitter?: number;
  /** Real ms per Twilio second, for Timeout, TimeLimit and reported durations. Default 1000. */
  secondMs?: number;
  /** Source of all randomness; pass `mulberry32(seed)` for replayable runs. Default Math.random. */
  random?: () => number;
  faults?: SimulatorFaults;
  /** Delay before answering a create, after the call exists: a client timeout then loses the answer. */
  createDelayMs?: number;
  /** To numbers refused at create; default Twilio's magic +15005550001 (21211) and +15005550003 (21215). */
  rejectNumbers?: Record<string, ApiError>;
  /** Read timeout per callback delivery (Twilio: 15 s). */
  callbackTimeoutMs?: number;
  /** Pause before the retry of a failed callback delivery. */
  callbackRetryDelayMs?: number;
  /** One line per notable event (no phone numbers); for `npm start` and the standalone binary. */
  log?: (line: string) => void;
}

/** What `configure` may change on a running simulator (e.g. a chaos phase). */
export type SimulatorSettings = Pick<
  SimulatorOptions,
  'behavior' | 'faults' | 'createDelayMs' | 'rejectNumbers' | 'queuedMs' | 'ringMs' | 'talkMs' | 'jitter'
>;

export interface SimCallback {
  sequenceNumber: number;
  event: CallbackEvent;
  callStatus: string;
  /** The URL requested (for GET callbacks, with the parameters in its query string). */
  url: string;
  method: 'POST' | 'GET';
  params: Record<string, string>;
  signature: string;
  fate: 'pending' | 'held' | 'delivered' | 'failed' | 'dropped';
  /** HTTP requests made for it, retries and duplicates included. */
  attempts: number;
  responseStatus?: number;
  error?: string;
  duplicated: boolean;
  reordered: boolean;
  firstSentAt?: number;
}

export interface SimCall {
  sid: string;
  /** 0-based creation order. */
  index: number;
  to: string;
  from: string;
  url?: string;
  twiml?: string;
  statusCallback?: string;
  statusCallbackMethod: 'POST' | 'GET';
  statusCallbackEvents: CallbackEvent[];
  timeoutSeconds: number;
  timeLimitSeconds: number;
  /** The `run`, `job` and `attempt` query parameters of the StatusCallback URL, when present. */
  run?: string;
  job?: string;
  attempt?: string;
  script: Required<CallScript>;
  status: SimCallStatus;
  /** ms since the epoch, fractional. */
  createdAt: number;
  startedAt?: number;
  answeredAt?: number;
  endedAt?: number;
  finalCallbackAt?: number;
  durationSeconds?: number;
  callbacks: SimCallback[];
}

export type SimEvent =
  | { kind: 'create'; at: number; sid: string; run?: string }
  | { kind: 'final'; at: number; sid: string; run?: string; status: FinalCallStatus }
  /** First send of a call's final callback (not retries or duplicates). */
  | { kind: 'final-callback'; at: number; sid: string; run?: string };

export interface RunStats {
  created: number;
  live: number;
  maxLive: number;
  final: number;
}

export interface SimulatorStats {
  /** Authenticated create requests, whatever their answer. */
  createRequests: number;
  /** Calls that exist (including those whose create answered 500). */
  created: number;
  /** 4xx answers to creates (validation, rejected numbers). */
  rejected: number;
  throttled: number;
  serverErrors: { afterCreating: number; withoutCreating: number };
  live: number;
  maxLive: number;
  final: number;
  outcomes: Record<FinalCallStatus, number>;
  /** Keyed by the `run` query parameter of the StatusCallback URL. */
  runs: Record<string, RunStats>;
  createsByTo: Record<string, number>;
  callbacks: {
    /** Callbacks generated for requested events. */
    generated: number;
    /** HTTP requests made, retries and duplicates included. */
    attempts: number;
    /** Answered below 500 (a 4xx counts: Twilio does not retry it). */
    delivered: number;
    /** Answered 4xx (e.g. a 403 for a bad signature). */
    answered4xx: number;
    /** Every attempt failed (connection error, timeout, 5xx). */
    failed: number;
    retried: number;
    dropped: number;
    duplicated: number;
    reordered: number;
    /** Deliveries not finished yet. */
    inFlight: number;
  };
}

export interface TwilioSimulator {
  /** Base URL, e.g. http://127.0.0.1:PORT: use it as TWILIO_API_BASE_URL. */
  readonly url: string;
  readonly accountSid: string;
  readonly authToken: string;
  stats(): SimulatorStats;
  /** Snapshots of every call created, in creation order. */
  calls(): SimCall[];
  call(sid: string): SimCall | undefined;
  timeline(): SimEvent[];
  /** To numbers created more than once: a lead called twice. */
  repeatedTos(): string[];
  /** Per final callback sent in the run (all runs when omitted), ms until the next create in that run. */
  refillLatencies(run?: string): number[];
  /** Resolves when `predicate` holds (checked on every change); rejects after `timeoutMs`. */
  waitFor(predicate: (sim: TwilioSimulator) => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** Resolves when at least `count` calls are final. */
  waitForFinal(count: number, timeoutMs?: number): Promise<void>;
  /** Resolves when no call is live and no callback delivery is in flight. */
  settled(timeoutMs?: number): Promise<void>;
  /** Ends a live call now (the callee hangs up): `completed` if answered, else `canceled`. */
  hangUp(sid: string, status?: FinalCallStatus): boolean;
  configure(settings: SimulatorSettings): void;
  stop(): Promise<void>;
}

export const DEFAULT_ACCOUNT_SID = 'AC0123456789abcdef0123456789abcdef';
export const DEFAULT_AUTH_TOKEN = 'f00dfeedf00dfeedf00dfeedf00dfeed';

/** Twilio's magic test numbers that fail on create. */
export const DEFAULT_REJECT_NUMBERS: Record<string, ApiError> = {
  '+15005550001': {
    status: 400,
    code: 21211,
    message: "The 'To' number +15005550001 is not a valid phone number.",
  },
  '+15005550003': {
    status: 400,
    code: 21215,
    message:
      'Account not authorized to call +15005550003. Perhaps you need to enable some international permissions.',
  },
};

/** A small seeded PRNG, shared with the handlers' fault injection. */
export { mulberry32 };

/** A behavior picking each call's outcome by weight, e.g. `{ completed: 6, busy: 1, 'no-answer': 2 }`. */
export function weightedOutcomes(
  weights: Partial<Record<FinalCallStatus, number>>,
  random: () => number,
): NonNullable<SimulatorOptions['behavior']> {
  const entries = Object.entries(weights).filter(([, weight]) => (weight ?? 0) > 0) as [
    FinalCallStatus,
    number,
  ][];
  const total = entries.reduce((sum, [, weight]) => sum + weight, 0);
  if (total <= 0) throw new Error('weightedOutcomes needs a positive weight');
  return () => {
    let pick = random() * total;
    for (const [outcome, weight] of entries) {
      pick -= weight;
      if (pick < 0) return { outcome };
    }
    return { outcome: entries[entries.length - 1]![0] };
  };
}

/** Twilio's X-Twilio-Signature: base64(HMAC-SHA1(token, url + sorted name+value pairs)). */
export function twilioSignature(
  authToken: string,
  url: string,
  params: Record<string, string | string[]>,
): string {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, key) => {
      const value = params[key]!;
      // Repeated parameters: twilio-node signs each distinct value, sorted.
      const values = Array.isArray(value) ? [...new Set(value)].sort() : [value];
      return acc + values.map((v) => key + v).join('');
    }, url);
  return createHmac('sha1', authToken).update(Buffer.from(data, 'utf-8')).digest('base64');
}

/** RFC 2822 in UTC as Twilio writes it: `Tue, 31 Aug 2010 20:36:28 +0000`. */
export function rfc2822(ms: number): string {
  return new Date(ms).toUTCString().replace('GMT', '+0000');
}

export async function startTwilioSimulator(options: SimulatorOptions = {}): Promise<TwilioSimulator> {
  const simulator = new Simulator(options);
  await simulator.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  return simulator;
}

// ---------------------------------------------------------------------------------------------------

const API_VERSION = '2010-04-01';
const CALLS_PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Calls\.json$/;
const CALL_PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Calls\/([^/]+)\.json$/;
const PHONE = /^\+[1-9]\d{1,14}$/;
const MAX_BODY_BYTES = 1 << 20;
const DEFAULT_TIMEOUT_SECONDS = 60;
const DEFAULT_TIME_LIMIT_SECONDS = 14_400;

// The public snapshot's fields; the rest of the internal state (timers, PRNG, chain) stays inside.
const SIM_CALL_KEYS = [
  'sid',
  'index',
  'to',
  'from',
  'url',
  'twiml',
  'statusCallback',
  'statusCallbackMethod',
  'statusCallbackEvents',
  'timeoutSeconds',
  'timeLimitSeconds',
  'run',
  'job',
  'attempt',
  'script',
  'status',
  'createdAt',
  'startedAt',
  'answeredAt',
  'endedAt',
  'finalCallbackAt',
  'durationSeconds',
] as const satisfies readonly (keyof SimCall)[];
const SIM_CALLBACK_KEYS = [
  'sequenceNumber',
  'event',
  'callStatus',
  'url',
  'method',
  'params',
  'signature',
  'fate',
  'attempts',
  'responseStatus',
  'error',
  'duplicated',
  'reordered',
  'firstSentAt',
] as const satisfies readonly (keyof SimCallback)[];

interface CallbackState extends SimCallback {
  body?: string;
  headers: Record<string, string>;
  retries: number;
  readTimeoutMs: number;
  final: boolean;
  duplicate: boolean;
}

interface CallState extends Omit<SimCall, 'callbacks'> {
  callbacks: CallbackState[];
  events: Set<CallbackEvent>;
  rng: () => number;
  nextSequence: number;
  timer?: NodeJS.Timeout;
  held?: CallbackState;
  chain: Promise<void>;
  updatedAt: number;
}

interface Waiter {
  predicate: (sim: TwilioSimulator) => boolean;
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

class HttpError extends Error {
  constructor(readonly apiError: ApiError) {
    super(apiError.message);
  }
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

function chance(random: () => number, probability: number | undefined): boolean {
  return probability !== undefined && probability > 0 && random() < probability;
}

function apiError(status: number, code: number, message: string): HttpError {
  return new HttpError({ status, code, message });
}

function emptyOutcomes(): Record<FinalCallStatus, number> {
  return { completed: 0, busy: 0, 'no-answer': 0, failed: 0, canceled: 0 };
}

function isFinal(status: SimCallStatus): status is FinalCallStatus {
  return (FINAL_CALL_STATUSES as readonly string[]).includes(status);
}

function sipCodeFor(status: FinalCallStatus): string {
  switch (status) {
    case 'completed':
      return '200';
    case 'busy':
      return '486';
    case 'no-answer':
    case 'canceled':
      return '487';
    case 'failed':
      return '503';
  }
}

class Simulator implements TwilioSimulator {
  url = '';
  readonly accountSid: string;
  readonly authToken: string;

  readonly #server: Server;
  readonly #random: () => number;
  readonly #secondMs: number;
  readonly #callbackTimeoutMs: number;
  readonly #callbackRetryDelayMs: number;
  readonly #log: (line: string) => void;
  #settings: Required<Omit<SimulatorSettings, 'behavior'>> & Pick<SimulatorSettings, 'behavior'>;

  readonly #calls: CallState[] = [];
  readonly #bySid = new Map<string, CallState>();
  readonly #timeline: SimEvent[] = [];
  readonly #waiters = new Set<Waiter>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #abort = new AbortController();
  #stopped = false;
  readonly #stats: SimulatorStats = {
    createRequests: 0,
    created: 0,
    rejected: 0,
    throttled: 0,
    serverErrors: { afterCreating: 0, withoutCreating: 0 },
    live: 0,
    maxLive: 0,
    final: 0,
    outcomes: emptyOutcomes(),
    runs: {},
    createsByTo: {},
    callbacks: {
      generated: 0,
      attempts: 0,
      delivered: 0,
      answered4xx: 0,
      failed: 0,
      retried: 0,
      dropped: 0,
      duplicated: 0,
      reordered: 0,
      inFlight: 0,
    },
  };

  constructor(options: SimulatorOptions) {
    this.accountSid = options.accountSid ?? DEFAULT_ACCOUNT_SID;
    this.authToken = options.authToken ?? DEFAULT_AUTH_TOKEN;
    this.#random = options.random ?? Math.random;
    this.#secondMs = options.secondMs ?? 1000;
    this.#callbackTimeoutMs = options.callbackTimeoutMs ?? 15_000;
    this.#callbackRetryDelayMs = options.callbackRetryDelayMs ?? 100;
    this.#log = options.log ?? (() => {});
    this.#settings = {
      behavior: options.behavior,
      faults: options.faults ?? {},
      createDelayMs: options.createDelayMs ?? 0,
      rejectNumbers: options.rejectNumbers ?? DEFAULT_REJECT_NUMBERS,
      queuedMs: options.queuedMs ?? 10,
      ringMs: options.ringMs ?? 200,
      talkMs: options.talkMs ?? 500,
      jitter: options.jitter ?? 0,
    };
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        const detail =
          error instanceof HttpError
            ? error.apiError
            : { status: 500, code: 20500, message: 'Internal Server Error' };
        this.#sendError(res, detail);
      });
    });
  }

  async listen(port: number, host: string): Promise<void> {
    this.#server.listen(port, host);
    await once(this.#server, 'listening');
    const address = this.#server.address() as AddressInfo;
    this.url = `http://${host}:${address.port}`;
  }

  // ---- observer --------------------------------------------------------------------------------

  stats(): SimulatorStats {
    return structuredClone(this.#stats);
  }

  calls(): SimCall[] {
    return this.#calls.map((call) => this.#snapshot(call));
  }

  call(sid: string): SimCall | undefined {
    const call = this.#bySid.get(sid);
    return call && this.#snapshot(call);
  }

  timeline(): SimEvent[] {
    return this.#timeline.map((event) => ({ ...event }));
  }

  repeatedTos(): string[] {
    return Object.entries(this.#stats.createsByTo)
      .filter(([, count]) => count > 1)
      .map(([to]) => to);
  }

  refillLatencies(run?: string): number[] {
    const matches = (event: SimEvent) => run === undefined || event.run === run;
    const latencies: number[] = [];
    const groups = new Map<string, SimEvent[]>();
    for (const event of this.#timeline) {
      if (!matches(event) || event.kind === 'final') continue;
      const key = event.run ?? '';
      const group = groups.get(key) ?? [];
      group.push(event);
      groups.set(key, group);
    }
    for (const events of groups.values()) {
      // Pair each final callback with the first create after it not already paired with another.
      const creates = events.filter((event) => event.kind === 'create');
      let next = 0;
      for (const sent of events
        .filter((event) => event.kind === 'final-callback')
        .sort((a, b) => a.at - b.at)) {
        while (next < creates.length && creates[next]!.at < sent.at) next++;
        if (next >= creates.length) break;
        latencies.push(creates[next]!.at - sent.at);
        next++;
      }
    }
    return latencies;
  }

  waitFor(
    predicate: (sim: TwilioSimulator) => boolean,
    timeoutMs = 10_000,
    what = 'condition',
  ): Promise<void> {
    if (predicate(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          const { created, live, final, callbacks } = this.#stats;
          reject(
            new Error(
              `Twilio simulator: timed out after ${timeoutMs} ms waiting for ${what} ` +
                `(created ${created}, live ${live}, final ${final}, callbacks in flight ${callbacks.inFlight})`,
            ),
          );
        }, timeoutMs),
      };
      this.#waiters.add(waiter);
    });
  }

  waitForFinal(count: number, timeoutMs = 10_000): Promise<void> {
    return this.waitFor(() => this.#stats.final >= count, timeoutMs, `${count} final calls`);
  }

  settled(timeoutMs = 10_000): Promise<void> {
    return this.waitFor(
      () => this.#stats.live === 0 && this.#stats.callbacks.inFlight === 0,
      timeoutMs,
      'no live call and no callback in flight',
    );
  }

  hangUp(sid: string, status?: FinalCallStatus): boolean {
    const call = this.#bySid.get(sid);
    if (!call || isFinal(call.status)) return false;
    this.#finish(call, status ?? (call.status === 'in-progress' ? 'completed' : 'canceled'));
    return true;
  }

  configure(settings: SimulatorSettings): void {
    const defined = Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined));
    this.#settings = { ...this.#settings, ...defined };
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#abort.abort();
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('Twilio simulator stopped'));
    }
    this.#waiters.clear();
    const closed = once(this.#server, 'close');
    this.#server.close();
    this.#server.closeAllConnections();
    await closed;
    await Promise.allSettled(this.#calls.map((call) => call.chain));
  }

  #snapshot(call: CallState): SimCall {
    const snapshot: Record<string, unknown> = {};
    for (const key of SIM_CALL_KEYS) {
      if (call[key] !== undefined) snapshot[key] = call[key];
    }
    snapshot.callbacks = call.callbacks.map((callback) => {
      const copy: Record<string, unknown> = {};
      for (const key of SIM_CALLBACK_KEYS) {
        if (callback[key] !== undefined) copy[key] = callback[key];
      }
      return copy;
    });
    return structuredClone(snapshot) as unknown as SimCall;
  }

  #changed(): void {
    for (const waiter of [...this.#waiters]) {
      let done: boolean;
      try {
        done = waiter.predicate(this);
      } catch (error) {
        this.#waiters.delete(waiter);
        clearTimeout(waiter.timer);
        waiter.reject(error as Error);
        continue;
      }
      if (done) {
        this.#waiters.delete(waiter);
        clearTimeout(waiter.timer);
        waiter.resolve();
      }
    }
  }

  #later(ms: number, fn: () => void): NodeJS.Timeout {
    const timer = setTimeout(
      () => {
        this.#timers.delete(timer);
        if (!this.#stopped) fn();
      },
      Math.max(0, ms),
    );
    this.#timers.add(timer);
    return timer;
  }

  /** Resolves after `ms`, or at once when the simulator stops, so that nothing waits on a dead timer. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#stopped) return resolve();
      const signal = this.#abort.signal;
      const done = () => {
        clearTimeout(timer);
        this.#timers.delete(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#timers.add(timer);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  // ---- HTTP ------------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = new URL(req.url ?? '/', 'http://simulator');
    const path = target.pathname;
    const callsMatch = CALLS_PATH.exec(path);
    const callMatch = CALL_PATH.exec(path);
    if (!callsMatch && !callMatch) {
      throw apiError(404, 20404, `The requested resource ${path} was not found`);
    }
    this.#authenticate(req, (callsMatch ?? callMatch)![1]!);
    const body = req.method === 'POST' ? await readForm(req) : new URLSearchParams();

    if (callsMatch && req.method === 'POST') return this.#create(body, res);
    if (callsMatch && req.method === 'GET') return this.#list(target, res);
    if (callMatch && req.method === 'GET')
      return this.#sendJson(res, 200, this.#resource(this.#find(callMatch[2]!)));
    if (callMatch && req.method === 'POST') return this.#update(this.#find(callMatch[2]!), body, res);
    throw apiError(405, 20004, 'Method not allowed');
  }

  #authenticate(req: IncomingMessage, pathAccountSid: string): void {
    const header = req.headers.authorization ?? '';
    const [scheme, encoded] = header.split(' ');
    const decoded = scheme === 'Basic' && encoded ? Buffer.from(encoded, 'base64').toString('utf-8') : '';
    const separator = decoded.indexOf(':');
    const user = decoded.slice(0, Math.max(0, separator));
    const password = decoded.slice(separator + 1);
    if (separator < 0 || user !== this.accountSid || password !== this.authToken) {
      throw apiError(401, 20003, 'Authenticate');
    }
    if (pathAccountSid !== this.accountSid) {
      throw apiError(
        404,
        20404,
        `The requested resource /2010-04-01/Accounts/${pathAccountSid} was not found`,
      );
    }
  }

  #find(sid: string): CallState {
    const call = this.#bySid.get(sid);
    if (!call)
      throw apiError(
        404,
        20404,
        `The requested resource /2010-04-01/Accounts/${this.accountSid}/Calls/${sid}.json was not found`,
      );
    return call;
  }

  #sendJson(res: ServerResponse, status: number, body: unknown): void {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  #sendError(res: ServerResponse, error: ApiError): void {
    this.#sendJson(res, error.status, {
      code: error.code,
      message: error.message,
      more_info: `https://www.twilio.com/docs/errors/${error.code}`,
      status: error.status,
    });
  }

  // ---- create ----------------------------------------------------------------------------------

  async #create(body: URLSearchParams, res: ServerResponse): Promise<void> {
    this.#stats.createRequests += 1;
    const { faults, rejectNumbers } = this.#settings;
    // Faults come first: a throttled or failed request is refused before Twilio looks at it.
    if (chance(this.#random, faults.createThrottled)) {
      this.#stats.throttled += 1;
      this.#log('create → 429 (injected)');
      throw apiError(429, 20429, 'Too Many Requests');
    }
    if (chance(this.#random, faults.createServerErrorWithoutCreating)) {
      this.#stats.serverErrors.withoutCreating += 1;
      this.#log('create → 500 without creating (injected)');
      throw apiError(500, 20500, 'Internal Server Error');
    }

    let call: CallState;
    try {
      call = this.#validateAndBuild(body, rejectNumbers);
    } catch (error) {
      this.#stats.rejected += 1;
      throw error;
    }
    this.#register(call);

    if (chance(this.#random, faults.createServerErrorAfterCreating)) {
      this.#stats.serverErrors.afterCreating += 1;
      this.#log(`${call.sid} create → 500 after creating (injected)`);
      throw apiError(500, 20500, 'Internal Server Error');
    }
    if (this.#settings.createDelayMs > 0) await this.#sleep(this.#settings.createDelayMs);
    this.#sendJson(res, 201, this.#resource(call));
  }

  #validateAndBuild(body: URLSearchParams, rejectNumbers: Record<string, ApiError>): CallState {
    const to = body.get('To');
    const from = body.get('From');
    const url = body.get('Url') ?? undefined;
    const twiml = body.get('Twiml') ?? undefined;
    if (!to) throw apiError(400, 21201, "No 'To' number is specified");
    if (!from) throw apiError(400, 21213, "No 'From' number is specified");
    if (!url && !twiml && !body.get('ApplicationSid')) {
      throw apiError(400, 21205, "Either a 'Url', 'ApplicationSid' or 'Twiml' parameter is required");
    }
    if (url !== undefined && !isHttpUrl(url)) throw apiError(400, 21205, `Url is not a valid URL: ${url}`);
    const rejected = rejectNumbers[to];
    if (rejected) throw new HttpError(rejected);
    if (!PHONE.test(to) && !/^(client|sip):/.test(to)) {
      throw apiError(400, 21211, `The 'To' number ${to} is not a valid phone number.`);
    }
    if (!PHONE.test(from)) {
      throw apiError(
        400,
        21212,
        `The 'From' number ${from} is not a valid phone number, shortcode, or alphanumeric sender ID.`,
      );
    }

    const statusCallback = body.get('StatusCallback') ?? undefined;
    let ids: URLSearchParams | undefined;
    if (statusCallback !== undefined) {
      if (!isHttpUrl(statusCallback))
        throw apiError(400, 21205, `StatusCallback is not a valid URL: ${statusCallback}`);
      ids = new URL(statusCallback).searchParams;
    }
    const method = (body.get('StatusCallbackMethod') ?? 'POST').toUpperCase();
    if (method !== 'POST' && method !== 'GET')
      throw apiError(400, 21207, `Invalid StatusCallbackMethod: ${method}`);
    const requested = body
      .getAll('StatusCallbackEvent')
      .flatMap((value) => value.split(/[\s,]+/))
      .filter(Boolean);
    for (const event of requested) {
      if (!(CALLBACK_EVENTS as readonly string[]).includes(event)) {
        throw apiError(400, 21626, `Invalid StatusCallbackEvent: ${event}`);
      }
    }
    const events = new Set<CallbackEvent>(
      requested.length > 0 ? (requested as CallbackEvent[]) : ['completed'],
    );
    const timeoutSeconds = boundedInt(body.get('Timeout'), DEFAULT_TIMEOUT_SECONDS, 1, 600, 'Timeout');
    const timeLimitSeconds = boundedInt(
      body.get('TimeLimit'),
      DEFAULT_TIME_LIMIT_SECONDS,
      1,
      86_400,
      'TimeLimit',
    );

    const index = this.#calls.length;
    const rng = mulberry32(Math.floor(this.#random() * 4294967296));
    const settings = this.#settings;
    const script = settings.behavior?.({ to, from, index }) ?? { outcome: 'completed' };
    const vary = (ms: number) => Math.max(0, ms * (1 + settings.jitter * (2 * rng() - 1)));
    const createdAt = now();
    const run = ids?.get('run') ?? undefined;
    const job = ids?.get('job') ?? undefined;
    const attempt = ids?.get('attempt') ?? undefined;
    return {
      sid: `CA${randomBytes(16).toString('hex')}`,
      index,
      to,
      from,
      ...(url !== undefined ? { url } : {}),
      ...(twiml !== undefined ? { twiml } : {}),
      ...(statusCallback !== undefined ? { statusCallback } : {}),
      statusCallbackMethod: method,
      statusCallbackEvents: CALLBACK_EVENTS.filter((event) => events.has(event)),
      events,
      timeoutSeconds,
      timeLimitSeconds,
      ...(run !== undefined ? { run } : {}),
      ...(job !== undefined ? { job } : {}),
      ...(attempt !== undefined ? { attempt } : {}),
      script: {
        outcome: script.outcome,
        queuedMs: script.queuedMs ?? vary(settings.queuedMs),
        ringMs: script.ringMs ?? vary(settings.ringMs),
        talkMs: script.talkMs ?? vary(settings.talkMs),
      },
      status: 'queued',
      createdAt,
      updatedAt: createdAt,
      callbacks: [],
      rng,
      nextSequence: 0,
      chain: Promise.resolve(),
    };
  }

  #register(call: CallState): void {
    this.#calls.push(call);
    this.#bySid.set(call.sid, call);
    const stats = this.#stats;
    stats.created += 1;
    stats.live += 1;
    stats.maxLive = Math.max(stats.maxLive, stats.live);
    stats.createsByTo[call.to] = (stats.createsByTo[call.to] ?? 0) + 1;
    if (call.run !== undefined) {
      const run = stats.runs[call.run] ?? { created: 0, live: 0, maxLive: 0, final: 0 };
      stats.runs[call.run] = run;
      run.created += 1;
      run.live += 1;
      run.maxLive = Math.max(run.maxLive, run.live);
    }
    this.#timeline.push({ kind: 'create', at: call.createdAt, sid: call.sid, ...runOf(call) });
    this.#log(`${call.sid} queued${call.run ? ` run=${call.run}` : ''} live=${stats.live}`);
    call.timer = this.#later(call.script.queuedMs, () => this.#initiate(call));
    this.#changed();
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  #initiate(call: CallState): void {
    call.startedAt = now();
    call.updatedAt = call.startedAt;
    this.#emit(call, 'initiated', 'initiated');
    if (call.script.outcome === 'failed') {
      call.timer = this.#later(call.script.ringMs, () => this.#finish(call, 'failed'));
      return;
    }
    call.timer = this.#later(0, () => this.#ring(call));
  }

  #ring(call: CallState): void {
    call.status = 'ringing';
    call.updatedAt = now();
    this.#emit(call, 'ringing', 'ringing');
    const { outcome, ringMs } = call.script;
    const ringTimeoutMs = call.timeoutSeconds * this.#secondMs;
    if (ringTimeoutMs < ringMs) {
      call.timer = this.#later(ringTimeoutMs, () => this.#finish(call, 'no-answer'));
    } else if (outcome === 'completed') {
      call.timer = this.#later(ringMs, () => this.#answer(call));
    } else {
      call.timer = this.#later(ringMs, () => this.#finish(call, outcome));
    }
    this.#changed();
  }

  #answer(call: CallState): void {
    call.status = 'in-progress';
    call.answeredAt = now();
    call.updatedAt = call.answeredAt;
    this.#emit(call, 'answered', 'in-progress');
    const talkMs = Math.min(call.script.talkMs, call.timeLimitSeconds * this.#secondMs);
    call.timer = this.#later(talkMs, () => this.#finish(call, 'completed'));
    this.#changed();
  }

  #finish(call: CallState, status: FinalCallStatus): void {
    if (isFinal(call.status)) return;
    if (call.timer) {
      clearTimeout(call.timer);
      this.#timers.delete(call.timer);
      call.timer = undefined;
    }
    const endedAt = now();
    call.status = status;
    call.endedAt = endedAt;
    call.updatedAt = endedAt;
    call.durationSeconds =
      call.answeredAt === undefined ? 0 : Math.ceil((endedAt - call.answeredAt) / this.#secondMs);

    const stats = this.#stats;
    stats.live -= 1;
    stats.final += 1;
    stats.outcomes[status] += 1;
    if (call.run !== undefined) {
      const run = stats.runs[call.run]!;
      run.live -= 1;
      run.final += 1;
    }
    this.#timeline.push({ kind: 'final', at: endedAt, sid: call.sid, status, ...runOf(call) });
    this.#log(`${call.sid} ${status} live=${stats.live}`);
    const duration = String(call.durationSeconds);
    this.#emit(call, 'completed', status, {
      CallDuration: duration,
      Duration: duration,
      SipResponseCode: sipCodeFor(status),
    });
    // Nothing comes after the final status: a callback held back for reordering goes now.
    this.#flushHeld(call);
    this.#changed();
  }

  // ---- callbacks -------------------------------------------------------------------------------

  #emit(call: CallState, event: CallbackEvent, callStatus: string, extra: Record<string, string> = {}): void {
    if (call.statusCallback === undefined || !call.events.has(event)) return;
    const sequenceNumber = call.nextSequence++;
    const params: Record<string, string> = {
      AccountSid: this.accountSid,
      ApiVersion: API_VERSION,
      CallSid: call.sid,
      CallStatus: callStatus,
      Called: call.to,
      Caller: call.from,
      CallbackSource: 'call-progress-events',
      Direction: 'outbound-api',
      From: call.from,
      SequenceNumber: String(sequenceNumber),
      Timestamp: rfc2822(now()),
      To: call.to,
      ...extra,
    };
    // The fragment carries Twilio's connection overrides and is neither sent nor signed.
    const hashAt = call.statusCallback.indexOf('#');
    const base = hashAt < 0 ? call.statusCallback : call.statusCallback.slice(0, hashAt);
    const overrides = new URLSearchParams(hashAt < 0 ? '' : call.statusCallback.slice(hashAt + 1));
    const retries = boundedIntOr(overrides.get('rc'), 1, 0, 5);
    const readTimeoutMs = boundedIntOr(overrides.get('rt'), this.#callbackTimeoutMs, 1, 15_000);

    let url = base;
    let body: string | undefined;
    let signature: string;
    const headers: Record<string, string> = {
      'User-Agent': 'TwilioProxy/1.1',
      'I-Twilio-Idempotency-Token': randomBytes(16).toString('hex'),
    };
    if (call.statusCallbackMethod === 'GET') {
      url = `${base}${base.includes('?') ? '&' : '?'}${new URLSearchParams(params).toString()}`;
      signature = twilioSignature(this.authToken, url, {});
    } else {
      body = new URLSearchParams(params).toString();
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      signature = twilioSignature(this.authToken, url, params);
    }
    headers['X-Twilio-Signature'] = signature;

    const callback: CallbackState = {
      sequenceNumber,
      event,
      callStatus,
      url,
      method: call.statusCallbackMethod,
      params,
      signature,
      fate: 'pending',
      attempts: 0,
      duplicated: false,
      reordered: false,
      ...(body !== undefined ? { body } : {}),
      headers,
      retries,
      readTimeoutMs,
      final: event === 'completed',
      duplicate: false,
    };
    call.callbacks.push(callback);
    this.#stats.callbacks.generated += 1;

    const { faults } = this.#settings;
    if (chance(call.rng, faults.dropCallback)) {
      callback.fate = 'dropped';
      this.#stats.callbacks.dropped += 1;
      this.#log(`${call.sid} callback #${sequenceNumber} ${callStatus} dropped (injected)`);
      if (callback.final) this.#flushHeld(call);
      return;
    }
    callback.duplicate = chance(call.rng, faults.duplicateCallback);
    if (!callback.final && call.held === undefined && chance(call.rng, faults.reorderCallback)) {
      callback.fate = 'held';
      callback.reordered = true;
      call.held = callback;
      this.#stats.callbacks.reordered += 1;
      this.#stats.callbacks.inFlight += 1;
      return;
    }
    this.#enqueue(call, callback);
    this.#flushHeld(call);
  }

  #flushHeld(call: CallState): void {
    const held = call.held;
    if (!held) return;
    call.held = undefined;
    held.fate = 'pending';
    this.#stats.callbacks.inFlight -= 1;
    this.#enqueue(call, held);
  }

  #enqueue(call: CallState, callback: CallbackState): void {
    const stats = this.#stats.callbacks;
    stats.inFlight += 1;
    call.chain = call.chain
      .then(async () => {
        await this.#deliver(call, callback, false);
        if (callback.duplicate) {
          callback.duplicated = true;
          stats.duplicated += 1;
          await this.#deliver(call, callback, true);
        }
      })
      .catch(() => {})
      .finally(() => {
        stats.inFlight -= 1;
        this.#changed();
      });
  }

  async #deliver(call: CallState, callback: CallbackState, copy: boolean): Promise<void> {
    const stats = this.#stats.callbacks;
    for (let attempt = 0; attempt <= callback.retries; attempt++) {
      if (this.#stopped) return;
      if (attempt > 0) {
        stats.retried += 1;
        await this.#sleep(this.#callbackRetryDelayMs);
        if (this.#stopped) return;
      }
      const sentAt = now();
      callback.attempts += 1;
      stats.attempts += 1;
      if (callback.firstSentAt === undefined) {
        callback.firstSentAt = sentAt;
        if (callback.final && !copy) {
          call.finalCallbackAt = sentAt;
          this.#timeline.push({ kind: 'final-callback', at: sentAt, sid: call.sid, ...runOf(call) });
        }
      }
      try {
        const response = await fetch(callback.url, {
          method: callback.method,
          headers: callback.headers,
          ...(callback.body !== undefined ? { body: callback.body } : {}),
          signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(callback.readTimeoutMs)]),
        });
        await response.arrayBuffer();
        callback.responseStatus = response.status;
        if (response.status < 500) {
          callback.fate = 'delivered';
          delete callback.error;
          stats.delivered += 1;
          if (response.status >= 400) stats.answered4xx += 1;
          return;
        }
        callback.error = `HTTP ${response.status}`;
      } catch (error) {
        callback.error =
          (error as Error).name === 'TimeoutError' ? 'timeout' : String((error as Error).cause ?? error);
      }
    }
    if (this.#stopped) return;
    // A duplicate copy that fails does not undo the delivery of the original.
    if (!copy || callback.fate !== 'delivered') callback.fate = 'failed';
    stats.failed += 1;
    this.#log(
      `${call.sid} callback #${callback.sequenceNumber} ${callback.callStatus} failed: ${callback.error}`,
    );
  }

  // ---- read and update -------------------------------------------------------------------------

  #resource(call: CallState): Record<string, unknown> {
    const uri = `/${API_VERSION}/Accounts/${this.accountSid}/Calls/${call.sid}`;
    const final = isFinal(call.status);
    return {
      account_sid: this.accountSid,
      annotation: null,
      answered_by: null,
      api_version: API_VERSION,
      caller_name: null,
      date_created: rfc2822(call.createdAt),
      date_updated: rfc2822(call.updatedAt),
      direction: 'outbound-api',
      duration: final ? String(call.durationSeconds ?? 0) : null,
      end_time: call.endedAt === undefined ? null : rfc2822(call.endedAt),
      forwarded_from: null,
      from: call.from,
      from_formatted: call.from,
      group_sid: null,
      parent_call_sid: null,
      phone_number_sid: null,
      price: null,
      price_unit: 'USD',
      queue_time: String(Math.round(call.script.queuedMs)),
      sid: call.sid,
      start_time: call.startedAt === undefined ? null : rfc2822(call.startedAt),
      status: call.status,
      subresource_uris: {
        notifications: `${uri}/Notifications.json`,
        recordings: `${uri}/Recordings.json`,
        events: `${uri}/Events.json`,
      },
      to: call.to,
      to_formatted: call.to,
      trunk_sid: null,
      uri: `${uri}.json`,
    };
  }

  #update(call: CallState, body: URLSearchParams, res: ServerResponse): void {
    const status = body.get('Status');
    if (status === 'canceled') {
      if (call.status !== 'queued' && call.status !== 'ringing') {
        throw apiError(
          400,
          21220,
          `Call is not queued or ringing (it is ${call.status}): it cannot be canceled`,
        );
      }
      this.#finish(call, 'canceled');
    } else if (status === 'completed') {
      if (isFinal(call.status)) throw apiError(400, 21220, `Call is not in progress (it is ${call.status})`);
      this.#finish(call, call.status === 'in-progress' ? 'completed' : 'canceled');
    } else if (status !== null) {
      throw apiError(400, 21218, `Invalid Status: ${status}`);
    }
    this.#sendJson(res, 200, this.#resource(call));
  }

  #list(target: URL, res: ServerResponse): void {
    const query = target.searchParams;
    const to = query.get('To');
    const from = query.get('From');
    const status = query.get('Status');
    const timeFilters = [
      timeFilter(query, 'StartTime', (call) => call.startedAt),
      timeFilter(query, 'EndTime', (call) => call.endedAt),
    ].flat();
    const pageSize = boundedInt(query.get('PageSize'), 50, 1, 1000, 'PageSize');
    const page = boundedInt(query.get('Page'), 0, 0, 1_000_000, 'Page');

    const matching = this.#calls
      .filter(
        (call) =>
          (to === null || call.to === to) &&
          (from === null || call.from === from) &&
          (status === null || call.status === status) &&
          timeFilters.every((accepts) => accepts(call)),
      )
      .sort((a, b) => b.createdAt - a.createdAt);
    const start = page * pageSize;
    const slice = matching.slice(start, start + pageSize);
    const pageUri = (n: number) => {
      const params = new URLSearchParams(query);
      params.set('PageSize', String(pageSize));
      params.set('Page', String(n));
      params.delete('PageToken');
      if (n > 0) params.set('PageToken', `PA${matching[n * pageSize - 1]?.sid ?? ''}`);
      return `${target.pathname}?${params.toString()}`;
    };
    this.#sendJson(res, 200, {
      calls: slice.map((call) => this.#resource(call)),
      end: start + Math.max(0, slice.length - 1),
      first_page_uri: pageUri(0),
      next_page_uri: start + pageSize < matching.length ? pageUri(page + 1) : null,
      page,
      page_size: pageSize,
      previous_page_uri: page > 0 ? pageUri(page - 1) : null,
      start,
      uri: `${target.pathname}${target.search}`,
    });
  }
}

function runOf(call: { run?: string }): { run?: string } {
  return call.run === undefined ? {} : { run: call.run };
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

function boundedInt(value: string | null, fallback: number, min: number, max: number, name: string): number {
  if (value === null || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw apiError(400, 20001, `Invalid ${name}: ${value}`);
  }
  return parsed;
}

function boundedIntOr(value: string | null, fallback: number, min: number, max: number): number {
  const parsed = Number(value);
  return value === null || !Number.isInteger(parsed) ? fallback : Math.min(max, Math.max(min, parsed));
}

/**
 * Twilio's `StartTime`, `StartTime>` (on or after) and `StartTime<` (on or before) filters. A bare
 * date (YYYY-MM-DD, as Twilio documents) compares by UTC day; a date-time (what twilio-node sends
 * for a Date) compares exactly. A call without the timestamp never matches.
 */
function timeFilter(
  query: URLSearchParams,
  name: string,
  value: (call: CallState) => number | undefined,
): ((call: CallState) => boolean)[] {
  const filters: ((call: CallState) => boolean)[] = [];
  for (const [suffix, compare] of [
    ['', 'on'],
    ['>', 'after'],
    ['<', 'before'],
  ] as const) {
    const raw = query.get(name + suffix);
    if (raw === null || raw === '') continue;
    const dayOnly = /^\d{4}-\d{2}-\d{2}$/.test(raw);
    const at = Date.parse(dayOnly ? `${raw}T00:00:00Z` : raw);
    if (Number.isNaN(at)) throw apiError(400, 20001, `Invalid ${name}${suffix}: ${raw}`);
    const end = dayOnly ? at + 86_400_000 : at;
    filters.push((call) => {
      const t = value(call);
      if (t === undefined) return false;
      if (compare === 'after') return t >= at;
      if (compare === 'before') return dayOnly ? t < end : t <= at;
      return dayOnly ? t >= at && t < end : Math.floor(t / 1000) === Math.floor(at / 1000);
    });
  }
  return filters;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw apiError(413, 20001, 'Request body too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf-8'));
}
