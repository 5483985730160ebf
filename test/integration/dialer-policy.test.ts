// Retries and calling windows, with time injected: dialgate's core on DynamoDB Local and the Twilio
// double, its clock jumping hours ahead instead of the test sleeping through them. What the double
// saw created (and when) is the evidence; GET /runs/{id}/calls is read through the real API handler.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyStatusCallback } from '../../lambdas/core/callbacks.ts';
import { listCalls } from '../support/api-reads.ts';
import { type Harness, scriptedSimulator, startHarness } from '../support/policy-harness.ts';
import { leadsFor } from '../support/runs.ts';

let h: Harness;
const { scripts, options: simulator } = scriptedSimulator();

beforeAll(async () => {
  // Sunday 29 November 2026, 07:00 in Jerusalem (UTC+2), midnight in New York.
  h = await startHarness({
    start: new Date('2026-11-29T05:00:00Z'),
    simulator,
  });
  Object.assign(process.env, h.apiEnvironment());
});

afterAll(async () => {
  await h?.stop();
});

const created = (runId: string) => h.twilio.calls().filter((call) => call.run === runId);
const calledNumbers = (runId: string) => created(runId).map((call) => call.to);

describe('calling window', () => {
  const window = {
    time_zone: 'Asia/Jerusalem',
    days: ['sun', 'mon', 'tue', 'wed', 'thu'],
    start: '09:00',
    end: '20:00',
  };

  it('dials no lead before its window opens, each in its own time zone, and every lead once it does', async () => {
    const leads = [
      ...leadsFor(4, '+1480'),
      ...leadsFor(2, '+1484').map((lead) => ({ ...lead, time_zone: 'America/New_York' })),
    ];
    const runId = await h.createRun({ leads, concurrency: 3, window });
    await h.idle();
    expect(created(runId)).toEqual([]);
    const waiting = await listCalls(runId);
    expect(waiting.map((c) => [c.status, c.next_attempt_at])).toEqual([
      ...Array(4).fill(['queued', '2026-11-29T07:00:00.000Z']), // 09:00 in Jerusalem
      ...Array(2).fill(['queued', '2026-11-29T14:00:00.000Z']), // 09:00 in New York
    ]);
    expect((await h.store.getRun(runId))!.active).toBe(0); // waiting holds no slot

    h.clock.jumpTo(new Date('2026-11-29T06:59:00Z'));
    await h.idle();
    expect(created(runId)).toEqual([]);

    h.clock.jumpTo(new Date('2026-11-29T07:00:01Z'));
    await h.idle();
    expect(calledNumbers(runId).sort()).toEqual(leads.slice(0, 4).map((l) => l.phone));

    h.clock.jumpTo(new Date('2026-11-29T13:59:00Z'));
    await h.idle();
    expect(created(runId)).toHaveLength(4);

    h.clock.jumpTo(new Date('2026-11-29T14:00:01Z'));
    await h.idle();
    expect(calledNumbers(runId).sort()).toEqual(leads.map((l) => l.phone).sort());
    const run = (await h.store.getRun(runId))!;
    expect(run).toMatchObject({ completed: 6, queued: 0, active: 0 });
    // Each lead dialed inside its own window (dialgate's timestamps, on the injected clock).
    const dialed = (await listCalls(runId)).map((c) => Date.parse(c.dialed_at!));
    for (const at of dialed.slice(0, 4))
      expect(at).toBeGreaterThanOrEqual(Date.parse('2026-11-29T07:00:00Z'));
    for (const at of dialed.slice(4)) expect(at).toBeGreaterThanOrEqual(Date.parse('2026-11-29T14:00:00Z'));
  });

  it('leaves the rest of the leads for the next opening when the window closes mid-run', async () => {
    // 19:59:30 in Jerusalem: one lead is dialed, and its call is still on at 20:00.
    h.clock.jumpTo(new Date('2026-11-29T17:59:30Z'));
    const leads = leadsFor(3, '+1501');
    scripts[leads[0]!.phone] = () => ({ outcome: 'completed', talkMs: 60_000 });
    const runId = await h.createRun({ leads, concurrency: 1, window });
    await h.twilio.waitFor(
      () => created(runId).some((c) => c.status === 'in-progress'),
      5_000,
      'the first call',
    );

    h.clock.jumpTo(new Date('2026-11-29T18:00:30Z')); // 20:00:30: closed
    h.twilio.hangUp(created(runId)[0]!.sid);
    await h.idle();
    expect(created(runId)).toHaveLength(1);
    const calls = await listCalls(runId);
    expect(calls.slice(1).map((c) => [c.status, c.next_attempt_at])).toEqual([
      ['queued', '2026-11-30T07:00:00.000Z'], // Monday 09:00 in Jerusalem
      ['queued', '2026-11-30T07:00:00.000Z'],
    ]);

    h.clock.jumpTo(new Date('2026-11-30T07:00:01Z'));
    await h.idle();
    expect(calledNumbers(runId)).toEqual(leads.map((l) => l.phone));
    expect(await h.store.getRun(runId)).toMatchObject({ completed: 3, queued: 0, active: 0 });
  });
});

describe('retries', () => {
  it('retries busy leads after the delay, up to the maximum, holding no slot while they wait', async () => {
    const leads = leadsFor(6, '+1502');
    const busy = leads.slice(0, 3).map((l) => l.phone);
    // Busy every time; the second attempt rings until the test ends it, so that a late callback of
    // the first can be sent while it holds its slot, however slowly this machine runs.
    for (const phone of busy) {
      scripts[phone] = (n) => ({ outcome: 'busy', ringMs: n === 2 ? 600_000 : 20 });
    }
    const runId = await h.createRun({
      leads,
      concurrency: 3,
      retry: { on: ['busy'], delay_seconds: 600, max_attempts: 3 },
    });
    await h.idle();
    expect(created(runId)).toHaveLength(6);
    const firstEnded = h.clock.now().getTime();
    let calls = await listCalls(runId);
    for (const call of calls.slice(0, 3)) {
      expect(call).toMatchObject({ status: 'queued', attempts: 1, outcome: 'busy' });
      const next = Date.parse(call.next_attempt_at!);
      expect(next).toBeGreaterThan(firstEnded + 590_000);
      expect(next).toBeLessThanOrEqual(firstEnded + 600_000);
    }
    for (const call of calls.slice(3)) expect(call).toMatchObject({ status: 'completed', attempts: 1 });
    expect(await h.store.getRun(runId)).toMatchObject({ queued: 3, active: 0, completed: 3 });

    // Not before the delay.
    h.clock.advance(590_000);
    await h.idle();
    expect(created(runId)).toHaveLength(6);

    // After it: the three are called again.
    const attempt1 = created(runId).find((c) => c.to === busy[0])!;
    h.clock.advance(11_000);
    await h.twilio.waitFor(() => created(runId).length === 9, 5_000, 'the second attempts');
    const run = async () => (await h.store.getRun(runId))!;
    const deadline = Date.now() + 30_000;
    while ((await run()).active < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect((await run()).holders['000000']).toMatchObject({ attempt: 2 });

    // Attempt 1's final callback again, late: its URL names attempt 1, so attempt 2's slot stays.
    const effect = await applyStatusCallback(
      { store: h.store, queue: h.queue, clock: h.clock, log: h.deps.log },
      { runId, jobId: '000000', attempt: 1, callSid: attempt1.sid, callStatus: 'busy' },
    );
    expect(effect).toBe('unchanged');
    expect((await run()).active).toBe(3);
    expect((await run()).holders['000000']).toMatchObject({ attempt: 2, state: 'dialing' });

    // The second attempts end busy too.
    for (const call of h.twilio.calls().filter((c) => c.run === runId && c.endedAt === undefined))
      h.twilio.hangUp(call.sid, 'busy');
    await h.idle();
    calls = await listCalls(runId);
    for (const call of calls.slice(0, 3)) expect(call).toMatchObject({ status: 'queued', attempts: 2 });

    h.clock.advance(601_000);
    await h.idle();
    // The third attempt is the last: busy again, the lead fails for good.
    calls = await listCalls(runId);
    for (const call of calls.slice(0, 3)) {
      expect(call).toMatchObject({ status: 'failed', attempts: 3, outcome: 'busy', next_attempt_at: null });
    }
    for (const phone of busy) expect(calledNumbers(runId).filter((to) => to === phone)).toHaveLength(3);
    expect(created(runId)).toHaveLength(12);
    expect(await run()).toMatchObject({
      completed: 3,
      failed: 3,
      queued: 0,
      active: 0,
      outcomes: { completed: 3, busy: 3 },
    });

    h.clock.advance(3_600_000);
    await h.idle();
    expect(created(runId)).toHaveLength(12); // nothing more, ever
    expect(h.errors).toEqual([]);
  });
});
