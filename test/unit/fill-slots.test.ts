// The fill loop (dispatch) against the in-memory store: slots taken before calls are placed, never
// more live calls than the cap (counted by the telephony double, outside dialgate), and what each
// kind of create outcome does to the slot and the lead.

import { describe, expect, it, vi } from 'vitest';
import { handleWorkMessage } from '../../lambdas/core/dispatch.ts';
import { fillSlots } from '../../lambdas/core/fill-slots.ts';
import { jobIdFor, toRunView } from '../../lambdas/core/model.ts';
import type { FillLease, QueuedJob } from '../../lambdas/core/ports.ts';
import { RecentRunOptions } from '../../lambdas/core/recent-run-options.ts';
import { counting } from '../support/fakes.ts';
import { phoneFor, world } from '../support/unit-world.ts';

/** The fill lease's protocol in memory (the DynamoDB one is held to it in fill-lease.test.ts). */
class MemoryFillLease implements FillLease {
  holder: string | undefined;
  asked = false;
  async take(_runId: string, filler: string): Promise<'taken' | 'asked'> {
    if (this.holder === undefined || this.holder === filler) {
      this.holder = filler;
      this.asked = false;
      return 'taken';
    }
    this.asked = true;
    return 'asked';
  }
  async give(_runId: string, filler: string): Promise<'given' | 'asked'> {
    if (this.holder !== filler) return 'given';
    if (this.asked) {
      this.asked = false;
      return 'asked';
    }
    this.holder = undefined;
    return 'given';
  }
  async drop(_runId: string, filler: string): Promise<void> {
    if (this.holder === filler) this.holder = undefined;
  }
}

describe('the fill loop under the fill lease', () => {
  it('leaves a run another dispatch is filling to it, asking it for one more pass', async () => {
    const w = world();
    const runId = await w.seedRun({ leads: 10, concurrency: 3 });
    const lease = new MemoryFillLease();
    lease.holder = 'message-1';
    expect(await fillSlots({ ...w.deps, fillLease: lease }, runId, undefined, 'message-2')).toEqual({
      placed: 0,
    });
    expect(w.telephony.requests).toHaveLength(0);
    expect(lease).toMatchObject({ holder: 'message-1', asked: true });
  });

  it('fills again for an ask made during its pass, then gives the lease back', async () => {
    const w = world();
    const runId = await w.seedRun({ leads: 10, concurrency: 3 });
    // During the first pass a call ends (its own refill went elsewhere) and another dispatch asks.
    const lease = new MemoryFillLease();
    let passes = 0;
    const give = lease.give.bind(lease);
    lease.give = async (id, filler) => {
      passes += 1;
      if (passes === 1) {
        // The pass's creates are on their way (the lease is given back before they are awaited).
        await vi.waitFor(() => expect(w.telephony.live(runId)).toHaveLength(3));
        await w.callback(w.telephony.live(runId)[0]!.sid, 'completed');
        // Its refill, a cold dispatcher, drops the slot the release carried and asks for a pass.
        const [refill] = w.queue.take();
        expect(await w.store.dropCarry(refill!.request.carried!)).toBe('dropped');
        expect(await lease.take(id, 'message-2')).toBe('asked');
      }
      return give(id, filler);
    };
    expect(await fillSlots({ ...w.deps, fillLease: lease }, runId, undefined, 'message-1')).toEqual({
      placed: 4,
    });
    expect(passes).toBe(2);
    expect(w.telephony.live(runId)).toHaveLength(3);
    expect(lease.holder).toBeUndefined();
  });

  it('leaves the lease alone for a run known to have a small cap (its fills meet on few slots)', async () => {
    const w = world();
    const runId = await w.seedRun({ leads: 10, concurrency: 3 });
    const recentOptions = new RecentRunOptions();
    recentOptions.remember((await w.store.getRunRecord(runId))!);
    const lease = new MemoryFillLease();
    lease.holder = 'message-1';
    const deps = { ...w.deps, fillLease: lease, recentOptions };
    expect(await fillSlots(deps, runId, undefined, 'message-2')).toEqual({ placed: 3 });
    expect(lease.asked).toBe(false);
  });

  it('fills without the lease for a releaser that saw no lead due, and still takes one that is', async () => {
    const w = world();
    const runId = await w.seedRun({ leads: 40, concurrency: 30 });
    const lease = new MemoryFillLease();
    lease.holder = 'message-0'; // a take would ask it for another pass
    const deps = { ...w.deps, fillLease: lease };
    // The releaser's read came back empty (say the index had not shown the leads yet): the fill
    // reads the run and its queue all the same, and takes every free slot, but not the lease.
    expect(await fillSlots(deps, runId, [], 'message-1')).toEqual({ placed: 30 });
    expect(lease).toMatchObject({ holder: 'message-0', asked: false });
    // With no hint at all (an ingest, a wake-up) the lease is taken as before.
    expect(await fillSlots(deps, runId, undefined, 'message-2')).toEqual({ placed: 0 });
    expect(lease.asked).toBe(true);
  });

  it('fills without the lease when it cannot be read', async () => {
    const w = world();
    const runId = await w.seedRun({ leads: 10, concurrency: 3 });
    const broken: FillLease = {
      take: () => Promise.reject(new Error('throttled')),
      give: () => Promise.reject(new Error('unused')),
      drop: () => Promise.reject(new Error('unused')),
    };
    expect(await fillSlots({ ...w.deps, fillLease: broken }, runId, undefined, 'message-1')).toEqual({
      placed: 3,
    });
  });
});

describe('the fill loop', () => {
  it('takes exactly the free slots, in lead order, and places one call on each', async () => {
    const w = world();
    const runId = await w.seedRun({ leads: 10, concurrency: 3 });

    expect(await fillSlots(w.deps, runId)).toEqual({ placed: 3 });

    expect(w.telephony.requests.map((r) => r.to)).toEqual([phoneFor(0), phoneFor(1), phoneFor(2)]);
    const run = (await w.store.getRun(runId))!;
    expect(run.active).toBe(3);
    expect(run.queued).toBe(7);
    expect(Object.keys(run.holders).sort()).toEqual([jobIdFor(0), jobIdFor(1), jobIdFor(2)]);
    for (const call of w.telephony.live(runId)) {
      expect((await w.store.getJob(runId, call.jobId))?.callSid).toBe(call.sid);
    }
    // Full: another fill takes nothing and places nothing.
    expect(await fillSlots(w.deps, runId)).toEqual({ placed: 0 });
    expect(w.telephony.requests).toHaveLength(3);
  });

  it('never has more calls live than the cap, with fills racing and every dispatch delivered twice', async () => {
    const w = world();
    const cap = 4;
    const runId = await w.seedRun({ leads: 30, concurrency: cap });
    await Promise.all(Array.from({ length: 12 }, () => fillSlots(w.deps, runId)));
    expect(w.telephony.live(runId)).toHaveLength(cap);

    let ended = 0;
    while (w.telephony.live(runId).length > 0) {
      const [call] = w.telephony.live(runId);
      await w.callback(call!.sid, ended % 3 === 0 ? 'busy' : 'completed');
      ended += 1;
      // Each dispatch twice, all at once: SQS delivers at least once.
      const dispatches = w.queue.take();
      await Promise.all(
        [...dispatches, ...dispatches].map((d) =>
          fillSlots(w.deps, d.runId, d.request.next, undefined, d.request.handedShard, d.request.carried),
        ),
      );
      expect(w.telephony.live(runId).length).toBeLessThanOrEqual(cap);
    }

    expect(w.telephony.maxLive.get(runId)).toBe(cap);
    // Every lead called once, and every one final.
    expect(w.telephony.requests.map((r) => r.to).sort()).toEqual(
      Array.from({ length: 30 }, (_, i) => phoneFor(i)).sort(),
    );
    const view = toRunView((await w.store.getRun(runId))!);
    expect(view).toMatchObject({ status: 'completed', completed: 20, failed: 10, in_progress: 0, queued: 0 });
  });

  it('takes no slot in a paused run', async () => {
    const w = world();
    const runId = await w.seedRun({ leads: 5, concurrency: 2 });
    await w.store.setControl(runId, { to: 'paused', from: ['running'], at: new Date().toISOString() });
    expect(await fillSlots(w.deps, runId)).toEqual({ placed: 0 });
    expect(w.telephony.requests).toEqual([]);
    expect((await w.store.getRun(runId))?.active).toBe(0);
  });

  it('carries out a cancel: ringing calls canceled at the provider, queued leads canceled', async () => {
    const w = world();
    const runId = await w.seedRun({ leads: 6, concurrency: 2 });
    await fillSlots(w.deps, runId);
    await w.store.setControl(runId, { to: 'canceled', from: ['running'], at: w.clock.now().toISOString() });

    await fillSlots(w.deps, runId);

    expect(w.telephony.live(runId)).toEqual([]);
    const run = (await w.store.getRun(runId))!;
    expect(run).toMatchObject({ queued: 0, canceled: 4 });
    // The slots are freed by the final callbacks, not by the cancel itself.
    expect(run.active).toBe(2);
    for (const call of w.telephony.calls.values()) {
      expect(await w.callback(call.sid, call.status)).toBe('released');
    }
    expect(toRunView((await w.store.getRun(runId))!)).toMatchObject({ status: 'canceled', canceled: 6 });
  });

  it('fails a lead whose number is refused and frees its slot at once, then dials the next', async () => {
    const w = world({ plan: (to) => (to === phoneFor(0) ? 'rejected' : 'created') });
    const runId = await w.seedRun({ leads: 3, concurrency: 1 });

    expect(await fillSlots(w.deps, runId)).toEqual({ placed: 0 });

    expect(await w.store.getJob(runId, jobIdFor(0))).toMatchObject({
      status: 'failed',
      outcome: 'rejected',
      errorCode: 21211,
    });
    const run = (await w.store.getRun(runId))!;
    expect(run).toMatchObject({ active: 0, failed: 1, queued: 2 });
    expect(w.queue.take().map((d) => d.runId)).toEqual([runId]);
    expect(await fillSlots(w.deps, runId)).toEqual({ placed: 1 });
    expect(w.telephony.live(runId).map((c) => c.to)).toEqual([phoneFor(1)]);
  });

  it('pauses the run and keeps the lead when the provider refuses the run’s configuration', async () => {
    const w = world({ plan: () => 'misconfigured' });
    const runId = await w.seedRun({ leads: 3, concurrency: 2 });

    await fillSlots(w.deps, runId);

    const run = (await w.store.getRun(runId))!;
    expect(run.control).toBe('paused');
    expect(run.pauseReason).toMatch(/^Twilio refused the run's caller id or call content \(error \d+\)$/);
    expect(run).toMatchObject({ active: 0, queued: 3, failed: 0 });
    // Only the first create was refused: the run was paused before the second slot was taken,
    // or the second lead was put back the same way.
    for (let i = 0; i < 3; i++) expect((await w.store.getJob(runId, jobIdFor(i)))?.status).toBe('queued');
    expect(w.queue.take().filter((d) => d.request.delaySeconds === undefined)).toEqual([]);
  });

  it('puts a throttled lead back with a backoff, holding no slot, and arms one wake-up', async () => {
    const w = world({ plan: () => 'throttled' });
    const runId = await w.seedRun({ leads: 1, concurrency: 1 });

    await fillSlots(w.deps, runId);

    const job = (await w.store.getJob(runId, jobIdFor(0)))!;
    expect(job.status).toBe('queued');
    expect(job.attempt).toBe(1);
    // random() = 0.5 of a 1 s ceiling on the first attempt.
    expect(job.notBefore).toBe(w.clock.now().getTime() + 500);
    expect((await w.store.getRun(runId))?.active).toBe(0);
    expect(w.queue.take()).toEqual([{ runId, request: { delaySeconds: 1 } }]);
    // Not due yet: a fill now dials nothing.
    expect(await fillSlots(w.deps, runId)).toEqual({ placed: 0 });
    expect(w.telephony.requests).toHaveLength(1);
  });

  it('keeps the slot when the outcome of a create is unknown, and never sends it again', async () => {
    const w = world({ plan: () => 'unknown' });
    const runId = await w.seedRun({ leads: 3, concurrency: 1 });

    await fillSlots(w.deps, runId);
    await fillSlots(w.deps, runId);

    expect(w.telephony.requests).toHaveLength(1);
    const run = (await w.store.getRun(runId))!;
    expect(run.active).toBe(1);
    expect(run.holders[jobIdFor(0)]).toMatchObject({ attempt: 1, state: 'dialing' });
    expect((await w.store.getJob(runId, jobIdFor(0)))?.callSid).toBeUndefined();
  });

  /** A warm dispatcher's cap-1 run whose first call just completed, and the dispatch its release sent. */
  async function firstRefill() {
    const w = world();
    const runId = await w.seedRun({ leads: 5, concurrency: 1 });
    const recentOptions = new RecentRunOptions();
    await fillSlots({ ...w.deps, recentOptions }, runId);
    const [first] = w.telephony.live(runId);
    await w.callback(first!.sid, 'completed');
    const [dispatch] = w.queue.take();
    return { w, runId, recentOptions, dispatch: dispatch! };
  }

  it('takes a refill’s hinted job without reading the run or its queue when the run’s options are known', async () => {
    const { w, runId, recentOptions, dispatch } = await firstRefill();
    const hint = dispatch.request.next as QueuedJob[];
    expect(hint.length).toBeGreaterThan(0);

    const { store, counts } = counting(w.store);
    const { carried } = dispatch.request;
    expect(carried?.runSlot).toEqual({ counter: null, to: 'completed', outcome: 'completed' });
    expect(
      await fillSlots({ ...w.deps, store, recentOptions }, runId, hint, undefined, undefined, carried),
    ).toEqual({ placed: 1 });

    // After the create, the run's control alone: a cancel meanwhile would end the call.
    expect(counts.getRunControl ?? 0).toBe(1);
    expect(counts.getRunRecord ?? 0).toBe(0);
    expect(counts.getRun ?? 0).toBe(0);
    expect(counts.nextQueuedJobs ?? 0).toBe(0);
    expect(counts.acquireSlot).toBe(1);
    // The slot the release carried is the one taken: the ended lead counted, one live.
    expect(counts.dropCarry ?? 0).toBe(0);
    expect(await w.store.getRun(runId)).toMatchObject({ active: 1, completed: 1 });
    expect(await w.store.carriedSlots(runId, false)).toEqual([]);
  });

  it('does not take the carried slot in a run that takes no slot: drops it, so the count is right', async () => {
    const { w, runId, recentOptions, dispatch } = await firstRefill();
    await w.store.setControl(runId, { to: 'paused', from: ['running'], at: w.clock.now().toISOString() });
    const { next, carried } = dispatch.request;
    expect(await fillSlots({ ...w.deps, recentOptions }, runId, next, undefined, undefined, carried)).toEqual(
      {
        placed: 0,
      },
    );
    expect(await w.store.getRun(runId)).toMatchObject({ active: 0, completed: 1, holders: {} });
    expect(await w.store.carriedSlots(runId, false)).toEqual([]);
  });

  it('ends a call whose run was canceled while it was being created (the cancel could not see its Sid)', async () => {
    let cancelDuringCreate: () => void = () => {};
    const w = world({
      plan: () => {
        cancelDuringCreate();
        return 'created';
      },
    });
    const runId = await w.seedRun({ leads: 3, concurrency: 1 });
    cancelDuringCreate = () =>
      void w.store.setControl(runId, { to: 'canceled', from: ['running'], at: w.clock.now().toISOString() });
    expect(await fillSlots(w.deps, runId)).toEqual({ placed: 1 });
    const [call] = [...w.telephony.calls.values()];
    expect(call?.status).toBe('canceled');
    expect(w.telephony.requests).toHaveLength(1);
  });

  it('ingests a chunk once, however often it is delivered, then fills the slots', async () => {
    const w = world();
    const at = w.clock.now().toISOString();
    await w.store.createRun({ runId: 'r', createdAt: at, concurrency: 2, totalLeads: 3, chunkCount: 1 });
    const jobs = [0, 1, 2].map((i) => ({ jobId: jobIdFor(i), phone: phoneFor(i), attributes: {} }));

    const results = await Promise.all(
      [1, 2, 3].map(() => handleWorkMessage(w.deps, { type: 'ingest', runId: 'r', chunk: 0, jobs })),
    );

    expect(results.reduce((sum, r) => sum + r.placed, 0)).toBe(2);
    const run = (await w.store.getRun('r'))!;
    expect(run).toMatchObject({ ingestedLeads: 3, queued: 1, active: 2 });
  });
});
