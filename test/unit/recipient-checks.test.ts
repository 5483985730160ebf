// The fill loop's per-recipient checks on the in-memory store (held to the DynamoDB adapter by
// test/integration/memory-store.test.ts): a suppressed number is never dialed and its lead ends
// `suppressed`; a number over its frequency cap ends `frequency_capped`, or waits for its next window
// with `frequency_cap: "wait"`; and the opt-out wraps the call's content in a Gather.

import { describe, expect, it } from 'vitest';
import { handleWorkMessage } from '../../lambdas/core/dispatch.ts';
import { FREQUENCY_CAPPED, fillSlots, SUPPRESSED } from '../../lambdas/core/fill-slots.ts';
import { jobIdFor } from '../../lambdas/core/model.ts';
import { applyOptOut, optOutUrl, withOptOut } from '../../lambdas/core/opt-out.ts';
import { frequencyWindow } from '../../lambdas/core/recipients.ts';
import { recipientChecks } from '../../lambdas/handlers/wiring.ts';
import { quietLog } from '../support/fakes.ts';
import { phoneFor, world } from '../support/unit-world.ts';

const HOUR = 3_600_000;

function checked(options: { maxCalls?: number } = {}) {
  const w = world();
  w.deps.recipients = {
    suppression: true,
    ...(options.maxCalls ? { frequency: { maxCalls: options.maxCalls, windowMs: 24 * HOUR } } : {}),
  };
  return w;
}

describe('the suppression list at dial time', () => {
  it('a suppressed number is never dialed: its lead ends suppressed, and the slot goes to the next lead', async () => {
    const w = checked();
    const runId = await w.seedRun({ leads: 5, concurrency: 2 });
    for (const i of [0, 3])
      await w.store.putSuppression({
        phone: phoneFor(i),
        reason: 'dnc-registry',
        createdAt: w.clock.now().toISOString(),
      });

    expect(await fillSlots(w.deps, runId)).toEqual({ placed: 2 });
    expect(w.telephony.requests.map((r) => r.to)).toEqual([phoneFor(1), phoneFor(2)]);
    const job = await w.store.getJob(runId, jobIdFor(0));
    expect(job).toMatchObject({ status: 'failed', outcome: SUPPRESSED, attempt: 0 });
    const run = (await w.store.getRun(runId))!;
    expect(run).toMatchObject({ active: 2, queued: 2, failed: 1, outcomes: { suppressed: 1 } });
  });

  it('an expired suppression does not hold a number back; with the check off nothing does', async () => {
    const w = checked();
    const now = w.clock.now().toISOString();
    const expired = new Date(w.clock.now().getTime() - 1).toISOString();
    await w.store.putSuppression({
      phone: phoneFor(0),
      reason: 'complaint',
      createdAt: now,
      expiresAt: expired,
    });
    await w.store.putSuppression({ phone: phoneFor(1), reason: 'complaint', createdAt: now });
    const checkedRun = await w.seedRun({ leads: 2, concurrency: 2 });
    expect(await fillSlots(w.deps, checkedRun)).toEqual({ placed: 1 });
    expect(w.telephony.requests.map((r) => r.to)).toEqual([phoneFor(0)]);

    w.deps.recipients = { suppression: false };
    const unchecked = await w.seedRun({ leads: 2, concurrency: 2 });
    expect(await fillSlots(w.deps, unchecked)).toEqual({ placed: 2 });
  });
});

describe('the suppression list at ingest', () => {
  it('a chunk’s suppressed leads end at once, shown in the run before any dial', async () => {
    const w = checked();
    const runId = 'run-ingest';
    await w.store.createRun({ runId, createdAt: w.clock.now().toISOString(), concurrency: 1, totalLeads: 3 });
    await w.store.putSuppression({
      phone: phoneFor(1),
      reason: 'opt-out',
      createdAt: w.clock.now().toISOString(),
    });
    const jobs = [0, 1, 2].map((i) => ({ jobId: jobIdFor(i), phone: phoneFor(i), attributes: {} }));
    await handleWorkMessage(w.deps, { type: 'ingest', runId, chunk: 0, jobs });
    expect(await w.store.getJob(runId, jobIdFor(1))).toMatchObject({ status: 'failed', outcome: SUPPRESSED });
    expect((await w.store.getRun(runId))!).toMatchObject({
      failed: 1,
      outcomes: { suppressed: 1 },
      active: 1,
    });
    expect(w.telephony.requests.map((r) => r.to)).toEqual([phoneFor(0)]);
  });
});

describe('the frequency cap', () => {
  it('checks the suppression list too, even with SUPPRESSION_CHECK=off: one item holds both', () => {
    const cap = { RECIPIENT_MAX_CALLS: 3, RECIPIENT_WINDOW_HOURS: 24 } as const;
    expect(recipientChecks({ SUPPRESSION_CHECK: 'off', ...cap })).toEqual({
      suppression: true,
      frequency: { maxCalls: 3, windowMs: 24 * HOUR },
    });
    expect(
      recipientChecks({
        SUPPRESSION_CHECK: 'off',
        RECIPIENT_MAX_CALLS: undefined,
        RECIPIENT_WINDOW_HOURS: undefined,
      }),
    ).toEqual({ suppression: false });
    expect(() =>
      recipientChecks({ SUPPRESSION_CHECK: 'on', RECIPIENT_MAX_CALLS: 3, RECIPIENT_WINDOW_HOURS: undefined }),
    ).toThrow(/together/);
  });

  it('with a frequency cap, a suppressed number is refused as suppressed even with the check off', async () => {
    const w = world();
    w.deps.recipients = { suppression: false, frequency: { maxCalls: 5, windowMs: 24 * HOUR } };
    await w.store.putSuppression({
      phone: phoneFor(0),
      reason: 'opt-out',
      createdAt: w.clock.now().toISOString(),
    });
    const runId = await w.seedRun({ leads: 2, concurrency: 2 });
    expect(await fillSlots(w.deps, runId)).toEqual({ placed: 1 });
    expect((await w.store.getJob(runId, jobIdFor(0)))?.outcome).toBe(SUPPRESSED);
  });

  it('counts calls to a number across runs: over the cap, the lead ends frequency_capped', async () => {
    const w = checked({ maxCalls: 1 });
    const first = await w.seedRun({ leads: 3, concurrency: 3 });
    const second = await w.seedRun({ leads: 3, concurrency: 3 });
    expect(await fillSlots(w.deps, first)).toEqual({ placed: 3 });
    expect(await fillSlots(w.deps, second)).toEqual({ placed: 0 });
    const run = (await w.store.getRun(second))!;
    expect(run).toMatchObject({ active: 0, queued: 0, failed: 3, outcomes: { frequency_capped: 3 } });
    expect(w.telephony.requests).toHaveLength(3);
    expect((await w.store.getJob(second, jobIdFor(1)))?.outcome).toBe(FREQUENCY_CAPPED);
  });

  it('with frequency_cap "wait", the lead stays queued until the window ends, and the run is woken then', async () => {
    const w = checked({ maxCalls: 1 });
    const first = await w.seedRun({ leads: 1, concurrency: 1 });
    const second = await w.seedRun({ leads: 1, concurrency: 1, runOptions: { frequencyCap: 'wait' } });
    await fillSlots(w.deps, first);
    expect(await fillSlots(w.deps, second)).toEqual({ placed: 0 });
    const opens = frequencyWindow(w.clock.now().getTime(), 24 * HOUR).endsAt;
    expect(await w.store.getJob(second, jobIdFor(0))).toMatchObject({ status: 'queued', notBefore: opens });
    const wake = w.queue.dispatches.filter((d) => d.runId === second).at(-1);
    expect(wake?.request.delaySeconds).toBeGreaterThan(0);

    // The window has passed: the lead is dialed.
    w.clock.advance(opens - w.clock.now().getTime() + 1);
    expect(await fillSlots(w.deps, second)).toEqual({ placed: 1 });
  });
});

describe('opt-out', () => {
  const action = optOutUrl('https://hooks.example/twilio/status', {
    runId: 'r1',
    jobId: '000004',
    attempt: 2,
  });

  it('the action is the webhook’s /opt-out route with the run, job and attempt', () => {
    expect(action).toBe('https://hooks.example/twilio/status/opt-out?run=r1&job=000004&attempt=2');
  });

  it('speech is played inside the Gather; other content follows the message; XML is escaped', () => {
    const spoken = withOptOut(
      { twiml: '<Response><Say>Hi &amp; bye</Say></Response>' },
      { digit: '9' },
      action,
    );
    expect(spoken.twiml).toBe(
      '<Response><Gather input="dtmf" numDigits="1" action="https://hooks.example/twilio/status/opt-out?run=r1&amp;job=000004&amp;attempt=2" method="POST">' +
        '<Say>Hi &amp; bye</Say><Say>To stop calls from us, press 9.</Say></Gather></Response>',
    );
    const dial = withOptOut(
      { twiml: '<Response><Dial>+15005550006</Dial></Response>' },
      { digit: '#' },
      action,
    );
    expect(dial.twiml).toMatch(/<Gather [^>]* timeout="3"><Say>[^<]*press #\.<\/Say><\/Gather><Dial>/);
    const url = withOptOut(
      { twimlUrl: 'https://twiml.example/a?b=1&c=2' },
      { digit: '9', message: 'Press 9 <now>' },
      action,
    );
    expect(url.twiml).toContain(
      '<Say>Press 9 &lt;now&gt;</Say></Gather><Redirect method="POST">https://twiml.example/a?b=1&amp;c=2</Redirect>',
    );
  });

  it('the run’s digit suppresses the job’s number (never a number from the request); another key does not', async () => {
    const w = world();
    const runId = await w.seedRun({ leads: 2, concurrency: 1, runOptions: { optOut: { digit: '9' } } });
    const deps = { store: w.store, clock: w.clock, log: quietLog };
    expect((await applyOptOut(deps, { runId, jobId: jobIdFor(1), attempt: 1 }, '8')).suppressed).toBe(false);
    expect(await w.store.getSuppression(phoneFor(1), w.clock.now().getTime())).toBeUndefined();
    const pressed = await applyOptOut(deps, { runId, jobId: jobIdFor(1), attempt: 1 }, '9');
    expect(pressed.twiml).toContain('<Hangup/>');
    expect(await w.store.getSuppression(phoneFor(1), w.clock.now().getTime())).toMatchObject({
      reason: 'opt-out',
      runId,
    });
    expect(await w.store.getSuppression(phoneFor(0), w.clock.now().getTime())).toBeUndefined();
  });
});
