// The unit tests' in-memory store (test/support/memory-store.ts) against the DynamoDB adapter on
// DynamoDB Local: random sequences of the store's writes (fresh, stale and duplicate acquires,
// waves of acquires, answers, releases and requeues, account limits, controls and the cancel sweep, deferrals, wake-ups,
// appended chunks, closes) applied to both, step by step. Every answer must be the same, and so must
// the run, its jobs and its queue as read back afterwards: what the core's unit tests learn from the
// in-memory store holds for the table.

import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { jobIdFor, type NewJob } from '../../lambdas/core/model.ts';
import type { AccountLimits, QueuedJob, RunStore } from '../../lambdas/core/ports.ts';
import type { FinalState, LiveState } from '../../lambdas/core/states.ts';
import { testAws } from '../support/aws.ts';
import { MemoryRunStore } from '../support/memory-store.ts';

const START = Date.parse('2026-11-30T09:00:00.000Z');
const FIRST_CHUNK = 4;
const SECOND_CHUNK = 3;

type Op =
  | { kind: 'acquire'; job: number; stale: number; account: boolean }
  | { kind: 'wave'; jobs: { job: number; stale: number }[]; account: boolean }
  | { kind: 'answer'; job: number; stale: number }
  | { kind: 'sid'; job: number }
  | { kind: 'verdict'; job: number; stale: number; answeredBy: string }
  | {
      kind: 'release';
      job: number;
      stale: number;
      from: LiveState;
      to: FinalState | 'queued';
      notBefore: number;
      outcome: boolean;
    }
  | { kind: 'control'; to: 'running' | 'paused' | 'canceled'; from: ('running' | 'paused' | 'canceled')[] }
  | { kind: 'cancelSweep'; limit: number }
  | { kind: 'defer'; job: number; by: number }
  | { kind: 'wake'; at: number; now: number }
  | { kind: 'waiting' }
  | { kind: 'reserve'; leads: number }
  | { kind: 'ingest'; chunk: 0 | 1 }
  | { kind: 'close' };

const job = fc.integer({ min: 0, max: FIRST_CHUNK + SECOND_CHUNK - 1 });
const stale = fc.constantFrom(0, 0, 0, -1, 1);
const control = fc.constantFrom('running' as const, 'paused' as const, 'canceled' as const);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('acquire' as const), job, stale, account: fc.boolean() }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('wave' as const),
      jobs: fc.uniqueArray(fc.record({ job, stale }), {
        minLength: 1,
        maxLength: 4,
        selector: (entry) => entry.job,
      }),
      account: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('answer' as const), job, stale }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sid' as const), job }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('verdict' as const),
      job,
      stale,
      answeredBy: fc.constantFrom('human', 'machine_start', 'fax'),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('release' as const),
      job,
      stale,
      from: fc.constantFrom<LiveState>('dialing', 'calling'),
      to: fc.constantFrom<FinalState | 'queued'>('completed', 'failed', 'canceled', 'queued'),
      notBefore: fc.constantFrom(0, 0, 30_000),
      outcome: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('control' as const),
      to: control,
      from: fc.uniqueArray(control, { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('cancelSweep' as const),
      limit: fc.integer({ min: 1, max: 5 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('defer' as const),
      job,
      by: fc.constantFrom(5_000, 30_000),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('wake' as const),
      // Few distinct times, so that wake-ups meet at, before and after each other.
      at: fc.constantFrom(0, 30_000, 60_000),
      now: fc.constantFrom(0, 30_000, 60_000, 90_000),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'waiting' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('reserve' as const), leads: fc.integer({ min: 1, max: 4 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constantFrom('ingest' as const),
      chunk: fc.constantFrom(0 as const, 1 as const),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'close' as const }) },
);

function jobsOf(chunk: 0 | 1): NewJob[] {
  const first = chunk === 0 ? 0 : FIRST_CHUNK;
  const count = chunk === 0 ? FIRST_CHUNK : SECOND_CHUNK;
  return Array.from({ length: count }, (_, i) => ({
    jobId: jobIdFor(first + i),
    phone: `+97252${String(3_000_000 + first + i)}`,
    attributes: { row: first + i },
  }));
}

/** One step on a store; its answer, and the run as read back after it. */
async function apply(store: RunStore, runId: string, o: Op, step: number): Promise<unknown> {
  const at = new Date(START + step * 1000).toISOString();
  const nowMs = START + step * 1000;
  const account: AccountLimits = { maxConcurrentCalls: 2, callsPerSecond: 1, nowMs };
  const attemptOf = async (index: number, delta: number) =>
    ((await store.getJob(runId, jobIdFor(index)))?.attempt ?? 0) + delta;
  switch (o.kind) {
    case 'acquire': {
      const queued: QueuedJob = {
        jobId: jobIdFor(o.job),
        phone: jobsOf(o.job < FIRST_CHUNK ? 0 : 1)[0]!.phone,
        attempt: await attemptOf(o.job, o.stale),
      };
      return store.acquireSlot(runId, queued, at, o.account ? account : undefined);
    }
    case 'wave': {
      const jobs: QueuedJob[] = [];
      for (const entry of o.jobs) {
        jobs.push({
          jobId: jobIdFor(entry.job),
          phone: jobsOf(entry.job < FIRST_CHUNK ? 0 : 1)[0]!.phone,
          attempt: await attemptOf(entry.job, entry.stale),
        });
      }
      const concurrency = (await store.getRunRecord(runId))?.concurrency ?? 1;
      return store.acquireSlots(
        runId,
        concurrency,
        jobs,
        at,
        o.account ? { maxConcurrentCalls: account.maxConcurrentCalls } : undefined,
      );
    }
    case 'answer': {
      const attempt = await attemptOf(o.job, o.stale);
      return store.markCalling(runId, jobIdFor(o.job), attempt, at);
    }
    case 'sid':
      return store.recordCallSid(runId, jobIdFor(o.job), await attemptOf(o.job, 0), `CA${step}`);
    case 'verdict':
      return store.recordAnsweredBy(runId, jobIdFor(o.job), await attemptOf(o.job, o.stale), o.answeredBy);
    case 'release':
      return store.releaseSlot({
        runId,
        jobId: jobIdFor(o.job),
        attempt: await attemptOf(o.job, o.stale),
        from: o.from,
        to: o.to,
        ...(o.to === 'queued' && o.notBefore ? { notBefore: nowMs + o.notBefore } : {}),
        ...(o.outcome
          ? {
              outcome: o.to === 'queued' ? 'busy' : o.to,
              errorCode: 21211,
              callSid: `CA${step}`,
              answeredBy: 'machine_end_beep',
            }
          : {}),
        at,
      });
    case 'control':
      return store.setControl(runId, {
        to: o.to,
        from: o.from,
        at,
        ...(o.to === 'canceled' ? { hangup: true } : {}),
      });
    case 'cancelSweep':
      return store.cancelQueuedJobs(runId, o.limit, at);
    case 'defer': {
      const [first] = await store.nextQueuedJobs(runId, 1);
      return first ? store.deferJob(runId, first, nowMs + o.by) : 'none queued';
    }
    case 'wake':
      return store.claimWake(runId, START + o.at, START + o.now);
    case 'waiting':
      await store.addWaitingRun(runId);
      return (await store.takeWaitingRuns()).includes(runId);
    case 'reserve':
      return store.reserveLeads(runId, { leads: o.leads, chunks: 1, maxLeads: 12 });
    case 'ingest':
      return store.ingestChunk(runId, o.chunk, jobsOf(o.chunk), at);
    case 'close':
      return store.closeRun(runId);
  }
}

async function snapshot(store: RunStore, runId: string) {
  return {
    run: await store.getRun(runId),
    jobs: (await store.listJobs(runId, { limit: 100 })).items,
    queue: await store.nextQueuedJobs(runId, 20),
    due: await store.nextQueuedJobs(runId, 20, START + 10_000),
    earliest: await store.earliestQueued(runId),
    open: (await store.listOpenRuns()).includes(runId),
  };
}

describe('the in-memory store against the DynamoDB adapter', () => {
  let aws: Awaited<ReturnType<typeof testAws>>;
  beforeAll(async () => {
    aws = await testAws();
  });

  it('answers every write the same way and leaves the same run, jobs and queue', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.array(op, { minLength: 5, maxLength: 25 }),
        async (concurrency, ops) => {
          const runId = randomUUID();
          // A fresh account item per sequence, as the memory store's own account is.
          const dynamo = new DynamoRunStore(aws.dynamo, { tableName: aws.tableName, accountName: runId });
          const memory = new MemoryRunStore();
          const created = new Date(START).toISOString();
          for (const store of [dynamo, memory]) {
            await store.createRun({
              runId,
              createdAt: created,
              concurrency,
              totalLeads: FIRST_CHUNK + SECOND_CHUNK,
              chunkCount: 2,
            });
            await store.ingestChunk(runId, 0, jobsOf(0), created);
          }
          for (const [step, o] of ops.entries()) {
            const expected = await apply(dynamo, runId, o, step + 1);
            const actual = await apply(memory, runId, o, step + 1);
            expect(actual, `step ${step + 1}: ${JSON.stringify(o)}`).toEqual(expected);
            expect(await snapshot(memory, runId), `after step ${step + 1}: ${JSON.stringify(o)}`).toEqual(
              await snapshot(dynamo, runId),
            );
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});
