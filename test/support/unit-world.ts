// The core's use cases wired to in-memory ports for unit tests: the in-memory store, a recording work
// queue, the telephony double and a clock moved by hand. `callback` delivers a status callback as
// the webhook would, with the ids Twilio was given in the StatusCallback URL.

import { parseCallbackIds } from '../../lambdas/core/callback-url.ts';
import { applyStatusCallback, type CallbackEffect } from '../../lambdas/core/callbacks.ts';
import { type DispatchDeps, handleWorkMessage } from '../../lambdas/core/dispatch.ts';
import { fillSlots } from '../../lambdas/core/fill-slots.ts';
import { jobIdFor, type NewJob } from '../../lambdas/core/model.ts';
import type { ReconcileDeps } from '../../lambdas/core/reconcile.ts';
import type { RunOptions } from '../../lambdas/core/run-options.ts';
import type { TwilioCallStatus } from '../../lambdas/core/states.ts';
import { type CreatePlan, FakeTelephony, ManualClock, quietLog, RecordingQueue } from './fakes.ts';
import { MemoryRunStore } from './memory-store.ts';

export const START = '2026-11-30T09:00:00.000Z';

/** Israeli mobile numbers valid under libphonenumber's full metadata (+972 52 2xx xxxx). */
export function phoneFor(index: number): string {
  return `+97252${String(2_000_000 + index)}`;
}

export interface World {
  store: MemoryRunStore;
  queue: RecordingQueue;
  telephony: FakeTelephony;
  clock: ManualClock;
  deps: DispatchDeps;
  reconcileDeps: ReconcileDeps;
  /** A run with `leads` ingested leads; its id. */
  seedRun(options: {
    leads: number;
    concurrency: number;
    runId?: string;
    runOptions?: RunOptions;
  }): Promise<string>;
  /**
   * Delivers the dispatches asked for so far, each once, as the dispatcher does (with its hint, and the
   * slot a release handed or carried): what a work queue does after every release. The calls placed.
   */
  dispatch(): Promise<number>;
  /** Delivers Twilio's callback for `sid` with `status` (the call itself is moved too when final). */
  callback(sid: string, status: TwilioCallStatus, options?: { moveCall?: boolean }): Promise<CallbackEffect>;
}

/**
 * Delivers what the queue holds (lead chunks, dispatches with all they carry) and answers every live
 * call, until nothing moves.
 */
export async function drain(w: World, maxRounds = 500): Promise<void> {
  for (let round = 0; round < maxRounds; round++) {
    const chunks = w.queue.chunks.splice(0);
    const live = w.telephony.live();
    if (chunks.length === 0 && w.queue.dispatches.length === 0 && live.length === 0) return;
    for (const { runId, chunks: list } of chunks) {
      for (const c of list)
        await handleWorkMessage(w.deps, { type: 'ingest', runId, chunk: c.chunk, jobs: c.jobs });
    }
    await w.dispatch();
    for (const call of live) {
      await w.callback(call.sid, 'in-progress');
      await w.callback(call.sid, 'completed');
    }
  }
  throw new Error('the run never settled');
}

export function world(
  options: { plan?: (to: string) => CreatePlan; account?: DispatchDeps['account'] } = {},
): World {
  const store = new MemoryRunStore();
  const queue = new RecordingQueue();
  const plan = options.plan;
  const clock = new ManualClock(START);
  const telephony = new FakeTelephony(plan ? (request) => plan(request.to) : undefined, () => clock.now());
  const deps: DispatchDeps = {
    store,
    queue,
    telephony,
    callControl: telephony,
    clock,
    log: quietLog,
    random: () => 0.5,
    sleep: async (ms) => clock.advance(ms),
    calls: {
      from: '+15005550006',
      webhookUrl: 'https://hooks.example/twilio/status',
      ringTimeoutSeconds: 30,
      timeLimitSeconds: 600,
      content: { twiml: '<Response><Say>hi</Say></Response>' },
    },
    ...(options.account ? { account: options.account } : {}),
  };
  const reconcileDeps: ReconcileDeps = {
    store,
    queue,
    calls: telephony,
    clock,
    log: quietLog,
    settings: { ringTimeoutSeconds: 30, timeLimitSeconds: 600, graceSeconds: 120 },
  };
  let runs = 0;
  return {
    store,
    queue,
    telephony,
    clock,
    deps,
    reconcileDeps,
    async seedRun({ leads, concurrency, runId = `run-${++runs}`, runOptions }) {
      const at = clock.now().toISOString();
      await store.createRun({
        runId,
        createdAt: at,
        concurrency,
        totalLeads: leads,
        chunkCount: 1,
        ...(runOptions ? { options: runOptions } : {}),
      });
      const jobs: NewJob[] = Array.from({ length: leads }, (_, i) => ({
        jobId: jobIdFor(i),
        phone: phoneFor(i),
        attributes: { name: `Lead ${i}` },
      }));
      await store.ingestChunk(runId, 0, jobs, at);
      return runId;
    },
    async dispatch() {
      let placed = 0;
      for (const { runId, request } of queue.take())
        placed += (
          await fillSlots(deps, runId, request.next, undefined, request.handedShard, request.carried)
        ).placed;
      return placed;
    },
    async callback(sid, status, { moveCall = true } = {}) {
      const call = telephony.calls.get(sid);
      if (!call) throw new Error(`no call ${sid}`);
      if (moveCall) telephony.set(sid, status);
      const ids = parseCallbackIds(new URL(call.request.statusCallbackUrl).searchParams)!;
      return applyStatusCallback(
        { store, queue, clock, log: quietLog },
        { ...ids, callSid: sid, callStatus: status },
      );
    },
  };
}
