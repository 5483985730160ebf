// In-memory stand-ins for the ports around the store, for the core's unit tests: a clock moved by
// hand, a work queue that records what it was asked, and a telephony double that keeps its own count
// of the calls live at once per run, the observer outside dialgate that the cap is checked against.

import { parseCallbackIds } from '../../lambdas/core/callback-url.ts';
import type {
  CallContent,
  CallControl,
  CallLookup,
  CallRequest,
  CallResult,
  CallUpdate,
  Clock,
  DispatchRequest,
  EndedCall,
  FoundCall,
  LeadChunk,
  Log,
  RunStore,
  Telephony,
  WorkQueue,
} from '../../lambdas/core/ports.ts';
import { isFinal, jobStateFor, type TwilioCallStatus } from '../../lambdas/core/states.ts';

export class ManualClock implements Clock {
  #ms: number;
  constructor(start: string | number) {
    this.#ms = typeof start === 'string' ? Date.parse(start) : start;
  }
  now(): Date {
    return new Date(this.#ms);
  }
  advance(ms: number): void {
    this.#ms += ms;
  }
}

export const quietLog: Log = { debug() {}, info() {}, warn() {}, error() {} };

export class RecordingQueue implements WorkQueue {
  readonly chunks: { runId: string; chunks: LeadChunk[] }[] = [];
  readonly dispatches: { runId: string; request: DispatchRequest }[] = [];
  async sendLeadChunks(runId: string, chunks: LeadChunk[]): Promise<void> {
    this.chunks.push({ runId, chunks });
  }
  async requestDispatch(runId: string, request: DispatchRequest = {}): Promise<void> {
    this.dispatches.push({ runId, request });
  }
  /** Takes the dispatches asked for so far (and forgets them). */
  take(): { runId: string; request: DispatchRequest }[] {
    return this.dispatches.splice(0);
  }
}

export interface FakeCall {
  sid: string;
  to: string;
  runId: string;
  jobId: string;
  attempt: number;
  status: TwilioCallStatus;
  request: CallRequest;
  /** When the create reached the double, on the clock it was given. */
  createdAt: Date;
  /** When it took its final status, on the same clock. */
  endedAt?: Date;
}

/**
 * What the double does with a create: a result for the core, or `lost`: Twilio creates the call but
 * the answer never reaches the core (which sees `unknown`). Created calls start `queued`.
 */
export type CreatePlan = CallResult['kind'] | 'lost';

export class FakeTelephony implements Telephony, CallControl, CallLookup {
  readonly calls = new Map<string, FakeCall>();
  /** Every create asked for, in order, placed or not. */
  readonly requests: CallRequest[] = [];
  readonly #live = new Map<string, number>();
  /** The most calls this double saw live at once, per run. */
  readonly maxLive = new Map<string, number>();
  #next = 0;

  constructor(
    private readonly plan: (request: CallRequest) => CreatePlan = () => 'created',
    private readonly now: () => Date = () => new Date(),
  ) {}

  async createCall(request: CallRequest): Promise<CallResult> {
    this.requests.push(request);
    const plan = this.plan(request);
    switch (plan) {
      case 'created':
      case 'lost': {
        const call = this.#open(request);
        return plan === 'created'
          ? { kind: 'created', callSid: call.sid, status: 'queued' }
          : { kind: 'unknown', reason: 'timeout' };
      }
      case 'rejected':
        return { kind: 'rejected', code: 21211, message: 'invalid To' };
      case 'misconfigured':
        return { kind: 'misconfigured', code: 21210, message: 'From not verified' };
      case 'throttled':
        return { kind: 'throttled' };
      case 'unknown':
        return { kind: 'unknown', reason: 'HTTP 500' };
    }
  }

  /** Moves a call on, as Twilio would; a final status ends it. */
  set(sid: string, status: TwilioCallStatus): FakeCall {
    const call = this.calls.get(sid);
    if (!call) throw new Error(`no call ${sid}`);
    // A final status is sticky, as at Twilio.
    if (isFinal(jobStateFor(call.status))) return call;
    call.status = status;
    if (isFinal(jobStateFor(status))) {
      call.endedAt = this.now();
      this.#live.set(call.runId, (this.#live.get(call.runId) ?? 0) - 1);
    }
    return call;
  }

  live(runId?: string): FakeCall[] {
    return [...this.calls.values()].filter(
      (call) => (runId === undefined || call.runId === runId) && !isFinal(jobStateFor(call.status)),
    );
  }

  async fetchCall(callSid: string): Promise<{ sid: string; status: TwilioCallStatus } | undefined> {
    const call = this.calls.get(callSid);
    return call && { sid: call.sid, status: call.status };
  }

  /** In-flight and most concurrent lookups, to see how the reconciler spreads its work. */
  lookups = { inFlight: 0, max: 0 };
  /** Runs before each lookup answers (a slow Twilio, moved on a manual clock). */
  beforeLookup: () => Promise<void> = async () => {};

  async findCalls(query: { to: string; startedAfter: Date }): Promise<FoundCall[]> {
    this.lookups.inFlight += 1;
    this.lookups.max = Math.max(this.lookups.max, this.lookups.inFlight);
    try {
      await this.beforeLookup();
      return [...this.calls.values()]
        .filter((call) => call.to === query.to && call.createdAt >= query.startedAfter)
        .map((call) => ({ sid: call.sid, status: call.status, createdAt: call.createdAt }));
    } finally {
      this.lookups.inFlight -= 1;
    }
  }

  /** Every call that has ended since `endedAfter`, with its end time. */
  async listEndedCalls(endedAfter: Date): Promise<EndedCall[]> {
    return [...this.calls.values()]
      .filter((call) => call.endedAt !== undefined && call.endedAt >= endedAfter)
      .map((call) => ({ sid: call.sid, status: call.status, endTime: call.endedAt! }));
  }

  async cancelCall(callSid: string): Promise<CallUpdate> {
    const call = this.calls.get(callSid);
    if (!call) return { kind: 'not-found' };
    if (call.status === 'in-progress') return { kind: 'invalid-state', message: 'answered' };
    if (!isFinal(jobStateFor(call.status))) this.set(callSid, 'canceled');
    return { kind: 'updated', status: call.status };
  }

  /** Every hang-up asked for (Status=completed), in order, whatever its answer. */
  readonly hangUps: string[] = [];

  async hangUpCall(callSid: string): Promise<CallUpdate> {
    this.hangUps.push(callSid);
    const call = this.calls.get(callSid);
    if (!call) return { kind: 'not-found' };
    if (!isFinal(jobStateFor(call.status)))
      this.set(callSid, call.status === 'in-progress' ? 'completed' : 'canceled');
    return { kind: 'updated', status: call.status };
  }

  /** Every redirect (a voicemail left), in order. */
  readonly redirects: { callSid: string; content: CallContent }[] = [];

  async redirectCall(callSid: string, content: CallContent): Promise<CallUpdate> {
    const call = this.calls.get(callSid);
    if (!call) return { kind: 'not-found' };
    if (call.status !== 'in-progress') return { kind: 'invalid-state', message: 'not in progress' };
    this.redirects.push({ callSid, content });
    return { kind: 'updated', status: call.status };
  }

  #open(request: CallRequest): FakeCall {
    const ids = parseCallbackIds(new URL(request.statusCallbackUrl).searchParams);
    if (!ids) throw new Error(`a callback URL without ids: ${request.statusCallbackUrl}`);
    const sid = `CA${String(++this.#next).padStart(32, '0')}`;
    const call: FakeCall = { sid, to: request.to, ...ids, status: 'queued', request, createdAt: this.now() };
    this.calls.set(sid, call);
    const live = (this.#live.get(ids.runId) ?? 0) + 1;
    this.#live.set(ids.runId, live);
    this.maxLive.set(ids.runId, Math.max(this.maxLive.get(ids.runId) ?? 0, live));
    return call;
  }
}

/** The store, counting the calls made to it by method. */
export function counting(store: RunStore): { store: RunStore; counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  const proxy = new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        counts[String(name)] = (counts[String(name)] ?? 0) + 1;
        return value.apply(target, args);
      };
    },
  });
  return { store: proxy, counts };
}
