// A freed account slot goes to one run waiting for one, in turn: the release hands it to a waiting
// run (with the shard it was freed on) and puts its own run on the waiting set; a handed dispatch
// that cannot use it passes it on. Against the in-memory store, under an account cap of 2.

import { describe, expect, it } from 'vitest';
import { fillSlots } from '../../lambdas/core/fill-slots.ts';
import { jobIdFor } from '../../lambdas/core/model.ts';
import { RecentRunOptions } from '../../lambdas/core/recent-run-options.ts';
import { placeOf } from '../../lambdas/core/rotate.ts';
import { world } from '../support/unit-world.ts';

function sum(shards: Map<number, number>): number {
  return [...shards.values()].reduce((a, b) => a + b, 0);
}

/** Run A holds both account slots; run B found the account full and waits. */
async function accountFull() {
  const w = world({ account: { maxConcurrentCalls: 2 } });
  const a = await w.seedRun({ leads: 4, concurrency: 2 });
  const b = await w.seedRun({ leads: 3, concurrency: 2 });
  expect((await fillSlots(w.deps, a)).placed).toBe(2);
  expect((await fillSlots(w.deps, b)).placed).toBe(0);
  w.queue.take();
  const [call] = w.telephony.live(a);
  return { w, a, b, call: call! };
}

describe('a freed account slot', () => {
  it('is handed to the waiting run, with its shard, and the releasing run waits its turn', async () => {
    const { w, a, b, call } = await accountFull();
    const shard = (await w.store.getJob(a, call.jobId))?.accountShard;
    await w.callback(call.sid, 'in-progress');
    expect(await w.callback(call.sid, 'completed')).toBe('released');
    const requests = w.queue.take();
    // One dispatch, for B, and none for A: one acquirer for the one slot.
    expect(requests.map((r) => [r.runId, r.request.handedShard])).toEqual([[b, shard]]);
    // The slot itself goes with it, still on the released job: neither A's counter nor the shard
    // was written.
    expect(requests[0]!.request.carried).toEqual({
      runId: a,
      jobId: call.jobId,
      attempt: 1,
      shard,
      runSlot: { counter: null, to: 'completed', outcome: 'completed' },
    });
    expect(sum(w.store.accountShards())).toBe(2);
    const activeOfA = (await w.store.getRunRecord(a))!.active;
    expect(await fillSlots(w.deps, b, undefined, undefined, shard, requests[0]!.request.carried)).toEqual({
      placed: 1,
    });
    // B took the account's slot; A's own was freed in the same transaction, its lead counted.
    expect(sum(w.store.accountShards())).toBe(2);
    expect(await w.store.getRunRecord(a)).toMatchObject({ active: activeOfA - 1, completed: 1 });
    expect((await w.store.carriedSlots(a)).length).toBe(0);
    expect(w.telephony.live(b)).toHaveLength(1);
    // B used it, so nothing is passed on; A is next in line.
    expect(w.queue.take()).toEqual([]);
    expect(await w.store.takeWaitingRun(b)).toBe(a);
  });

  it('is passed on by a handed run that cannot use it, and taken by the next', async () => {
    const { w, a, b, call } = await accountFull();
    await w.callback(call.sid, 'in-progress');
    await w.callback(call.sid, 'completed');
    const [handed] = w.queue.take();
    expect(handed?.runId).toBe(b);
    // B was paused meanwhile: it takes no slot, and the slot goes to the next waiting run, A.
    await w.store.setControl(b, { to: 'paused', from: ['running'], at: w.clock.now().toISOString() });
    expect(
      await fillSlots(w.deps, b, undefined, undefined, handed!.request.handedShard, handed!.request.carried),
    ).toEqual({ placed: 0 });
    const [passed, ...more] = w.queue.take();
    expect(more).toEqual([]);
    expect(passed?.runId).toBe(a);
    expect(passed?.request.handedShard).toBe(handed!.request.handedShard);
    // B's dispatch read first (its options not known): the carried slot went back to its shard then.
    expect(handed!.request.carried).toBeDefined();
    expect(passed?.request.carried).toBeUndefined();
    expect(
      (await fillSlots(w.deps, a, undefined, undefined, passed!.request.handedShard, passed!.request.carried))
        .placed,
    ).toBe(1);
    expect(w.telephony.live(a)).toHaveLength(2);
    expect(sum(w.store.accountShards())).toBe(2);
  });

  it('lets the run it is handed to fill every slot the account has room for', async () => {
    // A warm dispatcher (it knows the runs' options): the handed slot is taken as a refill's is.
    const w = world({ account: { maxConcurrentCalls: 2 } });
    const deps = { ...w.deps, recentOptions: new RecentRunOptions() };
    const b = await w.seedRun({ leads: 2, concurrency: 2 });
    const a = await w.seedRun({ leads: 4, concurrency: 2 });
    expect((await fillSlots(deps, b)).placed).toBe(2);
    expect((await fillSlots(deps, a)).placed).toBe(0);
    w.queue.take();
    // Both of B's calls end before A's dispatch runs: the first release hands A its slot; B has no
    // lead left, and no run waits any more, so the second release hands nobody anything.
    for (const call of w.telephony.live(b)) {
      await w.callback(call.sid, 'in-progress');
      await w.callback(call.sid, 'completed');
    }
    const handed = w.queue.take().filter((r) => r.request.handedShard !== undefined);
    expect(handed.map((r) => r.runId)).toEqual([a]);
    // A takes the slot it was handed, and the one nobody was handed (its carry went back to its shard).
    const { handedShard, carried } = handed[0]!.request;
    expect((await fillSlots(deps, a, undefined, undefined, handedShard, carried)).placed).toBe(2);
    expect(sum(w.store.accountShards())).toBe(2);
  });

  it("while other runs wait, takes only the slot it is handed and waits again: the account's other room is being handed to them", async () => {
    const w = world({ account: { maxConcurrentCalls: 2 } });
    const deps = { ...w.deps, recentOptions: new RecentRunOptions() };
    const b = await w.seedRun({ leads: 2, concurrency: 2 });
    const waiting = [
      await w.seedRun({ leads: 4, concurrency: 2 }),
      await w.seedRun({ leads: 4, concurrency: 2 }),
      await w.seedRun({ leads: 4, concurrency: 2 }),
    ];
    expect((await fillSlots(deps, b)).placed).toBe(2);
    for (const runId of waiting) expect((await fillSlots(deps, runId)).placed).toBe(0);
    w.queue.take();
    // Both of B's calls end before either handed dispatch runs: each release hands its slot to a
    // waiting run, and one run still waits.
    for (const call of w.telephony.live(b)) {
      await w.callback(call.sid, 'in-progress');
      await w.callback(call.sid, 'completed');
    }
    const handed = w.queue.take().filter((r) => r.request.handedShard !== undefined);
    expect(new Set(handed.map((r) => r.runId)).size).toBe(2);
    // Each takes its own slot, not the other's: before, the first filled in full and took both, and
    // the second's transaction was refused.
    for (const { runId, request } of handed)
      expect(
        (await fillSlots(deps, runId, undefined, undefined, request.handedShard, request.carried)).placed,
      ).toBe(1);
    expect(sum(w.store.accountShards())).toBe(2);
    // And both wait again, with the run that was waiting already.
    for (const { runId } of handed) expect(await w.store.hasWaitingRun(runId)).toBe(true);
    const stillWaiting = waiting.filter((runId) => !handed.some((r) => r.runId === runId));
    expect(await w.store.takeWaitingRun(stillWaiting[0]!)).toBeDefined();
    expect(await w.store.takeWaitingRun(stillWaiting[0]!)).toBeDefined();
  });

  it('handed to one run by several releases at once: each dispatch starts from its own place among its first jobs', async () => {
    // Two dispatches of the same run, each handed a slot (warm: the run's options known), name
    // different messages. Each takes the job at its message's place among the run's first 48, as a
    // refill's hint does, not both the first queued job (one of them would be refused).
    const taken = await Promise.all(
      ['message-7', 'message-9'].map(async (filler) => {
        const w = world({ account: { maxConcurrentCalls: 5 } });
        const deps = { ...w.deps, recentOptions: new RecentRunOptions() };
        const a = await w.seedRun({ leads: 60, concurrency: 1 });
        deps.recentOptions.remember((await w.store.getRunRecord(a))!);
        expect((await fillSlots(deps, a, undefined, filler, 0)).placed).toBe(1);
        return { place: placeOf(filler) % 48, jobId: w.telephony.live(a)[0]!.jobId };
      }),
    );
    expect(taken[0]!.place).not.toBe(taken[1]!.place);
    for (const { place, jobId } of taken) expect(jobId).toBe(jobIdFor(place));
  });

  it('goes to its own run when no run waits', async () => {
    const w = world({ account: { maxConcurrentCalls: 2 } });
    const a = await w.seedRun({ leads: 4, concurrency: 2 });
    await fillSlots(w.deps, a);
    w.queue.take();
    const [call] = w.telephony.live(a);
    await w.callback(call!.sid, 'in-progress');
    await w.callback(call!.sid, 'completed');
    const requests = w.queue.take();
    expect(requests.map((r) => r.runId)).toEqual([a]);
    expect(requests[0]?.request.handedShard).toBeUndefined();
    expect(requests[0]?.request.next?.length).toBeGreaterThan(0);
  });
});
