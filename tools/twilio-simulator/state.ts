// The simulator's internal state, shared by its parts (the REST API, the call lifecycle, the callback
// sender, the observer): calls with their timers and PRNGs, the stats and timeline, the waiters, and
// timers that all stop with the simulator.

import { DEFAULT_REJECT_NUMBERS } from './behaviors.ts';
import {
  type Answerer,
  type CallbackEvent,
  DEFAULT_ACCOUNT_SID,
  DEFAULT_AUTH_TOKEN,
  FINAL_CALL_STATUSES,
  type FinalCallStatus,
  type SimCall,
  type SimCallback,
  type SimCallStatus,
  type SimEvent,
  type SimulatorOptions,
  type SimulatorSettings,
  type SimulatorStats,
  type TwilioSimulator,
} from './types.ts';

// The public snapshot's fields; the rest of the internal state (timers, PRNG, chain) stays inside.
export const SIM_CALL_KEYS = [
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
  'digits',
  'gather',
  'status',
  'createdAt',
  'startedAt',
  'answeredAt',
  'endedAt',
  'finalCallbackAt',
  'durationSeconds',
  'machineDetection',
  'asyncAmd',
  'asyncAmdStatusCallback',
  'machineDetectionTimeout',
  'answeredBy',
  'redirects',
  'statusUpdates',
] as const satisfies readonly (keyof SimCall)[];
export const SIM_CALLBACK_KEYS = [
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

export interface CallbackState extends SimCallback {
  body?: string;
  headers: Record<string, string>;
  retries: number;
  readTimeoutMs: number;
  final: boolean;
  duplicate: boolean;
}

export interface CallState extends Omit<SimCall, 'callbacks'> {
  callbacks: CallbackState[];
  /** Who answers and when detection tells, when the call asked for detection. */
  amd?: { answerer: Answerer; afterMs: number };
  events: Set<CallbackEvent>;
  rng: () => number;
  nextSequence: number;
  timer?: NodeJS.Timeout;
  held?: CallbackState;
  /** A detection verdict held until the final callback has gone (the `amdAfterFinal` fault). */
  heldUntilFinal?: CallbackState;
  chain: Promise<void>;
  updatedAt: number;
}

export interface Waiter {
  predicate: (sim: TwilioSimulator) => boolean;
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function chance(random: () => number, probability: number | undefined): boolean {
  return probability !== undefined && probability > 0 && random() < probability;
}

export function isFinal(status: SimCallStatus): status is FinalCallStatus {
  return (FINAL_CALL_STATUSES as readonly string[]).includes(status);
}

export function runOf(call: { run?: string }): { run?: string } {
  return call.run === undefined ? {} : { run: call.run };
}

function emptyOutcomes(): Record<FinalCallStatus, number> {
  return { completed: 0, busy: 0, 'no-answer': 0, failed: 0, canceled: 0 };
}

export type Settings = Required<Omit<SimulatorSettings, 'behavior'>> & Pick<SimulatorSettings, 'behavior'>;

export class SimState {
  readonly accountSid: string;
  readonly authToken: string;
  readonly random: () => number;
  readonly secondMs: number;
  readonly callbackTimeoutMs: number;
  readonly callbackRetryDelayMs: number;
  readonly log: (line: string) => void;
  settings: Settings;

  readonly calls: CallState[] = [];
  readonly bySid = new Map<string, CallState>();
  readonly timeline: SimEvent[] = [];
  readonly waiters = new Set<Waiter>();
  readonly timers = new Set<NodeJS.Timeout>();
  readonly abort = new AbortController();
  stopped = false;
  readonly stats: SimulatorStats = {
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

  /** `facade` is what waiters' predicates are given: the simulator as tests see it. */
  constructor(
    options: SimulatorOptions,
    readonly facade: TwilioSimulator,
  ) {
    this.accountSid = options.accountSid ?? DEFAULT_ACCOUNT_SID;
    this.authToken = options.authToken ?? DEFAULT_AUTH_TOKEN;
    this.random = options.random ?? Math.random;
    this.secondMs = options.secondMs ?? 1000;
    this.callbackTimeoutMs = options.callbackTimeoutMs ?? 15_000;
    this.callbackRetryDelayMs = options.callbackRetryDelayMs ?? 100;
    this.log = options.log ?? (() => {});
    this.settings = {
      behavior: options.behavior,
      faults: options.faults ?? {},
      createDelayMs: options.createDelayMs ?? 0,
      rejectNumbers: options.rejectNumbers ?? DEFAULT_REJECT_NUMBERS,
      queuedMs: options.queuedMs ?? 10,
      ringMs: options.ringMs ?? 200,
      talkMs: options.talkMs ?? 500,
      jitter: options.jitter ?? 0,
    };
  }

  snapshot(call: CallState): SimCall {
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

  /** Runs after every change of state: resolves the waiters whose predicate now holds. */
  changed(): void {
    for (const waiter of [...this.waiters]) {
      let done: boolean;
      try {
        done = waiter.predicate(this.facade);
      } catch (error) {
        this.waiters.delete(waiter);
        clearTimeout(waiter.timer);
        waiter.reject(error as Error);
        continue;
      }
      if (done) {
        this.waiters.delete(waiter);
        clearTimeout(waiter.timer);
        waiter.resolve();
      }
    }
  }

  later(ms: number, fn: () => void): NodeJS.Timeout {
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        if (!this.stopped) fn();
      },
      Math.max(0, ms),
    );
    this.timers.add(timer);
    return timer;
  }

  /** Resolves after `ms`, or at once when the simulator stops, so that nothing waits on a dead timer. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopped) return resolve();
      const signal = this.abort.signal;
      const done = () => {
        clearTimeout(timer);
        this.timers.delete(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.timers.add(timer);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
