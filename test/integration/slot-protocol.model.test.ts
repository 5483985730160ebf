// Model-based test of the slot protocol on DynamoDB Local: random sequences of acquire, answer,
// release, requeue and their duplicates/stale replays, compared step by step with a tiny model,
// and the invariants read back from the real table after every step.

import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { jobIdFor, type Run } from '../../lambdas/core/model.ts';
import type { FinalState, JobState } from '../../lambdas/core/states.ts';
import { type TestAws, testAws } from '../support/aws.ts';

interface ModelJob {
  state: JobState;
  attempt: number;
}
interface Model {
  cap: number;
  jobs: ModelJob[];
}
interface Real {
  store: DynamoRunStore;
  runId: string;
}

const AT = '2026-11-28T00:00:00.000Z';

async function checkInvariants(real: Real, model: Model) {
  const run = (await real.store.getRun(real.runId)) as Run;
  const holders = Object.entries(run.holders);
  const live = model.jobs.filter((j) => j.state === 'dialing' || j.state === 'calling');
  expect(run.active).toBe(holders.length);
  expect(run.active).toBeLessThanOrEqual(model.cap);
  expect(run.active).toBe(live.length);
  for (const [jobId, holder] of holders) {
    const job = model.jobs[Number(jobId)]!;
    expect(holder).toMatchObject({ attempt: job.attempt, state: job.state });
  }
  const count = (s: JobState) => model.jobs.filter((j) => j.state === s).length;
  expect(run.queued).toBe(count('queued'));
  expect(run.completed).toBe(count('completed'));
  expect(run.failed).toBe(count('failed'));
  expect(run.canceled).toBe(count('canceled'));
  for (const n of [run.queued, run.completed, run.failed, run.canceled, run.active])
    expect(n).toBeGreaterThanOrEqual(0);
}

class Acquire implements fc.AsyncCommand<Model, Real> {
  constructor(readonly job: number) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const job = model.jobs[this.job]!;
    const live = model.jobs.filter((j) => j.state === 'dialing' || j.state === 'calling').length;
    const result = await real.store.acquireSlot(
      real.runId,
      { jobId: jobIdFor(this.job), phone: '+14155550100', attempt: job.attempt },
      AT,
    );
    const expected = job.state !== 'queued' ? 'job-taken' : live >= model.cap ? 'no-slot' : 'acquired';
    // A taken job in a full run: the run item's transaction names the job; a run split over counters
    // knows every counter full without trying one (both are answers the port allows).
    if (expected === 'job-taken' && live >= model.cap) expect(['job-taken', 'no-slot']).toContain(result);
    else expect(result).toBe(expected);
    if (result === 'acquired') model.jobs[this.job] = { state: 'dialing', attempt: job.attempt + 1 };
    await checkInvariants(real, model);
  }
  toString = () => `acquire(${this.job})`;
}

class Answer implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly job: number,
    readonly attemptOffset: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const job = model.jobs[this.job]!;
    const attempt = Math.max(1, job.attempt - this.attemptOffset);
    const result = await real.store.markCalling(real.runId, jobIdFor(this.job), attempt, AT);
    const applies = job.state === 'dialing' && attempt === job.attempt;
    expect(result).toBe(applies ? 'applied' : 'stale');
    if (applies) job.state = 'calling';
    await checkInvariants(real, model);
  }
  toString = () => `answer(${this.job}, -${this.attemptOffset})`;
}

class Release implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly job: number,
    readonly from: 'dialing' | 'calling',
    readonly to: FinalState | 'queued',
    readonly attemptOffset: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const job = model.jobs[this.job]!;
    const attempt = Math.max(1, job.attempt - this.attemptOffset);
    const result = await real.store.releaseSlot({
      runId: real.runId,
      jobId: jobIdFor(this.job),
      attempt,
      from: this.from,
      to: this.to,
      at: AT,
    });
    const applies = job.state === this.from && attempt === job.attempt;
    expect(result).toBe(applies ? 'released' : 'stale');
    if (applies) job.state = this.to;
    await checkInvariants(real, model);
  }
  toString = () => `release(${this.job}, ${this.from}→${this.to}, -${this.attemptOffset})`;
}

// The run's own counter (caps up to 25), and caps split over counters of one slot (every cap of 2
// or 3 split): the same protocol, the same model, whichever item holds the slots
// (lambdas/adapters/dynamo/run-slots.ts). Fewer sequences for the split, which the controls' model
// test also runs (with counters of one and two slots): the suite has a 15-minute budget.
describe.each([
  ['on the run item', undefined, 40],
  ['split over counters of one slot', 1, 20],
])('slot protocol against DynamoDB Local, %s', (_, runSlotShardSize, numRuns) => {
  let store: DynamoRunStore;
  let aws: TestAws;
  beforeAll(async () => {
    aws = await testAws();
    store = new DynamoRunStore(aws.dynamo, {
      tableName: aws.tableName,
      ...(runSlotShardSize === undefined ? {} : { runSlotShardSize }),
    });
  });

  it('matches the model and keeps every invariant under any sequence of operations', async () => {
    const JOBS = 6;
    const job = fc.integer({ min: 0, max: JOBS - 1 });
    const offset = fc.constantFrom(0, 0, 0, 1); // mostly the current attempt, sometimes a stale one
    const commands = [
      job.map((j) => new Acquire(j)),
      fc.tuple(job, offset).map(([j, o]) => new Answer(j, o)),
      fc
        .tuple(
          job,
          fc.constantFrom('dialing' as const, 'calling' as const),
          fc.constantFrom('completed' as const, 'failed' as const, 'canceled' as const, 'queued' as const),
          offset,
        )
        .map(([j, from, to, o]) => new Release(j, from, to, o)),
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.commands(commands, { maxCommands: 30 }),
        async (cap, cmds) => {
          const runId = randomUUID();
          await store.createRun({ runId, createdAt: AT, concurrency: cap, totalLeads: JOBS });
          const jobs = Array.from({ length: JOBS }, (_, i) => ({
            jobId: jobIdFor(i),
            phone: '+14155550100',
            attributes: {},
          }));
          await store.ingestChunk(runId, 0, jobs, AT);
          const model: Model = { cap, jobs: jobs.map(() => ({ state: 'queued', attempt: 0 })) };
          await fc.asyncModelRun(() => ({ model, real: { store, runId } }), cmds);
        },
      ),
      { numRuns },
    );
  });

  it('ingests a redelivered chunk once', async () => {
    const runId = randomUUID();
    await store.createRun({ runId, createdAt: AT, concurrency: 3, totalLeads: 2 });
    const jobs = [0, 1].map((i) => ({ jobId: jobIdFor(i), phone: '+14155550100', attributes: { i } }));
    expect(await store.ingestChunk(runId, 0, jobs, AT)).toBe('ingested');
    expect(await store.ingestChunk(runId, 0, jobs, AT)).toBe('duplicate');
    const run = await store.getRun(runId);
    expect(run).toMatchObject({ ingestedLeads: 2, queued: 2 });
    expect(await store.nextQueuedJobs(runId, 10)).toHaveLength(2);
  });

  it('lets exactly `concurrency` of many simultaneous acquires through', async () => {
    const runId = randomUUID();
    const N = 20;
    await store.createRun({ runId, createdAt: AT, concurrency: 3, totalLeads: N });
    const jobs = Array.from({ length: N }, (_, i) => ({
      jobId: jobIdFor(i),
      phone: '+14155550100',
      attributes: {},
    }));
    await store.ingestChunk(runId, 0, jobs, AT);
    const results = await Promise.all(jobs.map((j) => store.acquireSlot(runId, { ...j, attempt: 0 }, AT)));
    expect(results.filter((r) => r === 'acquired')).toHaveLength(3);
    expect((await store.getRun(runId))!.active).toBe(3);
  });

  it('fills the cap with racing waves from many dispatchers, never past it, each job once', async () => {
    const runId = randomUUID();
    const N = 40;
    const cap = 7;
    await store.createRun({ runId, createdAt: AT, concurrency: cap, totalLeads: N });
    const jobs = Array.from({ length: N }, (_, i) => ({
      jobId: jobIdFor(i),
      phone: `+1415555${String(1000 + i)}`,
      attributes: {},
    }));
    await store.ingestChunk(runId, 0, jobs, AT);
    // Five dispatchers, each with its own process memory of the counters, reach for overlapping jobs.
    const dispatchers = Array.from(
      { length: 5 },
      () =>
        new DynamoRunStore(aws.dynamo, {
          tableName: aws.tableName,
          ...(runSlotShardSize === undefined ? {} : { runSlotShardSize }),
        }),
    );
    const waves = await Promise.all(
      dispatchers.map(async (dispatcher, d) => {
        await dispatcher.getRunRecord(runId);
        const mine = jobs.slice(d * 4, d * 4 + 12).map((j) => ({ ...j, attempt: 0 }));
        return dispatcher.acquireSlots(runId, cap, mine, AT);
      }),
    );
    const acquired = waves.flatMap((wave) => wave.acquired.map((job) => job.jobId));
    expect(new Set(acquired).size).toBe(acquired.length);
    expect(acquired.length).toBeLessThanOrEqual(cap);
    const run = (await store.getRun(runId))!;
    expect(run.active).toBe(acquired.length);
    expect(Object.keys(run.holders).sort()).toEqual([...acquired].sort());
    expect(run.queued).toBe(N - acquired.length);
    // Every slot the waves left free is found by one more acquire, whichever counter it is on.
    for (const job of jobs.slice(30)) {
      if (run.active >= cap) break;
      expect(await store.acquireSlot(runId, { ...job, attempt: 0 }, AT)).toBe('acquired');
      run.active += 1;
    }
    expect((await store.getRun(runId))!.active).toBe(cap);
    expect(await store.acquireSlot(runId, { ...jobs[39]!, attempt: 0 }, AT)).not.toBe('acquired');
  });
});
