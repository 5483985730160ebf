// Model-based test of the slot protocol on DynamoDB Local: random sequences of acquire, answer,
// release, requeue and their duplicates/stale replays, compared step by step with a tiny model,
// and the invariants read back from the real table after every step.

import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { jobIdFor, type Run } from '../../lambdas/core/model.ts';
import type { FinalState, JobState } from '../../lambdas/core/states.ts';
import { testAws } from '../support/aws.ts';

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
    expect(result).toBe(expected);
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

describe('slot protocol against DynamoDB Local', () => {
  let store: DynamoRunStore;
  beforeAll(async () => {
    const aws = await testAws();
    store = new DynamoRunStore(aws.dynamo, { tableName: aws.tableName });
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
      { numRuns: 40 },
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
});
