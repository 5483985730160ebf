// A model test of the core's use cases together, against the in-memory store: random interleavings of
// fills (racing, and every dispatch delivered twice), answers, call ends whose callbacks may be lost,
// duplicated or replayed late, reconciler passes after time passes, and pause/resume/cancel. After
// every step the telephony double (outside dialgate) is checked against the store:
// - every call live at the provider is held by a slot of the same attempt, so the cap holds;
// - `active` equals the holders and never passes the cap; the counters add up to the leads;
// - one create per (job, attempt); a final job never changes again.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fillSlots } from '../../lambdas/core/fill-slots.ts';
import { toRunView } from '../../lambdas/core/model.ts';
import type { DispatchRequest } from '../../lambdas/core/ports.ts';
import { RecentRunOptions } from '../../lambdas/core/recent-run-options.ts';
import { reconcile } from '../../lambdas/core/reconcile.ts';
import { controlRun } from '../../lambdas/core/run-controls.ts';
import { isFinal, type TwilioCallStatus } from '../../lambdas/core/states.ts';
import type { CreatePlan } from '../support/fakes.ts';
import { world } from '../support/unit-world.ts';

type Step =
  | { kind: 'dispatch' }
  | { kind: 'fill'; racing: number }
  | { kind: 'answer'; pick: number }
  | { kind: 'end'; pick: number; status: TwilioCallStatus; callback: 'lost' | 'once' | 'twice' }
  | { kind: 'replay'; pick: number }
  | { kind: 'tick' }
  | { kind: 'control'; action: 'pause' | 'resume' | 'cancel' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'dispatch' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('fill' as const), racing: fc.integer({ min: 1, max: 4 }) }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('answer' as const), pick: fc.nat() }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('end' as const),
      pick: fc.nat(),
      status: fc.constantFrom<TwilioCallStatus>('completed', 'busy', 'no-answer', 'failed', 'canceled'),
      callback: fc.constantFrom('lost' as const, 'once' as const, 'once' as const, 'twice' as const),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('replay' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'tick' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('control' as const),
      action: fc.constantFrom('pause' as const, 'resume' as const, 'resume' as const, 'cancel' as const),
    }),
  },
);

describe('the slot protocol through the core, against the in-memory store', () => {
  it('keeps the cap and the counts under any interleaving of fills, callbacks, reconciles and controls', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 12 }),
        fc.array(
          fc.constantFrom<CreatePlan>(
            'created',
            'created',
            'created',
            'rejected',
            'throttled',
            'unknown',
            'lost',
          ),
          {
            minLength: 1,
            maxLength: 12,
          },
        ),
        fc.array(step, { maxLength: 40 }),
        fc.boolean(),
        async (cap, leads, plans, steps, warm) => {
          let creates = 0;
          const w = world({ plan: () => plans[creates++ % plans.length]! });
          // A warm dispatcher (the run's options known) takes a refill's hinted job, and the slot its
          // release carried, without reading; a cold one reads first and drops the carry.
          if (warm) w.deps.recentOptions = new RecentRunOptions();
          // A dispatch as the dispatcher takes it: its hint, and the slot handed or carried with it.
          const deliver = (d: { runId: string; request: DispatchRequest }) =>
            fillSlots(w.deps, d.runId, d.request.next, undefined, d.request.handedShard, d.request.carried);
          const retry = { on: ['busy' as const], delaySeconds: 30, maxAttempts: 2 };
          const runId = await w.seedRun({ leads, concurrency: cap, runOptions: { retry } });
          const delivered: { sid: string; status: TwilioCallStatus }[] = [];
          const finals = new Map<string, string>();

          const check = async () => {
            const run = (await w.store.getRun(runId))!;
            const holders = Object.entries(run.holders);
            // A slot a released job carries for the next acquire is still counted, until taken or dropped.
            const carried = (await w.store.carriedSlots(runId, false)).filter((carry) => carry.runSlot);
            expect(run.active).toBe(holders.length + carried.length);
            expect(run.active).toBeLessThanOrEqual(cap);
            for (const call of w.telephony.live(runId)) {
              expect(
                run.holders[call.jobId]?.attempt,
                `live call ${call.jobId}#${call.attempt} has its slot`,
              ).toBe(call.attempt);
            }
            expect(w.telephony.maxLive.get(runId) ?? 0).toBeLessThanOrEqual(cap);
            expect(Math.max(0, run.queued) + run.active + run.completed + run.failed + run.canceled).toBe(
              leads,
            );
            // The view adds up too, a lead whose slot is carried counted final (as its job says).
            const view = toRunView(run);
            expect(view.queued + view.in_progress + view.completed + view.failed + view.canceled).toBe(leads);
            const attempts = w.telephony.requests.map((r) => new URL(r.statusCallbackUrl).searchParams);
            const keys = attempts.map((p) => `${p.get('job')}#${p.get('attempt')}`);
            expect(new Set(keys).size, 'one create per job and attempt').toBe(keys.length);
            for (const job of (await w.store.listJobs(runId, { limit: 100 })).items) {
              const seen = finals.get(job.jobId);
              if (seen !== undefined) expect(job.status, `final job ${job.jobId} stays final`).toBe(seen);
              else if (isFinal(job.status)) finals.set(job.jobId, job.status);
            }
          };

          for (const s of steps) {
            const live = w.telephony.live(runId);
            const pick = <T>(items: T[], n: number) => items[n % Math.max(1, items.length)];
            switch (s.kind) {
              case 'dispatch': {
                const dispatches = w.queue.take();
                await Promise.all([...dispatches, ...dispatches].map(deliver));
                break;
              }
              case 'fill':
                await Promise.all(Array.from({ length: s.racing }, () => fillSlots(w.deps, runId)));
                break;
              case 'answer': {
                const call = pick(live, s.pick);
                if (call && call.status !== 'in-progress') {
                  w.telephony.set(call.sid, 'in-progress');
                  delivered.push({ sid: call.sid, status: 'in-progress' });
                  await w.callback(call.sid, 'in-progress');
                }
                break;
              }
              case 'end': {
                const call = pick(live, s.pick);
                if (!call) break;
                // Completed only once answered; an answered call that ends otherwise is hung up.
                const status = call.status === 'in-progress' ? 'completed' : s.status;
                w.telephony.set(call.sid, status);
                if (s.callback === 'lost') break;
                delivered.push({ sid: call.sid, status });
                await w.callback(call.sid, status);
                if (s.callback === 'twice') await w.callback(call.sid, status);
                break;
              }
              case 'replay': {
                const old = pick(delivered, s.pick);
                if (old) await w.callback(old.sid, old.status, { moveCall: false });
                break;
              }
              case 'tick':
                w.clock.advance(200_000);
                await reconcile(w.reconcileDeps);
                break;
              case 'control':
                await controlRun(w.deps, runId, s.action).catch((error: Error) => {
                  if (error.name !== 'ConflictError') throw error;
                });
                break;
            }
            await check();
          }
          // Every dispatch delivered (once): each carried slot went with one, and was taken or dropped.
          for (
            let round = 0, batch = w.queue.take();
            round < 20 && batch.length > 0;
            round++, batch = w.queue.take()
          )
            for (const d of batch) await deliver(d);
          await check();
          expect(await w.store.carriedSlots(runId, false), 'no carry left once its dispatch ran').toEqual([]);
        },
      ),
      { numRuns: 40 },
    );
  });
});
