// Scheduling (start_at, expires_at) and the failure breaker (pause_when), with time injected:
// dialgate's core on DynamoDB Local and the Twilio double, the clock jumping hours ahead instead of
// the test sleeping through them. What the double saw created is the evidence that nothing was
// dialed early or late; run views are read through the real API handler.

import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BREAKER_TTL_SECONDS } from '../../lambdas/adapters/dynamo/breaker.ts';
import { breakerReason } from '../../lambdas/core/breaker.ts';
import { runStatusChanged } from '../../lambdas/core/events.ts';
import type { RunView } from '../../lambdas/core/model.ts';
import { controlRun } from '../../lambdas/core/run-controls.ts';
import { keys } from '../../lambdas/definitions/table-schema.ts';
import { route } from '../../lambdas/handlers/api.ts';
import type { CallScript } from '../../tools/twilio-simulator/simulator.ts';
import { listCalls } from '../support/api-reads.ts';
import { apiEvent } from '../support/events.ts';
import { type Harness, scriptedSimulator, startHarness } from '../support/policy-harness.ts';
import { leadsFor } from '../support/runs.ts';

let h: Harness;
const { scripts, options: simulator } = scriptedSimulator();

const T0 = new Date('2026-12-01T06:00:00Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

beforeAll(async () => {
  h = await startHarness({
    start: T0,
    simulator,
  });
  Object.assign(process.env, h.apiEnvironment());
});

afterAll(async () => {
  await h?.stop();
});

async function getRunView(runId: string): Promise<RunView> {
  const res = await route(apiEvent('GET', `/runs/${runId}`));
  expect(res.statusCode).toBe(200);
  return JSON.parse(res.body);
}

async function listedStatus(runId: string): Promise<string | undefined> {
  const event: APIGatewayProxyEvent = {
    ...apiEvent('GET', '/runs'),
    queryStringParameters: { limit: '100' },
  };
  const res = await route(event);
  expect(res.statusCode).toBe(200);
  return (JSON.parse(res.body).runs as RunView[]).find((run) => run.run_id === runId)?.status;
}

const created = (runId: string) => h.twilio.calls().filter((call) => call.run === runId);

describe('start_at', () => {
  it('dials nothing before start_at: the run is scheduled until then, then running', async () => {
    h.clock.jumpTo(at(0));
    const leads = leadsFor(4, '+1480');
    const startAt = at(120); // two hours ahead: more than one 15-minute SQS delay
    const runId = await h.createRun({ leads, concurrency: 2, start_at: '2026-12-01T10:00:00+02:00' });
    expect(startAt.toISOString()).toBe('2026-12-01T08:00:00.000Z');
    await h.idle();
    expect(created(runId)).toEqual([]);
    const scheduled = await getRunView(runId);
    expect(scheduled).toMatchObject({ status: 'scheduled', start_at: startAt.toISOString(), queued: 4 });
    expect(await listedStatus(runId)).toBe('scheduled');
    const before = (await h.store.getRunRecord(runId))!;

    // Woken every 15 minutes at most (SQS's longest delay), each time re-armed: still nothing.
    for (const minutes of [15, 30, 60, 119]) {
      h.clock.jumpTo(at(minutes));
      await h.idle();
      expect(created(runId)).toEqual([]);
      expect((await getRunView(runId)).status).toBe('scheduled');
    }

    // A minute past the start: the last wake-up was armed for start_at from whenever the dispatcher
    // woken at minute 119 ran (this clock keeps running), in whole seconds, so it can come a little
    // after start_at on a loaded machine; never before.
    h.clock.jumpTo(new Date(startAt.getTime() + 60_000));
    await h.idle();
    expect(
      created(runId)
        .map((call) => call.to)
        .sort(),
    ).toEqual(leads.map((lead) => lead.phone));
    const done = await getRunView(runId);
    expect(done).toMatchObject({ status: 'completed', completed: 4 });
    for (const call of await listCalls(runId)) {
      expect(Date.parse(call.dialed_at!)).toBeGreaterThanOrEqual(startAt.getTime());
    }

    // The start is a write of its own, so the table's stream yields scheduled → running.
    const { scheduledFor: _start, ...after } = before;
    const event = runStatusChanged(before, after, startAt.toISOString());
    expect(event?.data).toMatchObject({ status: 'running', previous_status: 'scheduled', reason: null });
    expect(runStatusChanged(undefined, before, before.createdAt)?.data.status).toBe('scheduled');
    expect(h.errors).toEqual([]);
  });

  it('refuses a slot in the acquire transaction itself while the run waits for its start', async () => {
    h.clock.jumpTo(at(200));
    const runId = await h.createRun({
      leads: leadsFor(2, '+1484'),
      concurrency: 2,
      start_at: at(260).toISOString(),
    });
    await h.idle();
    const queued = await h.store.nextQueuedJobs(runId, 10);
    expect(queued).toHaveLength(2);
    // A dispatcher whose clock is past start_at, racing the one that starts the run: the run item's
    // condition, not the caller's check, keeps the slot.
    const late = at(261).toISOString();
    expect(await h.store.acquireSlot(runId, queued[0]!, late)).toBe('no-slot');
    const wave = await h.store.acquireSlots(runId, 2, queued, late);
    expect(wave).toMatchObject({ acquired: [], stop: 'no-slot' });
    // Nor does the start happen before its time.
    expect(await h.store.startScheduledRun(runId, at(259).getTime())).toBe(false);
    expect(await h.store.startScheduledRun(runId, at(260).getTime())).toBe(true);
    expect(await h.store.acquireSlot(runId, queued[0]!, late)).toBe('acquired');
    await h.store.releaseSlot({
      runId,
      jobId: queued[0]!.jobId,
      attempt: 1,
      from: 'dialing',
      to: 'canceled',
      at: late,
    });
    await controlRun({ store: h.store, queue: h.queue, clock: h.clock, log: h.deps.log }, runId, 'cancel');
    await h.idle();
    expect(created(runId)).toEqual([]);
  });
});

describe('expires_at', () => {
  it('ends the leads still waiting `expired`, lets the live call finish, and starts nothing after it', async () => {
    h.clock.jumpTo(at(300));
    const leads = leadsFor(3, '+1501');
    scripts[leads[0]!.phone] = () => ({ outcome: 'completed', talkMs: 60_000 });
    const expiresAt = at(360);
    const runId = await h.createRun({ leads, concurrency: 1, expires_at: expiresAt.toISOString() });
    await h.twilio.waitFor(
      () => created(runId).some((c) => c.status === 'in-progress'),
      5_000,
      'the first call',
    );
    expect((await getRunView(runId)).expires_at).toBe(expiresAt.toISOString());

    h.clock.jumpTo(new Date(expiresAt.getTime() + 1000));
    // The reconciler's pass (or the wake-up armed for expires_at) asks for a dispatch.
    await h.queue.requestDispatch(runId);
    let calls = await listCalls(runId);
    for (let i = 0; i < 200 && calls.filter((c) => c.outcome === 'expired').length < 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      calls = await listCalls(runId);
    }
    expect(calls.map((c) => [c.status, c.outcome])).toEqual([
      ['calling', null],
      ['failed', 'expired'],
      ['failed', 'expired'],
    ]);
    expect(created(runId)).toHaveLength(1);

    h.twilio.hangUp(created(runId)[0]!.sid);
    await h.idle();
    expect(created(runId)).toHaveLength(1);
    expect(await getRunView(runId)).toMatchObject({
      status: 'completed',
      completed: 1,
      failed: 2,
      outcomes: { completed: 1, expired: 2 },
    });
    expect(h.errors).toEqual([]);
  });

  it('a retry that could only come after expires_at ends the lead `expired` at once', async () => {
    h.clock.jumpTo(at(400));
    const leads = leadsFor(2, '+1502');
    scripts[leads[0]!.phone] = () => ({ outcome: 'busy' });
    const runId = await h.createRun({
      leads,
      concurrency: 2,
      retry: { on: ['busy'], delay_seconds: 600, max_attempts: 3 },
      expires_at: at(405).toISOString(),
    });
    await h.idle();
    expect(await getRunView(runId)).toMatchObject({
      status: 'completed',
      outcomes: { completed: 1, expired: 1 },
    });
    h.clock.jumpTo(at(420));
    await h.idle();
    expect(created(runId)).toHaveLength(2); // the busy lead was not called again
  });
});

describe('pause_when (the failure breaker)', () => {
  it('pauses once more than failed_ratio of the last min_calls failed, not before; resume goes on', async () => {
    h.clock.jumpTo(at(500));
    const leads = leadsFor(10, '+1503');
    // One call at a time, so the order is the leads' order: c f r c | f → 3 of the last 4 failed.
    const failing: Record<number, CallScript> = {
      1: { outcome: 'failed' },
      2: { outcome: 'completed', invalidNumber: true }, // refused by Twilio at create (21211)
      4: { outcome: 'failed' },
    };
    for (const [index, script] of Object.entries(failing))
      scripts[leads[Number(index)]!.phone] = () => script;
    const runId = await h.createRun({
      leads,
      concurrency: 1,
      pause_when: { failed_ratio: 0.5, min_calls: 4 },
    });
    await h.idle();
    // After four attempts 2 of 4 had failed: not more than half, so the fifth was dialed; after it, 3 of 4.
    const reason = breakerReason(3, 4, 0.5);
    const paused = await getRunView(runId);
    expect(paused).toMatchObject({
      status: 'paused',
      pause_reason: reason,
      pause_when: { failed_ratio: 0.5, min_calls: 4 },
      completed: 2,
      failed: 3,
      queued: 5,
    });
    expect(created(runId)).toHaveLength(4); // the refused number never became a call at the double
    const record = (await h.store.getRunRecord(runId))!;
    const event = runStatusChanged({ ...record, control: 'running' }, record, record.controlAt!);
    expect(event?.data).toMatchObject({ status: 'paused', previous_status: 'running', reason });

    // Resume: the window starts afresh, the reason goes, the rest are called.
    await controlRun({ store: h.store, queue: h.queue, clock: h.clock, log: h.deps.log }, runId, 'resume');
    await h.idle();
    expect(await getRunView(runId)).toMatchObject({ status: 'completed', completed: 7, pause_reason: null });
    expect(h.errors).toEqual([]);
  });

  it('counts every attempt once under concurrent releases', async () => {
    const runId = `breaker-${Date.now()}`;
    const epoch = at(600).toISOString();
    const before = Date.now();
    const results = await Promise.all(
      Array.from({ length: 40 }, () => h.store.countEndedAttempt(runId, epoch, true, 20)),
    );
    // Each attempt got a number of its own: none lost, none counted twice.
    expect(Math.max(...results.map((r) => r?.ended ?? 0))).toBe(40);
    // One more after them all sees the last 20 (22–41), every one written, every one failed.
    expect(await h.store.countEndedAttempt(runId, epoch, true, 20)).toEqual({ ended: 41, failed: 20 });
    // Nineteen calls that did not fail push all but attempt 41 out of the window.
    let window: Awaited<ReturnType<typeof h.store.countEndedAttempt>>;
    for (let i = 0; i < 19; i++) window = await h.store.countEndedAttempt(runId, epoch, false, 20);
    expect(window!).toEqual({ ended: 60, failed: 1 });
    // The window outlives its last count by the TTL, then DynamoDB deletes it.
    const { Item } = await DynamoDBDocumentClient.from(h.aws.dynamo).send(
      new GetCommand({ TableName: h.aws.tableName, Key: keys.breaker(runId, epoch), ConsistentRead: true }),
    );
    expect(Number(Item?.expiresAt)).toBeGreaterThanOrEqual(Math.floor(before / 1000) + BREAKER_TTL_SECONDS);
    expect(Number(Item?.expiresAt)).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + BREAKER_TTL_SECONDS);
    // Another epoch (the run resumed since) starts from nothing.
    expect(await h.store.countEndedAttempt(runId, at(601).toISOString(), true, 20)).toEqual({
      ended: 1,
      failed: 1,
    });
  });
});
