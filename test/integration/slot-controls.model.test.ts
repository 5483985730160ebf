// Model-based test of the slot protocol with run controls and account limits, on DynamoDB Local: two
// runs share one account (a cap on live calls and a calls-per-second pace); random sequences of
// acquire, answer, release (final, or back to the queue with a not-before time), pause, resume,
// cancel and the cancel sweep, each compared with a small model, and every invariant read back
// from the real table after every step: per run and across the account.

import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { jobIdFor, type RunControl } from '../../lambdas/core/model.ts';
import type { FinalState, JobState } from '../../lambdas/core/states.ts';
import { type TestAws, testAws } from '../support/aws.ts';
import { replayFromEnv } from '../support/replay.ts';
import { accountItems } from '../support/runs.ts';

interface ModelJob {
  state: JobState;
  attempt: number;
  notBefore: number;
}
interface ModelRun {
  cap: number;
  control: RunControl;
  jobs: ModelJob[];
}
interface Model {
  accountCap: number;
  now: number;
  nextCreateAt: number;
  runs: ModelRun[];
}
interface Real {
  store: DynamoRunStore;
  aws: TestAws;
  accountName: string;
  runIds: string[];
}

const AT = '2026-11-28T00:00:00.000Z';
const JOBS = 4;
const CPS = 1;
const isLive = (j: ModelJob) => j.state === 'dialing' || j.state === 'calling';
const isFinal = (j: ModelJob) => ['completed', 'failed', 'canceled'].includes(j.state);
const liveIn = (model: Model) => model.runs.flatMap((run) => run.jobs.filter(isLive)).length;
const limits = (model: Model) => ({
  maxConcurrentCalls: model.accountCap,
  callsPerSecond: CPS,
  nowMs: model.now,
});

async function checkInvariants(real: Real, model: Model) {
  const perShard = new Map<number, number>();
  for (const [r, modelRun] of model.runs.entries()) {
    const runId = real.runIds[r]!;
    const run = (await real.store.getRun(runId))!;
    const live = modelRun.jobs.filter(isLive);
    expect(run.control).toBe(modelRun.control);
    expect(run.active).toBe(Object.keys(run.holders).length);
    expect(run.active).toBe(live.length);
    expect(run.active).toBeLessThanOrEqual(modelRun.cap);
    for (const [jobId, holder] of Object.entries(run.holders)) {
      const job = modelRun.jobs[Number(jobId)]!;
      expect(holder).toMatchObject({ attempt: job.attempt, state: job.state });
      expect(holder.accountShard).toBeTypeOf('number');
      perShard.set(holder.accountShard!, (perShard.get(holder.accountShard!) ?? 0) + 1);
    }
    const count = (s: JobState) => modelRun.jobs.filter((j) => j.state === s).length;
    expect(run.queued).toBe(count('queued'));
    expect(run.completed).toBe(count('completed'));
    expect(run.failed).toBe(count('failed'));
    expect(run.canceled).toBe(count('canceled'));
    // The queued index lists exactly the queued jobs, and "due now" exactly those whose time has come.
    const queued = modelRun.jobs.flatMap((j, i) => (j.state === 'queued' ? [i] : []));
    const due = queued.filter((i) => modelRun.jobs[i]!.notBefore <= model.now);
    expect((await real.store.nextQueuedJobs(runId, 100)).map((q) => Number(q.jobId)).sort()).toEqual(queued);
    expect(
      (await real.store.nextQueuedJobs(runId, 100, model.now)).map((q) => Number(q.jobId)).sort(),
    ).toEqual(due);
  }
  // Across the account: each shard counter counts exactly the live calls holding it, and together
  // they never pass the account cap.
  const account = await accountItems(real.aws.dynamo, real.aws.tableName, real.accountName);
  expect(account.active).toBe(liveIn(model));
  expect(account.active).toBeLessThanOrEqual(model.accountCap);
  for (const [shard, active] of account.shards) expect(active).toBe(perShard.get(shard) ?? 0);
}

type Cmd = fc.AsyncCommand<Model, Real>;

class Acquire implements Cmd {
  constructor(
    readonly r: number,
    readonly job: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const modelRun = model.runs[this.r]!;
    const job = modelRun.jobs[this.job]!;
    const result = await real.store.acquireSlot(
      real.runIds[this.r]!,
      { jobId: jobIdFor(this.job), phone: '+14155550100', attempt: job.attempt, notBefore: job.notBefore },
      AT,
      limits(model),
    );
    const forQueuedJob =
      modelRun.control !== 'running' || modelRun.jobs.filter(isLive).length >= modelRun.cap
        ? 'no-slot'
        : liveIn(model) >= model.accountCap
          ? 'account-full'
          : model.now < model.nextCreateAt
            ? 'paced'
            : 'acquired';
    // A full account is read before any write (a write to a full shard would be a refused
    // transaction), so when the run and the account are both full, either answer is true: both stop
    // the dispatcher.
    const alsoTrue = forQueuedJob === 'no-slot' && liveIn(model) >= model.accountCap ? ['account-full'] : [];
    if (job.state === 'queued') expect([forQueuedJob, ...alsoTrue]).toContain(result);
    // A job already taken is never acquired again. When its run (or the account) has no room either,
    // both answers are true, and a store that knows its counters are full may say so without trying
    // the job: either tells the dispatcher to stop on this job.
    else
      expect(
        forQueuedJob === 'acquired' ? ['job-taken'] : ['job-taken', forQueuedJob, ...alsoTrue],
      ).toContain(result);
    if (result === 'acquired') {
      modelRun.jobs[this.job] = { state: 'dialing', attempt: job.attempt + 1, notBefore: 0 };
      model.nextCreateAt = model.now + 1000 / CPS;
    }
    await checkInvariants(real, model);
  }
  toString = () => `acquire(${this.r}.${this.job})`;
}

class Answer implements Cmd {
  constructor(
    readonly r: number,
    readonly job: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const job = model.runs[this.r]!.jobs[this.job]!;
    const result = await real.store.markCalling(
      real.runIds[this.r]!,
      jobIdFor(this.job),
      Math.max(1, job.attempt),
      AT,
    );
    const applies = job.state === 'dialing';
    expect(result).toBe(applies ? 'applied' : 'stale');
    if (applies) job.state = 'calling';
    await checkInvariants(real, model);
  }
  toString = () => `answer(${this.r}.${this.job})`;
}

class Release implements Cmd {
  constructor(
    readonly r: number,
    readonly job: number,
    readonly from: 'dialing' | 'calling',
    readonly to: FinalState | 'queued',
    readonly attemptOffset: number,
    readonly delayMs: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const modelRun = model.runs[this.r]!;
    const job = modelRun.jobs[this.job]!;
    const attempt = Math.max(1, job.attempt - this.attemptOffset);
    const notBefore = this.to === 'queued' && this.delayMs > 0 ? model.now + this.delayMs : undefined;
    const result = await real.store.releaseSlot({
      runId: real.runIds[this.r]!,
      jobId: jobIdFor(this.job),
      attempt,
      from: this.from,
      to: this.to,
      ...(notBefore === undefined ? {} : { notBefore }),
      ...(this.to === 'queued' ? {} : { outcome: this.to }),
      at: AT,
    });
    const applies = job.state === this.from && attempt === job.attempt;
    expect(result).toBe(applies ? 'released' : 'stale');
    if (applies) {
      // No lead may wait in a canceled run: a requeue there is a cancel.
      const to = this.to === 'queued' && modelRun.control === 'canceled' ? 'canceled' : this.to;
      modelRun.jobs[this.job] = {
        state: to,
        attempt: job.attempt,
        notBefore: to === 'queued' ? (notBefore ?? 0) : 0,
      };
    }
    await checkInvariants(real, model);
  }
  toString = () =>
    `release(${this.r}.${this.job}, ${this.from}→${this.to}, -${this.attemptOffset}, +${this.delayMs})`;
}

const TRANSITIONS = {
  pause: { to: 'paused', from: ['running', 'paused'] },
  resume: { to: 'running', from: ['paused', 'running'] },
  cancel: { to: 'canceled', from: ['running', 'paused', 'canceled'] },
} as const;

class Control implements Cmd {
  constructor(
    readonly r: number,
    readonly action: keyof typeof TRANSITIONS,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const modelRun = model.runs[this.r]!;
    const { to, from } = TRANSITIONS[this.action];
    const result = await real.store.setControl(real.runIds[this.r]!, { to, from: [...from], at: AT });
    const completed = modelRun.jobs.every(isFinal);
    const applies = (from as readonly string[]).includes(modelRun.control) && !completed;
    expect(result.kind).toBe(applies ? 'changed' : 'refused');
    if (applies) modelRun.control = to;
    await checkInvariants(real, model);
  }
  toString = () => `${this.action}(${this.r})`;
}

class Sweep implements Cmd {
  constructor(readonly r: number) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const modelRun = model.runs[this.r]!;
    const swept = await real.store.cancelQueuedJobs(real.runIds[this.r]!, 99, AT);
    const queued = modelRun.jobs.filter((j) => j.state === 'queued');
    expect(swept).toBe(modelRun.control === 'canceled' ? queued.length : 0);
    if (modelRun.control === 'canceled')
      for (const job of queued) Object.assign(job, { state: 'canceled', notBefore: 0 });
    await checkInvariants(real, model);
  }
  toString = () => `sweep(${this.r})`;
}

class Tick implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(model: Model, real: Real) {
    model.now += this.ms;
    await checkInvariants(real, model);
  }
  toString = () => `tick(${this.ms})`;
}

describe('slot protocol with run controls and account limits, against DynamoDB Local', () => {
  let aws: TestAws;
  let store: DynamoRunStore;
  beforeAll(async () => {
    aws = await testAws();
  });

  it('matches the model and keeps every invariant, per run and across the account', async () => {
    const run = fc.integer({ min: 0, max: 1 });
    const job = fc.integer({ min: 0, max: JOBS - 1 });
    const commands = [
      fc.tuple(run, job).map(([r, j]) => new Acquire(r, j)),
      fc.tuple(run, job).map(([r, j]) => new Acquire(r, j)),
      fc.tuple(run, job).map(([r, j]) => new Answer(r, j)),
      fc
        .tuple(
          run,
          job,
          fc.constantFrom('dialing' as const, 'calling' as const),
          fc.constantFrom('completed' as const, 'failed' as const, 'canceled' as const, 'queued' as const),
          fc.constantFrom(0, 0, 0, 1),
          fc.constantFrom(0, 500, 5_000),
        )
        .map(([r, j, from, to, o, d]) => new Release(r, j, from, to, o, d)),
      fc
        .tuple(run, fc.constantFrom('pause' as const, 'resume' as const, 'cancel' as const))
        .map(([r, a]) => new Control(r, a)),
      run.map((r) => new Sweep(r)),
      fc.constantFrom(300, 1_000, 6_000).map((ms) => new Tick(ms)),
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        // Each run's slots on its own item, or split over counters of one or two slots (run-slots.ts).
        fc.constantFrom(undefined, 1, 2),
        fc.commands(commands, { maxCommands: 30 }),
        async (capA, capB, accountCap, runSlotShardSize, cmds) => {
          // A fresh account per sequence, so that no sequence inherits another's held slots.
          const accountName = `LIMITS-${randomUUID()}`;
          store = new DynamoRunStore(aws.dynamo, {
            tableName: aws.tableName,
            accountName,
            ...(runSlotShardSize === undefined ? {} : { runSlotShardSize }),
          });
          const runIds = [randomUUID(), randomUUID()];
          const caps = [capA, capB];
          for (const [r, runId] of runIds.entries()) {
            await store.createRun({ runId, createdAt: AT, concurrency: caps[r]!, totalLeads: JOBS });
            const jobs = Array.from({ length: JOBS }, (_, i) => ({
              jobId: jobIdFor(i),
              phone: '+14155550100',
              attributes: {},
            }));
            await store.ingestChunk(runId, 0, jobs, AT);
          }
          const model: Model = {
            accountCap,
            now: Date.parse(AT),
            nextCreateAt: 0,
            runs: caps.map((cap) => ({
              cap,
              control: 'running',
              jobs: Array.from({ length: JOBS }, () => ({
                state: 'queued' as JobState,
                attempt: 0,
                notBefore: 0,
              })),
            })),
          };
          await fc.asyncModelRun(() => ({ model, real: { store, aws, accountName, runIds } }), cmds);
        },
      ),
      {
        numRuns: 30,
        ...replayFromEnv(),
      },
    );
  });

  it('ingests a chunk that arrives after a cancel as canceled leads, so the run still ends', async () => {
    const s = new DynamoRunStore(aws.dynamo, { tableName: aws.tableName });
    const runId = randomUUID();
    await s.createRun({ runId, createdAt: AT, concurrency: 2, totalLeads: 4 });
    const jobs = Array.from({ length: 4 }, (_, i) => ({
      jobId: jobIdFor(i),
      phone: '+14155550100',
      attributes: {},
    }));
    await s.ingestChunk(runId, 0, jobs.slice(0, 2), AT);
    expect((await s.setControl(runId, { to: 'canceled', from: ['running'], at: AT })).kind).toBe('changed');
    expect(await s.cancelQueuedJobs(runId, 99, AT)).toBe(2);
    expect(await s.ingestChunk(runId, 1, jobs.slice(2), AT)).toBe('ingested');
    expect(await s.ingestChunk(runId, 1, jobs.slice(2), AT)).toBe('duplicate');
    expect(await s.getRun(runId)).toMatchObject({
      ingestedLeads: 4,
      queued: 0,
      canceled: 4,
      outcomes: { canceled: 4 },
    });
    expect(await s.nextQueuedJobs(runId, 10)).toEqual([]);
  });

  it('reserves appended leads only on an open run, growing the total and chunk numbering together', async () => {
    const s = new DynamoRunStore(aws.dynamo, { tableName: aws.tableName });
    const runId = randomUUID();
    await s.createRun({ runId, createdAt: AT, concurrency: 1, totalLeads: 2, chunkCount: 1 });
    expect(await s.reserveLeads(runId, { leads: 3, chunks: 1, maxLeads: 10 })).toEqual({
      kind: 'reserved',
      firstIndex: 2,
      firstChunk: 1,
    });
    expect((await s.reserveLeads(runId, { leads: 6, chunks: 1, maxLeads: 10 })).kind).toBe('refused');
    expect(await s.getRun(runId)).toMatchObject({ totalLeads: 5, chunkCount: 2 });
    await s.setControl(runId, { to: 'canceled', from: ['running'], at: AT });
    expect((await s.reserveLeads(runId, { leads: 1, chunks: 1, maxLeads: 10 })).kind).toBe('refused');
    expect((await s.reserveLeads('no-such-run', { leads: 1, chunks: 1, maxLeads: 10 })).kind).toBe(
      'not-found',
    );
  });
});
