// The status-callback use case against the in-memory store: a final status frees the slot once and
// asks for the next call; duplicates, reordered and late callbacks (of this attempt or an earlier
// one) change nothing; a retry puts the lead back with a not-before time.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCallbackIds } from '../../lambdas/core/callback-url.ts';
import { applyStatusCallback } from '../../lambdas/core/callbacks.ts';
import { fillSlots } from '../../lambdas/core/fill-slots.ts';
import { jobIdFor, toRunView } from '../../lambdas/core/model.ts';
import { RecentRunOptions } from '../../lambdas/core/recent-run-options.ts';
import { TWILIO_CALL_STATUSES, type TwilioCallStatus } from '../../lambdas/core/states.ts';
import { counting, quietLog } from '../support/fakes.ts';
import { world } from '../support/unit-world.ts';

async function oneCall(options: Parameters<typeof world>[0] = {}, runOptions = {}, leads = 3) {
  const w = world(options);
  const runId = await w.seedRun({ leads, concurrency: 1, runOptions });
  await fillSlots(w.deps, runId);
  const [call] = w.telephony.live(runId);
  w.queue.take();
  return { w, runId, call: call! };
}

describe('status callbacks', () => {
  it('moves a dialing job to calling on in-progress, once', async () => {
    const { w, runId, call } = await oneCall();
    expect(await w.callback(call.sid, 'ringing')).toBe('unchanged');
    expect(await w.callback(call.sid, 'in-progress')).toBe('answered');
    expect(await w.callback(call.sid, 'in-progress')).toBe('unchanged');
    expect((await w.store.getRun(runId))?.holders[call.jobId]?.state).toBe('calling');
    expect(await w.store.getJob(runId, call.jobId)).toMatchObject({ status: 'calling' });
  });

  it('frees the slot on a final status and asks for the next call, with the next jobs as a hint', async () => {
    const { w, runId, call } = await oneCall();
    await w.callback(call.sid, 'in-progress');
    expect(await w.callback(call.sid, 'completed')).toBe('released');

    // The job is final and holds no slot; the run still counts the slot, which the job carries for the
    // next lead (its count moves to completed when that lead takes it).
    const run = (await w.store.getRun(runId))!;
    expect(run).toMatchObject({ active: 1, completed: 0 });
    expect(run.holders).toEqual({});
    // What a client reads counts it completed already, as its job is: the view adds up to the leads.
    expect(toRunView(run)).toMatchObject({
      queued: 2,
      in_progress: 0,
      completed: 1,
      outcomes: { completed: 1 },
    });
    expect(await w.store.getJob(runId, call.jobId)).toMatchObject({
      status: 'completed',
      outcome: 'completed',
      callSid: call.sid,
      carriedSlot: null,
    });
    const carried = { runId, jobId: call.jobId, attempt: 1 };
    expect(await w.store.carriedSlots(runId, false)).toMatchObject([carried]);
    const [dispatch, ...more] = w.queue.take();
    expect(more).toEqual([]);
    expect(dispatch?.runId).toBe(runId);
    expect(dispatch?.request.releasedAt).toBe(w.clock.now().toISOString());
    expect(dispatch?.request.next?.map((j) => j.jobId).sort()).toEqual([jobIdFor(1), jobIdFor(2)]);
    expect(dispatch?.request.carried).toEqual({
      ...carried,
      runSlot: { counter: null, to: 'completed', outcome: 'completed' },
    });

    // A warm dispatcher (the run's options known) takes it: the next lead is live on it, the ended
    // one counted.
    w.deps.recentOptions = new RecentRunOptions();
    w.deps.recentOptions.remember((await w.store.getRunRecord(runId))!);
    const taken = counting(w.store);
    w.deps.store = taken.store;
    w.queue.dispatches.push(dispatch!);
    expect(await w.dispatch()).toBe(1);
    expect(await w.store.getRun(runId)).toMatchObject({
      active: 1,
      completed: 1,
      outcomes: { completed: 1 },
    });
    expect(await w.store.carriedSlots(runId, false)).toEqual([]);
    expect(w.telephony.live(runId)).toHaveLength(1);
    expect(taken.counts.dropCarry ?? 0, 'taken, not dropped').toBe(0);
  });

  it('sends the carried slot again when Twilio retries the callback whose dispatch was lost', async () => {
    const { w, runId, call } = await oneCall();
    await w.callback(call.sid, 'in-progress');
    expect(await w.callback(call.sid, 'completed')).toBe('released');
    const [lost] = w.queue.take(); // the webhook's answer failed after the release: Twilio retries
    expect(await w.callback(call.sid, 'completed', { moveCall: false })).toBe('unchanged');
    const [again, ...more] = w.queue.take();
    expect(more).toEqual([]);
    expect(again?.request.carried).toEqual(lost?.request.carried);
    expect(again?.request.next?.length).toBeGreaterThan(0);
    w.queue.dispatches.push(again!);
    expect(await w.dispatch()).toBe(1);
    expect(await w.store.getRun(runId)).toMatchObject({ active: 1, completed: 1 });
    // Taken: a later retry has nothing to send.
    expect(await w.callback(call.sid, 'completed', { moveCall: false })).toBe('unchanged');
    expect(w.queue.take()).toEqual([]);
  });

  it('frees the slot on its counter when no dispatch takes the one a release carried', async () => {
    const { w, runId, call } = await oneCall({}, {}, 1);
    await w.callback(call.sid, 'in-progress');
    expect(await w.callback(call.sid, 'completed')).toBe('released');
    // The run's last lead: nobody is due, so the release's carry is dropped at once.
    expect(await w.store.carriedSlots(runId, false)).toEqual([]);
    expect(await w.store.getRun(runId)).toMatchObject({
      active: 0,
      completed: 1,
      outcomes: { completed: 1 },
    });
  });

  it('says so when it saw no lead due: the last call of a run asks for a dispatch with an empty hint', async () => {
    const { w, runId, call } = await oneCall({}, {}, 1);
    await w.callback(call.sid, 'in-progress');
    expect(await w.callback(call.sid, 'completed')).toBe('released');
    const [dispatch, ...more] = w.queue.take();
    expect(more).toEqual([]);
    expect(dispatch?.runId).toBe(runId);
    expect(dispatch?.request.next).toEqual([]);
  });

  it('hands the refill the account shard the release freed, with an account cap', async () => {
    const { w, runId, call } = await oneCall({ account: { maxConcurrentCalls: 500 } });
    const shard = (await w.store.getJob(runId, call.jobId))?.accountShard;
    expect(shard).toBeTypeOf('number');
    await w.callback(call.sid, 'in-progress');
    expect(await w.callback(call.sid, 'completed')).toBe('released');
    const [dispatch] = w.queue.take().filter((request) => request.runId === runId);
    expect(dispatch?.request.next?.length).toBeGreaterThan(0);
    for (const job of dispatch!.request.next!) expect(job.accountShard).toBe(shard);
  });

  it('frees an account slot without reading the run or the job: the URL names its shard', async () => {
    const { w, runId, call } = await oneCall({ account: { maxConcurrentCalls: 120 } });
    const shard = (await w.store.getJob(runId, call.jobId))?.accountShard;
    const url = new URL(call.request.statusCallbackUrl).searchParams;
    expect(url.get('account_slot')).toBe(String(shard));
    expect(url.get('requeue_on')).toBe('');
    const { store, counts } = counting(w.store);
    w.telephony.set(call.sid, 'busy');
    const ids = parseCallbackIds(url)!;
    const effect = await applyStatusCallback(
      { store, queue: w.queue, clock: w.clock, log: quietLog },
      { ...ids, callSid: call.sid, callStatus: 'busy' },
    );
    expect(effect).toBe('released');
    expect((counts.getRun ?? 0) + (counts.getRunRecord ?? 0) + (counts.getJob ?? 0)).toBe(0);
    expect(counts.releaseSlot).toBe(1);
    // The slot, the run's and the account's, goes to the refill still on the released job, neither
    // counter written (twice for no change): the refill takes it there.
    expect([...w.store.accountShards().values()].reduce((a, b) => a + b, 0)).toBe(1);
    expect((await w.store.getRunRecord(runId))?.active).toBe(1);
    const [dispatch] = w.queue.take().filter((request) => request.runId === runId);
    for (const job of dispatch!.request.next!) expect(job.accountShard).toBe(shard);
    const carried = {
      runId,
      jobId: call.jobId,
      attempt: 1,
      shard,
      runSlot: { counter: null, to: 'failed', outcome: 'busy' },
    };
    expect(dispatch!.request.carried).toEqual(carried);
    expect(await w.store.carriedSlots(runId)).toEqual([{ ...carried, endedAt: w.clock.now().toISOString() }]);
  });

  it('drops a carried account slot its run has no lead for: back on its shard at once', async () => {
    const { w, runId, call } = await oneCall({ account: { maxConcurrentCalls: 120 } }, {}, 1);
    await w.callback(call.sid, 'in-progress');
    expect(await w.callback(call.sid, 'completed')).toBe('released');
    expect([...w.store.accountShards().values()].reduce((a, b) => a + b, 0)).toBe(0);
    expect(await w.store.carriedSlots(runId)).toEqual([]);
    for (const { request } of w.queue.take()) expect(request.carried).toBeUndefined();
  });

  it('changes nothing for a duplicate final callback, or one that comes after it out of order', async () => {
    const { w, runId, call } = await oneCall();
    await w.callback(call.sid, 'completed');
    await w.dispatch(); // its refill takes the slot the release carried (before that, see below)
    const after = await w.store.getRun(runId);

    for (const status of ['completed', 'busy', 'in-progress', 'ringing', 'initiated'] as const) {
      expect(await w.callback(call.sid, status, { moveCall: false })).toBe('unchanged');
    }
    expect(await w.store.getRun(runId)).toEqual(after);
    expect(w.queue.take()).toEqual([]);
  });

  it('never lets a late callback of an earlier attempt free the next attempt’s slot', async () => {
    const retry = { on: ['busy' as const], delaySeconds: 60, maxAttempts: 3 };
    const { w, runId, call } = await oneCall({}, { retry });
    expect(await w.callback(call.sid, 'busy')).toBe('released');
    // Back in the queue, not due for a minute, with a wake-up armed for then.
    const job = (await w.store.getJob(runId, call.jobId))!;
    expect(job).toMatchObject({ status: 'queued', attempt: 1, outcome: 'busy' });
    expect(job.notBefore).toBe(w.clock.now().getTime() + 60_000);
    expect(w.queue.take().some((d) => d.request.delaySeconds === 60)).toBe(true);

    // The other leads take the slot meanwhile; then the retry is due and takes it as attempt 2.
    for (let i = 0; i < 2; i++) {
      await fillSlots(w.deps, runId);
      const [live] = w.telephony.live(runId);
      await w.callback(live!.sid, 'completed');
      await w.dispatch(); // finds nobody due yet: the slot its release carried is dropped
    }
    w.clock.advance(60_000);
    await fillSlots(w.deps, runId);
    const run = (await w.store.getRun(runId))!;
    expect(run.holders[call.jobId]).toMatchObject({ attempt: 2 });

    // Attempt 1's callback again (Twilio retried it): attempt 2 keeps its slot.
    expect(await w.callback(call.sid, 'completed', { moveCall: false })).toBe('unchanged');
    expect((await w.store.getRun(runId))?.holders[call.jobId]).toMatchObject({ attempt: 2 });
  });

  it('frees the slot without reading the run when the URL says the status does not requeue the lead', async () => {
    const { w, runId, call } = await oneCall();
    expect(new URL(call.request.statusCallbackUrl).searchParams.get('requeue_on')).toBe('');
    const { store, counts } = counting(w.store);
    w.telephony.set(call.sid, 'no-answer');
    const effect = await applyStatusCallback(
      { store, queue: w.queue, clock: w.clock, log: quietLog },
      {
        runId,
        jobId: call.jobId,
        attempt: call.attempt,
        requeueOn: [],
        callSid: call.sid,
        callStatus: 'no-answer',
      },
    );
    expect(effect).toBe('released');
    expect((counts.getRun ?? 0) + (counts.getRunRecord ?? 0)).toBe(0);
    expect(counts.releaseSlot).toBe(1);
    expect(await w.store.getRun(runId)).toMatchObject({ failed: 1, outcomes: { 'no-answer': 1 } });
  });

  it('ignores callbacks for runs and jobs it does not hold', async () => {
    const { w, runId } = await oneCall();
    const before = await w.store.getRun(runId);
    for (const ids of [
      { runId: 'no-such-run', jobId: jobIdFor(0), attempt: 1 },
      { runId, jobId: jobIdFor(2), attempt: 1 },
      { runId, jobId: jobIdFor(0), attempt: 7 },
    ]) {
      const effect = await applyStatusCallback(
        { store: w.store, queue: w.queue, clock: w.clock, log: quietLog },
        { ...ids, callSid: 'CA0', callStatus: 'completed' },
      );
      expect(effect).toBe('unchanged');
    }
    expect(await w.store.getRun(runId)).toEqual(before);
  });

  it('ends in the state of the call’s final status, whatever the order and duplicates of its callbacks', async () => {
    const live = ['queued', 'initiated', 'ringing', 'in-progress'] as const;
    const finals = TWILIO_CALL_STATUSES.filter((s) => !(live as readonly string[]).includes(s));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...finals),
        fc.array(fc.constantFrom<TwilioCallStatus>(...live, ...finals), { maxLength: 8 }),
        fc.infiniteStream(fc.boolean()),
        async (final, others, coin) => {
          const { w, runId, call } = await oneCall();
          // The final callback somewhere among the others (which are duplicates or reordered).
          const sequence = [...others];
          sequence.splice(coin.next().value ? 0 : sequence.length, 0, final);
          const effects: string[] = [];
          let settled: TwilioCallStatus | undefined;
          for (const status of sequence) {
            const isFinalStatus = (finals as readonly string[]).includes(status);
            const effect = await w.callback(call.sid, status, { moveCall: false });
            effects.push(effect);
            if (effect === 'released') settled = status;
            else if (isFinalStatus && settled === undefined)
              throw new Error(`a first final ${status} was not applied`);
          }
          // Exactly one release; counted once, as the first final status that arrived.
          expect(effects.filter((e) => e === 'released')).toHaveLength(1);
          // The slot the release carried goes with its dispatch (not run here); dropped, it is freed.
          const [dispatch] = w.queue.take().filter((d) => d.request.carried);
          await w.store.dropCarry(dispatch!.request.carried!);
          const run = (await w.store.getRun(runId))!;
          expect(run.active).toBe(0);
          expect(run.completed + run.failed + run.canceled).toBe(1);
          expect(run.outcomes).toEqual({ [settled!]: 1 });
          expect((await w.store.getJob(runId, call.jobId))?.outcome).toBe(settled);
        },
      ),
      { numRuns: 60 },
    );
  });
});
