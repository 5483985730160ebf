// The refill hint: a final callback hands the dispatcher the run's next queued jobs, and a warm
// dispatcher (the run's options already known) takes the first of them before reading the run. The
// acquire transaction alone decides, so a stale hint, a full run, a paused or a canceled one must
// place nothing they should not; the Twilio double counts the calls.

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCallbackUrl, parseCallbackIds } from '../../lambdas/core/callback-url.ts';
import { applyStatusCallback } from '../../lambdas/core/callbacks.ts';
import { fillSlots } from '../../lambdas/core/fill-slots.ts';
import { jobIdFor, type NewJob } from '../../lambdas/core/model.ts';
import type { DispatchRequest, QueuedJob } from '../../lambdas/core/ports.ts';
import { RecentRunOptions } from '../../lambdas/core/recent-run-options.ts';
import type { RunOptions } from '../../lambdas/core/run-options.ts';
import { areaPrefix } from '../../tools/bench/numbers.ts';
import { counting } from '../support/fakes.ts';
import { type Harness, startHarness } from '../support/policy-harness.ts';
import { leadsFor } from '../support/runs.ts';

const AT = '2026-11-29T05:00:00.000Z';

describe('refills through the hint, end to end', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      start: new Date(AT),
      simulator: { queuedMs: 0, ringMs: 10, talkMs: 400, jitter: 0.3 },
    });
  });
  afterAll(() => h?.stop());

  it('40 leads at cap 3: cap held, each lead called once, and refills skip the dispatcher reads', async () => {
    const hints: DispatchRequest[] = [];
    const send = h.queue.requestDispatch.bind(h.queue);
    h.queue.requestDispatch = async (runId, request) => {
      if (request?.next) hints.push(request);
      await send(runId, request);
    };
    const counted = counting(h.store);
    h.deps.store = counted.store;
    h.deps.recentOptions = new RecentRunOptions();

    const runId = await h.createRun({ leads: leadsFor(40, '+1416'), concurrency: 3 });
    await h.twilio.waitForFinal(40, 60_000);
    await h.idle(30_000);

    expect(h.errors).toEqual([]);
    const stats = h.twilio.stats();
    expect(stats.runs[runId]?.maxLive).toBe(3);
    expect(stats.runs[runId]?.created).toBe(40);
    expect(h.twilio.repeatedTos()).toEqual([]);
    const run = await h.store.getRun(runId);
    expect(run).toMatchObject({ active: 0, queued: 0, completed: 40, holders: {} });
    // Almost every refill came with a hint. Without the hint every dispatch reads the queue first;
    // with it, only those whose hinted jobs were all taken by then do.
    const withJobs = hints.filter((hint) => hint.next!.length > 0);
    expect(withJobs.length).toBeGreaterThanOrEqual(30);
    // An empty hint says its releaser saw no lead due: only the run's last calls ending, whose fills
    // read without the fill lease. The calls live when the last lead is taken (the cap), and a release
    // whose read, begun before, answered after: at most twice the cap.
    expect(hints.length - withJobs.length).toBeLessThanOrEqual(6);
    expect(counted.counts.nextQueuedJobs ?? 0).toBeLessThan(hints.length);
  });
});

describe('a hint is only a hint', () => {
  let h: Harness;
  beforeAll(async () => {
    // Calls that last a minute: nothing ends by itself while a test looks.
    h = await startHarness({ start: new Date(AT), simulator: { queuedMs: 0, ringMs: 10, talkMs: 60_000 } });
  });
  afterAll(() => h?.stop());

  /** A run of `leads` queued jobs at `concurrency`, written straight to the store (no queue messages). */
  async function queuedRun(concurrency: number, leads: number) {
    const runId = randomUUID();
    const prefix = areaPrefix(Math.floor(Math.random() * 300));
    const jobs: NewJob[] = leadsFor(leads, prefix).map((lead, i) => ({
      jobId: jobIdFor(i),
      phone: lead.phone,
      attributes: {},
    }));
    await h.store.createRun({ runId, createdAt: AT, concurrency, totalLeads: leads, chunkCount: 1 });
    await h.store.ingestChunk(runId, 0, jobs, AT);
    const recentOptions = new RecentRunOptions();
    recentOptions.remember((await h.store.getRun(runId))!);
    const deps = { ...h.deps, store: h.store, recentOptions };
    const queued = (i: number): QueuedJob => ({ jobId: jobIdFor(i), phone: jobs[i]!.phone, attempt: 0 });
    return { runId, deps, queued };
  }

  const createdIn = (runId: string) => h.twilio.calls().filter((call) => call.run === runId);

  it('takes the hinted job, and only as many as the cap allows', async () => {
    const { runId, deps, queued } = await queuedRun(1, 3);
    expect(await fillSlots(deps, runId, [queued(1), queued(2)])).toEqual({ placed: 1 });
    expect(createdIn(runId).map((call) => call.job)).toEqual([jobIdFor(1)]);

    // The run is full: a hint (even a valid one) places nothing.
    expect(await fillSlots(deps, runId, [queued(0)])).toEqual({ placed: 0 });
    expect(createdIn(runId)).toHaveLength(1);
    expect(await h.store.getRun(runId)).toMatchObject({ active: 1, queued: 2 });
  });

  it('a stale hint (the job already taken) falls through to the next job', async () => {
    const { runId, deps, queued } = await queuedRun(2, 4);
    expect(await h.store.acquireSlot(runId, queued(0), AT)).toBe('acquired');
    // Job 0 is dialing (no call: this test took its slot by hand); the hint still says queued.
    expect(await fillSlots(deps, runId, [queued(0), queued(3)])).toEqual({ placed: 1 });
    expect(createdIn(runId).map((call) => call.job)).toEqual([jobIdFor(3)]);
    expect(await h.store.getRun(runId)).toMatchObject({ active: 2, queued: 2 });
  });

  it('a hint for a paused run places nothing; for a canceled one, its queued leads are canceled', async () => {
    const paused = await queuedRun(3, 3);
    await h.store.setControl(paused.runId, { to: 'paused', from: ['running'], at: AT });
    expect(await fillSlots(paused.deps, paused.runId, [paused.queued(0)])).toEqual({ placed: 0 });
    expect(createdIn(paused.runId)).toHaveLength(0);

    const canceled = await queuedRun(3, 3);
    await h.store.setControl(canceled.runId, { to: 'canceled', from: ['running', 'paused'], at: AT });
    expect(await fillSlots(canceled.deps, canceled.runId, [canceled.queued(0)])).toEqual({ placed: 0 });
    expect(createdIn(canceled.runId)).toHaveLength(0);
    expect(await h.store.getRun(canceled.runId)).toMatchObject({ active: 0, queued: 0, canceled: 3 });
  });

  it('fills only the slot its release freed; a dispatch without a hint fills the rest', async () => {
    const { runId, deps, queued } = await queuedRun(3, 5);
    expect(await fillSlots(deps, runId, [queued(4)])).toEqual({ placed: 1 });
    expect(await fillSlots(deps, runId)).toEqual({ placed: 2 });
    const jobs = createdIn(runId).map((call) => call.job);
    expect(jobs).toEqual([jobIdFor(4), jobIdFor(0), jobIdFor(1)]);
    expect(await h.store.getRun(runId)).toMatchObject({ active: 3, queued: 2 });
  });

  it('without the run options known (a cold dispatcher), a hint is not trusted: the run is read first', async () => {
    const { runId, deps } = await queuedRun(2, 3);
    const cold = { ...deps, recentOptions: new RecentRunOptions() };
    // A hint naming a job the run does not have: a cold dispatcher reads the queue instead.
    const bogus: QueuedJob = { jobId: jobIdFor(99), phone: '+14155550199', attempt: 0 };
    expect(await fillSlots(cold, runId, [bogus])).toEqual({ placed: 2 });
    expect(createdIn(runId).map((call) => call.job)).toEqual([jobIdFor(0), jobIdFor(1)]);
    expect(cold.recentOptions.get(runId)).toBeDefined();
  });
});

describe('callbacks that change the run without reading it first', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ start: new Date(AT), simulator: { queuedMs: 0, ringMs: 10, talkMs: 60_000 } });
  });
  afterAll(() => h?.stop());

  /** A run with `held` of its leads holding slots (taken by hand: no calls), the rest queued. */
  async function runWithHolders(held: number, leads: number, options?: RunOptions) {
    const runId = randomUUID();
    const jobs: NewJob[] = leadsFor(leads, '+1650').map((lead, i) => ({
      jobId: jobIdFor(i),
      phone: lead.phone,
      attributes: {},
    }));
    await h.store.createRun({
      runId,
      createdAt: AT,
      concurrency: held,
      totalLeads: leads,
      chunkCount: 1,
      ...(options ? { options } : {}),
    });
    await h.store.ingestChunk(runId, 0, jobs, AT);
    for (let i = 0; i < held; i++) {
      expect(
        await h.store.acquireSlot(runId, { jobId: jobIdFor(i), phone: jobs[i]!.phone, attempt: 0 }, AT),
      ).toBe('acquired');
    }
    const counted = counting(h.store);
    const sent: DispatchRequest[] = [];
    const queue = {
      sendLeadChunks: async () => {},
      requestDispatch: async (_runId: string, request?: DispatchRequest) => {
        sent.push(request ?? {});
      },
    };
    const deps = { store: counted.store, queue, clock: h.clock, log: h.deps.log };
    return { runId, deps, counts: counted.counts, sent };
  }

  it('completed and busy: released without a read, counted once; the duplicate changes nothing', async () => {
    const { runId, deps, counts, sent } = await runWithHolders(2, 4);
    await h.store.markCalling(runId, jobIdFor(0), 1, AT);
    const completed = { runId, jobId: jobIdFor(0), attempt: 1, callSid: 'CA0', requeueOn: [] };
    expect(await applyStatusCallback(deps, { ...completed, callStatus: 'completed' })).toBe('released');
    const busy = { runId, jobId: jobIdFor(1), attempt: 1, callSid: 'CA1', requeueOn: [] };
    expect(await applyStatusCallback(deps, { ...busy, callStatus: 'busy' })).toBe('released');
    expect((counts.getRun ?? 0) + (counts.getRunRecord ?? 0)).toBe(0);
    // Each release asked for a dispatch with the next queued jobs as its hint, each starting from
    // its own place (the released job's number), so that refills at once do not reach for one job.
    expect(sent.map((request) => request.next?.map((job) => job.jobId))).toEqual([
      [jobIdFor(2), jobIdFor(3)],
      [jobIdFor(3), jobIdFor(2)],
    ]);

    // The duplicate finds no holder: nothing changes, nothing is dispatched.
    expect(await applyStatusCallback(deps, { ...completed, callStatus: 'completed' })).toBe('unchanged');
    expect(sent).toHaveLength(2);
    expect(await h.store.getRun(runId)).toMatchObject({
      active: 0,
      holders: {},
      completed: 1,
      failed: 1,
      outcomes: { completed: 1, busy: 1 },
    });
  });

  it('answered: applied without a read; a duplicate, a stale attempt and one after the final change nothing', async () => {
    const { runId, deps, counts } = await runWithHolders(2, 2);
    const answered = {
      runId,
      jobId: jobIdFor(0),
      attempt: 1,
      callSid: 'CA0',
      callStatus: 'in-progress' as const,
    };
    expect(await applyStatusCallback(deps, answered)).toBe('answered');
    expect(await applyStatusCallback(deps, answered)).toBe('unchanged');
    expect(await applyStatusCallback(deps, { ...answered, attempt: 2 })).toBe('unchanged');
    const other = { runId, jobId: jobIdFor(1), attempt: 1, callSid: 'CA1', requeueOn: [] };
    expect(await applyStatusCallback(deps, { ...other, callStatus: 'no-answer' })).toBe('released');
    expect(await applyStatusCallback(deps, { ...other, callStatus: 'in-progress' })).toBe('unchanged');
    expect((counts.getRun ?? 0) + (counts.getRunRecord ?? 0)).toBe(0);
    const run = await h.store.getRun(runId);
    expect(run).toMatchObject({ active: 1, failed: 1, holders: { [jobIdFor(0)]: { state: 'calling' } } });
    expect(Object.keys(run!.holders)).toEqual([jobIdFor(0)]);
    expect(await h.store.getJob(runId, jobIdFor(0))).toMatchObject({ status: 'calling' });
    expect(await h.store.getJob(runId, jobIdFor(1))).toMatchObject({
      status: 'failed',
      outcome: 'no-answer',
    });
  });

  it('completed before its "answered" was applied: the guess misses, the long way releases it', async () => {
    const { runId, deps, counts } = await runWithHolders(1, 2);
    const callback = { runId, jobId: jobIdFor(0), attempt: 1, callSid: 'CA0', requeueOn: [] };
    expect(await applyStatusCallback(deps, { ...callback, callStatus: 'completed' })).toBe('released');
    expect(counts.getRunRecord).toBe(1);
    // Released, its slot carried for the run's next lead (the dispatch it asked for takes it).
    expect(await h.store.getRun(runId)).toMatchObject({ active: 1, completed: 0, holders: {} });
    const [carried] = await h.store.carriedSlots(runId, true);
    expect(carried).toMatchObject({ jobId: jobIdFor(0), runSlot: { counter: null, to: 'completed' } });
    expect(await h.store.dropCarry(carried!)).toBe('dropped');
    expect(await h.store.getRun(runId)).toMatchObject({ active: 0, completed: 1 });
  });

  it('a status the URL lists in requeue_on reads the run and queues the lead again', async () => {
    const { runId, deps, counts } = await runWithHolders(1, 2, {
      retry: { on: ['busy'], delaySeconds: 60, maxAttempts: 2 },
    });
    const callback = { runId, jobId: jobIdFor(0), attempt: 1, callSid: 'CA0', requeueOn: ['busy' as const] };
    expect(await applyStatusCallback(deps, { ...callback, callStatus: 'busy' })).toBe('released');
    expect(counts.getRunRecord).toBe(1);
    expect(await h.store.getRun(runId)).toMatchObject({ active: 0, queued: 2, failed: 0 });
    expect(await h.store.getJob(runId, jobIdFor(0))).toMatchObject({ status: 'queued', attempt: 1 });
  });
});

describe('the callback URL', () => {
  it('carries requeue_on only when given, and a bad one is dropped (the webhook then reads the run)', () => {
    const ids = { runId: 'r1', jobId: '000001', attempt: 2 };
    const plain = new URL(buildCallbackUrl('https://hooks.example/twilio/status', ids));
    expect(plain.searchParams.has('requeue_on')).toBe(false);
    expect(parseCallbackIds(plain.searchParams)).toEqual(ids);

    const withRetry = new URL(
      buildCallbackUrl('https://hooks.example/twilio/status', { ...ids, requeueOn: ['busy', 'no-answer'] }),
    );
    expect(parseCallbackIds(withRetry.searchParams)).toEqual({ ...ids, requeueOn: ['busy', 'no-answer'] });
    const none = new URL(buildCallbackUrl('https://hooks.example/twilio/status', { ...ids, requeueOn: [] }));
    expect(parseCallbackIds(none.searchParams)).toEqual({ ...ids, requeueOn: [] });

    const bad = new URLSearchParams({ run: 'r1', job: '000001', attempt: '2', requeue_on: 'busy,ringing' });
    expect(parseCallbackIds(bad)).toEqual(ids);
  });
});
