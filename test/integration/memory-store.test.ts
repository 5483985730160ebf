// The unit tests' in-memory store (test/support/memory-store.ts) against the DynamoDB adapter on
// DynamoDB Local: random sequences of the store's writes (fresh, stale and duplicate acquires,
// waves of acquires, answers, releases and requeues, account limits, controls and the cancel sweep, deferrals, wake-ups,
// appended chunks, closes; suppressions added and removed, acquires that check the suppression list and
// a frequency cap, leads ended uncalled; account slots carried from a release to an acquire, taken
// twice, and dropped) applied to both, step by step. Every answer must be the same, and so must
// the run, its jobs and its queue as read back afterwards: what the core's unit tests learn from the
// in-memory store holds for the table.

import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { jobIdFor, type NewJob } from '../../lambdas/core/model.ts';
import type {
  AccountLimits,
  CarriedRunSlot,
  CarriedSlot,
  QueuedJob,
  RecipientChecks,
  RunStore,
} from '../../lambdas/core/ports.ts';
import type { FinalState, LiveState } from '../../lambdas/core/states.ts';
import { testAws } from '../support/aws.ts';
import { MemoryRunStore } from '../support/memory-store.ts';
import { replayFromEnv } from '../support/replay.ts';

const START = Date.parse('2026-11-30T09:00:00.000Z');
const FIRST_CHUNK = 4;
const SECOND_CHUNK = 3;

type Op =
  | { kind: 'acquire'; job: number; stale: number; account: boolean; checks: boolean }
  | { kind: 'wave'; jobs: { job: number; stale: number }[]; account: boolean; checks: boolean }
  | { kind: 'suppress'; job: number; expiresIn: number }
  | { kind: 'unsuppress'; job: number }
  | { kind: 'end'; job: number; stale: number }
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
      carry: boolean;
    }
  | {
      kind: 'takeCarry';
      job: number;
      stale: number;
      from: number;
      fromStale: number;
      wrongShard: boolean;
      account: boolean;
    }
  | { kind: 'dropCarry'; from: number; fromStale: number }
  | {
      kind: 'carryOn';
      job: number;
      take: number;
      again: number;
      wrongShard: boolean;
      drop: boolean;
      account: boolean;
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
    arbitrary: fc.record({
      kind: fc.constant('acquire' as const),
      job,
      stale,
      account: fc.boolean(),
      checks: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('suppress' as const),
      job,
      // 0: for good; else expiring that many ms after the step (steps are a second apart).
      expiresIn: fc.constantFrom(0, 0, 2_500),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unsuppress' as const), job }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('end' as const), job, stale }) },
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
      checks: fc.boolean(),
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
      carry: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('takeCarry' as const),
      job,
      stale,
      from: job,
      fromStale: stale,
      wrongShard: fc.boolean(),
      account: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('dropCarry' as const), from: job, fromStale: stale }),
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

/** Jobs of the first chunk, the only one the carry steps have. */
const ingested = fc.integer({ min: 0, max: FIRST_CHUNK - 1 });

/** Steps around carried slots: acquires (most under the account cap), releases that carry, takes, drops. */
const carryOp: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('acquire' as const),
      job: ingested,
      stale: fc.constant(0),
      // Mostly under the account cap; without it, a carry holds the run's slot alone.
      account: fc.constantFrom(true, true, false),
      checks: fc.constant(false),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('release' as const),
      job: ingested,
      stale: fc.constantFrom(0, 0, 0, -1),
      from: fc.constant<LiveState>('dialing'),
      to: fc.constantFrom<FinalState | 'queued'>('completed', 'completed', 'failed', 'queued'),
      notBefore: fc.constant(0),
      outcome: fc.boolean(),
      carry: fc.constantFrom(true, true, false),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('takeCarry' as const),
      job: ingested,
      stale: fc.constantFrom(0, 0, 0, 1),
      from: ingested,
      fromStale: fc.constantFrom(0, 0, 0, -1),
      wrongShard: fc.constantFrom(false, false, false, true),
      account: fc.constantFrom(true, true, false),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('dropCarry' as const),
      from: ingested,
      fromStale: fc.constant(0),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('carryOn' as const),
      job: ingested,
      take: ingested,
      again: ingested,
      wrongShard: fc.constantFrom(false, false, false, true),
      drop: fc.boolean(),
      account: fc.constantFrom(true, true, false),
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
  { weight: 1, arbitrary: fc.constant({ kind: 'close' as const }) },
);

/**
 * Numbers of this sequence: suppressions and frequency counters are the table's, not a run's, so
 * each sequence has numbers of its own (Israeli mobiles, +972 52 3xx xxxx), two leads per number so
 * that a wave meets the same number twice.
 */
let numbers = Math.floor(Math.random() * 50_000);
function phoneOf(index: number): string {
  return `+97252${String(3_000_000 + numbers * 10 + Math.floor(index / 2))}`;
}

function jobsOf(chunk: 0 | 1): NewJob[] {
  const first = chunk === 0 ? 0 : FIRST_CHUNK;
  const count = chunk === 0 ? FIRST_CHUNK : SECOND_CHUNK;
  return Array.from({ length: count }, (_, i) => ({
    jobId: jobIdFor(first + i),
    phone: phoneOf(first + i),
    attributes: { row: first + i },
  }));
}

/** The checks of an acquire: the suppression list, and at most 2 calls a number per 4 s window. */
function checksAt(nowMs: number): RecipientChecks {
  return { suppression: true, frequency: { maxCalls: 2, windowMs: 4_000 }, nowMs };
}

/** One step on a store; its answer, and the run as read back after it. */
async function apply(store: RunStore, runId: string, o: Op, step: number): Promise<unknown> {
  const at = new Date(START + step * 1000).toISOString();
  const nowMs = START + step * 1000;
  const account: AccountLimits = { maxConcurrentCalls: 2, callsPerSecond: 1, nowMs };
  const attemptOf = async (index: number, delta: number) =>
    ((await store.getJob(runId, jobIdFor(index)))?.attempt ?? 0) + delta;
  // The slot job `index` carries, as its release's dispatch names it (or a wrong shard, an attempt of
  // another release; a job that carries nothing: a shard it never held).
  const carriedBy = async (index: number, delta: number, wrongShard: boolean): Promise<CarriedSlot> => {
    const carrier = await store.getJob(runId, jobIdFor(index));
    const counter = carrier?.carriedSlot;
    const shard =
      carrier?.carriedShard ?? carrier?.accountShard ?? (counter === undefined ? 1000 : undefined);
    return {
      runId,
      jobId: jobIdFor(index),
      attempt: (carrier?.attempt ?? 0) + delta,
      ...(shard === undefined ? {} : { shard: shard + (wrongShard ? 1 : 0) }),
      ...(counter === undefined
        ? {}
        : { runSlot: { counter, to: carrier!.status as CarriedRunSlot['to'], outcome: carrier!.outcome! } }),
    };
  };
  switch (o.kind) {
    case 'acquire': {
      const queued: QueuedJob = {
        jobId: jobIdFor(o.job),
        phone: phoneOf(o.job),
        attempt: await attemptOf(o.job, o.stale),
      };
      return store.acquireSlot(
        runId,
        queued,
        at,
        o.account ? account : undefined,
        o.checks ? checksAt(nowMs) : undefined,
      );
    }
    case 'takeCarry': {
      // The account slot job `from` carries (or a shard it does not carry it on, or an attempt of
      // another release), taken by job `job`'s acquire.
      const queued: QueuedJob = {
        jobId: jobIdFor(o.job),
        phone: phoneOf(o.job),
        attempt: await attemptOf(o.job, o.stale),
        carried: await carriedBy(o.from, o.fromStale, o.wrongShard),
      };
      return store.acquireSlot(runId, queued, at, o.account ? account : undefined);
    }
    case 'dropCarry':
      return store.dropCarry(await carriedBy(o.from, o.fromStale, false));
    case 'carryOn': {
      // Job `job` takes a slot (when it is queued), then a release that carries it, the slot taken
      // by another job's acquire, then taken again (a dispatch delivered twice) and dropped (a
      // reconciler that comes late): each answer.
      const limits = o.account ? account : undefined;
      const acquired = await store.acquireSlot(
        runId,
        { jobId: jobIdFor(o.job), phone: phoneOf(o.job), attempt: await attemptOf(o.job, 0) },
        at,
        limits,
      );
      const released = await store.releaseSlot({
        runId,
        jobId: jobIdFor(o.job),
        attempt: await attemptOf(o.job, 0),
        from: 'dialing',
        to: 'completed',
        carry: true,
        at,
      });
      const carried = await carriedBy(o.job, 0, o.wrongShard);
      const take = async (index: number) =>
        store.acquireSlot(
          runId,
          { jobId: jobIdFor(index), phone: phoneOf(index), attempt: await attemptOf(index, 0), carried },
          at,
          limits,
        );
      const taken = [await take(o.take), await take(o.again)];
      return [acquired, released, taken, o.drop ? await store.dropCarry(carried) : 'kept'];
    }
    case 'suppress':
      return store.putSuppression({
        phone: phoneOf(o.job),
        reason: 'opt-out',
        runId,
        createdAt: at,
        ...(o.expiresIn ? { expiresAt: new Date(nowMs + o.expiresIn).toISOString() } : {}),
      });
    case 'unsuppress':
      return store.deleteSuppression(phoneOf(o.job), nowMs);
    case 'end': {
      const queued: QueuedJob = {
        jobId: jobIdFor(o.job),
        phone: phoneOf(o.job),
        attempt: await attemptOf(o.job, o.stale),
      };
      return store.endQueuedJob(runId, queued, 'suppressed', at);
    }
    case 'wave': {
      const jobs: QueuedJob[] = [];
      for (const entry of o.jobs) {
        jobs.push({
          jobId: jobIdFor(entry.job),
          phone: phoneOf(entry.job),
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
        o.checks ? checksAt(nowMs) : undefined,
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
        ...(o.carry ? { carry: true } : {}),
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
      return (await store.takeWaitingRun('another-run')) === runId;
    case 'reserve':
      return store.reserveLeads(runId, { leads: o.leads, chunks: 1, maxLeads: 12 });
    case 'ingest':
      return store.ingestChunk(runId, o.chunk, jobsOf(o.chunk), at);
    case 'close':
      return store.closeRun(runId);
  }
}

async function snapshot(store: RunStore, runId: string, nowMs: number) {
  return {
    suppressions: (await store.listSuppressions({ limit: 100, prefix: phoneOf(0).slice(0, -1), nowMs }))
      .items,
    suppressed: await Promise.all(
      Array.from({ length: FIRST_CHUNK + SECOND_CHUNK }, (_, i) => store.getSuppression(phoneOf(i), nowMs)),
    ),
    run: await store.getRun(runId),
    jobs: (await store.listJobs(runId, { limit: 100 })).items,
    queue: await store.nextQueuedJobs(runId, 20),
    due: await store.nextQueuedJobs(runId, 20, START + 10_000),
    earliest: await store.earliestQueued(runId),
    open: (await store.listOpenRuns()).includes(runId),
    carried: (await store.carriedSlots(runId, true)).sort((a, b) => a.jobId.localeCompare(b.jobId)),
  };
}

describe('the in-memory store against the DynamoDB adapter', () => {
  let aws: Awaited<ReturnType<typeof testAws>>;
  beforeAll(async () => {
    aws = await testAws();
  });

  it('answers every write the same way and leaves the same run, jobs and queue', async () => {
    await sameAnswers(op, 25);
  });

  // Fewer and shorter sequences: each of its steps reaches a carry (the suite's time is CI's budget).
  it('and so with slots carried from releases to acquires, taken twice and dropped', async () => {
    await sameAnswers(carryOp, 12, 15);
  });

  async function sameAnswers(steps: fc.Arbitrary<Op>, numRuns: number, maxLength = 25): Promise<void> {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.array(steps, { minLength: 5, maxLength }),
        async (concurrency, ops) => {
          const runId = randomUUID();
          numbers += 1;
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
            const nowMs = START + (step + 1) * 1000;
            expect(
              await snapshot(memory, runId, nowMs),
              `after step ${step + 1}: ${JSON.stringify(o)}`,
            ).toEqual(await snapshot(dynamo, runId, nowMs));
          }
        },
      ),
      {
        numRuns,
        ...replayFromEnv(),
      },
    );
  }
});
