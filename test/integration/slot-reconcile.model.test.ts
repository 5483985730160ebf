// Model-based test of the whole slot protocol on DynamoDB Local, reconciler included: random
// sequences of dispatches (some crashing before the call is created, some losing the CallSid),
// answers, hang-ups whose callbacks arrive, are duplicated or are lost, and reconciler passes, run
// through the real core and store against an in-memory Twilio. After every step: the semaphore
// agrees with the model, never exceeds the cap, no lead has two calls in one attempt or two live
// calls, and a slot is only ever freed when Twilio says its call is over or never existed.

import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { applyStatusCallback } from '../../lambdas/core/callbacks.ts';
import { jobIdFor, type Run } from '../../lambdas/core/model.ts';
import type { CallLookup, Log, WorkQueue } from '../../lambdas/core/ports.ts';
import { reconcile } from '../../lambdas/core/reconcile.ts';
import type { TwilioCallStatus } from '../../lambdas/core/states.ts';
import { testAws } from '../support/aws.ts';
import { replayFromEnv } from '../support/replay.ts';

const JOBS = 5;
const SETTINGS = { ringTimeoutSeconds: 30, timeLimitSeconds: 60, graceSeconds: 10 };
const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * The work queue, as far as this test needs it: a dispatch's fill is not modelled, but the slot a
 * release carried on to it is: dropped at once (a dispatch that finds nothing to take), or left on its
 * job when the dispatch is lost, for the reconciler to drop.
 */
function queueOf(store: DynamoRunStore, lost: boolean): WorkQueue {
  return {
    sendLeadChunks: async () => {},
    requestDispatch: async (_runId, request) => {
      if (request?.carried && !lost) await store.dropCarry(request.carried);
    },
  };
}

/** Twilio, as far as this test needs it: calls, their status, and lookups by Sid or number. */
interface TwilioCall {
  sid: string;
  jobId: string;
  attempt: number;
  to: string;
  status: TwilioCallStatus;
}

/**
 * Each case calls people of its own. The table keeps every earlier case's runs open, and the
 * reconciler reads them all: a slot of an earlier case whose Sid was lost would otherwise be matched,
 * by number, to this case's call of the same number, which in this World exists only once.
 */
let casesSoFar = 0;

class World {
  /** The 4-digit line number of this case's first lead; the others follow it. */
  private readonly firstLine = 1000 + ((casesSoFar++ * JOBS) % 9000);
  phoneOf(job: number) {
    return `+1415555${String(this.firstLine + job)}`;
  }
  calls: TwilioCall[] = [];
  nowMs = Date.parse('2026-11-28T10:00:00Z');
  lookup: CallLookup = {
    fetchCall: async (sid) => {
      const call = this.calls.find((c) => c.sid === sid);
      return call && { sid: call.sid, status: call.status };
    },
    findCalls: async ({ to }) =>
      this.calls.filter((c) => c.to === to).map((c) => ({ sid: c.sid, status: c.status })),
    listEndedCalls: async () =>
      this.calls.filter((c) => isOver(c.status)).map((c) => ({ sid: c.sid, status: c.status })),
  };
  live(jobId: string) {
    return this.calls.find((c) => c.jobId === jobId && !isOver(c.status));
  }
}

const isOver = (status: TwilioCallStatus) =>
  ['completed', 'busy', 'no-answer', 'failed', 'canceled'].includes(status);

interface Model {
  cap: number;
  /**
   * Per job: whether dialgate holds a slot for it, the attempt, whether the lead is done, and whether
   * its ended call's slot is still carried on it (its dispatch lost): counted, the lead not yet.
   */
  jobs: { held: boolean; attempt: number; done: boolean; carried: boolean }[];
}
interface Real {
  store: DynamoRunStore;
  runId: string;
  world: World;
}

function deps(real: Real, dispatchLost = false) {
  const clock = { now: () => new Date(real.world.nowMs) };
  return {
    store: real.store,
    queue: queueOf(real.store, dispatchLost),
    clock,
    log: silent,
    calls: real.world.lookup,
    settings: SETTINGS,
  };
}

async function check(model: Model, real: Real) {
  const run = (await real.store.getRun(real.runId)) as Run;
  const holders = Object.entries(run.holders);
  const carried = model.jobs.flatMap((j, i) => (j.carried ? [jobIdFor(i)] : []));
  expect(run.active).toBe(holders.length + carried.length);
  expect(run.active).toBeLessThanOrEqual(model.cap);
  const carries = await real.store.carriedSlots(real.runId, true);
  expect(carries.map((carry) => carry.jobId).sort()).toEqual(carried.sort());
  expect(holders.map(([id]) => id).sort()).toEqual(
    model.jobs.flatMap((j, i) => (j.held ? [jobIdFor(i)] : [])).sort(),
  );
  for (const [i, job] of model.jobs.entries()) {
    const jobId = jobIdFor(i);
    const calls = real.world.calls.filter((c) => c.jobId === jobId);
    // At most one call per attempt, and never two live calls for one lead.
    expect(new Set(calls.map((c) => c.attempt)).size).toBe(calls.length);
    expect(calls.filter((c) => !isOver(c.status)).length).toBeLessThanOrEqual(1);
    // A lead with a live call at Twilio always holds its slot: no slot was freed under a live call.
    if (real.world.live(jobId)) expect(job.held).toBe(true);
  }
  expect(run.completed + run.failed + run.canceled).toBe(
    model.jobs.filter((j) => j.done).length - carried.length,
  );
}

type Create = 'created' | 'crash-before-create' | 'sid-lost';

class Dispatch implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly job: number,
    readonly create: Create,
  ) {}
  check = (m: Readonly<Model>) => !m.jobs[this.job]!.held && !m.jobs[this.job]!.done;
  async run(model: Model, real: Real) {
    const job = model.jobs[this.job]!;
    const jobId = jobIdFor(this.job);
    const at = new Date(real.world.nowMs).toISOString();
    const result = await real.store.acquireSlot(
      real.runId,
      { jobId, phone: real.world.phoneOf(this.job), attempt: job.attempt },
      at,
    );
    const live = model.jobs.filter((j) => j.held || j.carried).length;
    expect(result).toBe(live >= model.cap ? 'no-slot' : 'acquired');
    if (result !== 'acquired') return;
    job.held = true;
    job.attempt += 1;
    if (this.create !== 'crash-before-create') {
      const sid = `CA${randomUUID().replaceAll('-', '')}`;
      real.world.calls.push({
        sid,
        jobId,
        attempt: job.attempt,
        to: real.world.phoneOf(this.job),
        status: 'queued',
      });
      if (this.create === 'created') await real.store.recordCallSid(real.runId, jobId, job.attempt, sid);
    }
    await check(model, real);
  }
  toString = () => `dispatch(${this.job}, ${this.create})`;
}

class Answer implements fc.AsyncCommand<Model, Real> {
  constructor(readonly job: number) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const call = real.world.live(jobIdFor(this.job));
    if (!call || call.status === 'in-progress') return;
    call.status = 'in-progress';
    await callback(real, call);
    await check(model, real);
  }
  toString = () => `answer(${this.job})`;
}

class HangUp implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly job: number,
    readonly outcome: 'completed' | 'busy',
    /** `dispatch-lost`: the callback comes once, and the dispatch its release sends is lost. */
    readonly delivery: 'once' | 'twice' | 'lost' | 'dispatch-lost',
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const call = real.world.live(jobIdFor(this.job));
    if (!call) return;
    call.status = call.status === 'in-progress' ? 'completed' : this.outcome;
    const job = model.jobs[this.job]!;
    const releases = this.delivery !== 'lost' && call.attempt === job.attempt && job.held;
    if (releases) {
      job.held = false;
      job.done = true;
    }
    const lost = this.delivery === 'dispatch-lost';
    if (this.delivery !== 'lost') await callback(real, call, lost);
    if (this.delivery === 'twice') await callback(real, call);
    // A release carries its slot unless no lead was due to take it (then it is dropped at once).
    if (releases && lost)
      job.carried = (await real.store.carriedSlots(real.runId, true)).some(
        (carry) => carry.jobId === call.jobId,
      );
    await check(model, real);
  }
  toString = () => `hangUp(${this.job}, ${this.outcome}, ${this.delivery})`;
}

class Reconcile implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(model: Model, real: Real) {
    // Past every deadline: each held slot is looked up at Twilio.
    real.world.nowMs +=
      (SETTINGS.ringTimeoutSeconds + SETTINGS.timeLimitSeconds + SETTINGS.graceSeconds + 1) * 1000;
    await reconcile(deps(real));
    for (const [i, job] of model.jobs.entries()) {
      job.carried = false; // past its grace: dropped, the lead counted
      if (!job.held) continue;
      const call = real.world.calls.find((c) => c.jobId === jobIdFor(i) && c.attempt === job.attempt);
      if (call === undefined)
        job.held = false; // never created: back in the queue for a new attempt
      else if (isOver(call.status)) {
        job.held = false;
        job.done = true;
      }
    }
    await check(model, real);
  }
  toString = () => 'reconcile()';
}

async function callback(real: Real, call: TwilioCall, dispatchLost = false) {
  await applyStatusCallback(deps(real, dispatchLost), {
    runId: real.runId,
    jobId: call.jobId,
    attempt: call.attempt,
    callSid: call.sid,
    callStatus: call.status,
  });
}

describe('slot protocol with the reconciler, against DynamoDB Local', () => {
  // Each run's slots on its own item, or split over counters of one slot (run-slots.ts).
  let stores: { onRunItem: DynamoRunStore; onCounters: DynamoRunStore };
  beforeAll(async () => {
    const aws = await testAws();
    stores = {
      onRunItem: new DynamoRunStore(aws.dynamo, { tableName: aws.tableName }),
      onCounters: new DynamoRunStore(aws.dynamo, { tableName: aws.tableName, runSlotShardSize: 1 }),
    };
  });

  it('keeps every invariant through crashes, lost and duplicated callbacks and reconciler passes', async () => {
    const job = fc.integer({ min: 0, max: JOBS - 1 });
    const commands = [
      fc
        .tuple(job, fc.constantFrom<Create>('created', 'created', 'crash-before-create', 'sid-lost'))
        .map(([j, c]) => new Dispatch(j, c)),
      job.map((j) => new Answer(j)),
      fc
        .tuple(
          job,
          fc.constantFrom('completed' as const, 'busy' as const),
          fc.constantFrom('once' as const, 'twice' as const, 'lost' as const, 'dispatch-lost' as const),
        )
        .map(([j, o, d]) => new HangUp(j, o, d)),
      fc.constant(new Reconcile()),
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom('onRunItem' as const, 'onCounters' as const),
        fc.commands(commands, { maxCommands: 25 }),
        async (cap, slots, cmds) => {
          const store = stores[slots];
          const runId = randomUUID();
          const world = new World();
          await store.createRun({
            runId,
            createdAt: new Date(world.nowMs).toISOString(),
            concurrency: cap,
            totalLeads: JOBS,
          });
          const jobs = Array.from({ length: JOBS }, (_, i) => ({
            jobId: jobIdFor(i),
            phone: world.phoneOf(i),
            attributes: {},
          }));
          await store.ingestChunk(runId, 0, jobs, new Date(world.nowMs).toISOString());
          const model: Model = {
            cap,
            jobs: jobs.map(() => ({ held: false, attempt: 0, done: false, carried: false })),
          };
          await fc.asyncModelRun(() => ({ model, real: { store, runId, world } }), cmds);
        },
      ),
      {
        numRuns: 30,
        ...replayFromEnv(),
      },
    );
  });
});
