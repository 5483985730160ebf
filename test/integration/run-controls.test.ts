// Run controls and the runs API over HTTP, on the whole local stack (DynamoDB Local, the SQS emulator,
// the handlers) with the Twilio double as the witness: what it saw created, canceled and hung up is
// what the controls did, whatever dialgate's own counters say.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_AWS } from '../../tools/local/emulators.ts';
import { type LocalStack, startLocalStack } from '../../tools/local/stack.ts';
import {
  type CallScript,
  startTwilioSimulator,
  type TwilioSimulator,
} from '../../tools/twilio-simulator/simulator.ts';
import { getRun, leadsFor, postRun, runItems, waitForRunCompleted } from '../support/runs.ts';

// biome-ignore lint/suspicious/noExplicitAny: API answers are checked by the assertions, not by types
type Json = Record<string, any>;

let stack: LocalStack;
let twilio: TwilioSimulator;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  twilio = await startTwilioSimulator({ queuedMs: 0, ringMs: 20, talkMs: 60_000 });
  stack = await startLocalStack({
    port: 0,
    pollers: 4,
    retryVisibilitySeconds: 1,
    twilio: {
      baseUrl: twilio.url,
      accountSid: twilio.accountSid,
      authToken: twilio.authToken,
      fromNumber: '+15005550006',
    },
    functionEnv: { POWERTOOLS_LOG_LEVEL: 'ERROR', MAX_LEADS_PER_RUN: '500' },
  });
  dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: stack.endpoints.dynamodb });
});

afterAll(async () => {
  await stack?.stop();
  await twilio?.stop();
});

async function api(method: string, path: string, body?: string, contentType = 'application/json') {
  const res = await fetch(new URL(path, stack.apiUrl), {
    method,
    ...(body === undefined ? {} : { body, headers: { 'content-type': contentType } }),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

/** Every call answered, with the simulator's current ring and talk times. */
const plainCalls = (): CallScript => ({ outcome: 'completed' });
const callsOf = (runId: string) => twilio.calls().filter((call) => call.run === runId);
const created = (runId: string) => callsOf(runId).length;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls GET /runs/{id} until `predicate` holds. */
async function waitForView(runId: string, predicate: (view: Json) => boolean, what: string) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const view = await getRun(stack.apiUrl, runId);
    if (predicate(view)) return view as Json;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(view)}`);
    await sleep(30);
  }
}

describe('pause and resume', () => {
  it('holds at zero new dials while live calls finish, then refills to the cap at once', async () => {
    twilio.configure({ queuedMs: 0, ringMs: 20, talkMs: 60_000, behavior: plainCalls });
    const leads = leadsFor(8, '+1425');
    const { body: run } = await postRun(stack.apiUrl, { leads, concurrency: 3 });
    const runId = run.run_id;
    await waitForView(runId, (v) => v.calling === 3, 'three answered calls');

    const paused = await api('POST', `/runs/${runId}/pause`);
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ run_id: runId, status: 'paused', calling: 3 });
    expect(paused.body.live).toHaveLength(3);
    expect(paused.body.live[0]).toMatchObject({ job_id: expect.any(String), attempt: 1, state: 'calling' });
    const pausedAt = performance.timeOrigin + performance.now();
    // Pausing twice is answered like the first time.
    expect((await api('POST', `/runs/${runId}/pause`)).body.status).toBe('paused');

    // Two callees hang up: their slots are freed, and nothing is dialed in their place.
    const [first, second, third] = callsOf(runId);
    twilio.hangUp(first!.sid);
    twilio.hangUp(second!.sid);
    await waitForView(runId, (v) => v.completed === 2 && v.in_progress === 1, 'two calls ended');
    await sleep(600);
    expect(created(runId)).toBe(3);
    expect(
      twilio.timeline().filter((e) => e.kind === 'create' && e.run === runId && e.at > pausedAt),
    ).toEqual([]);
    expect(await getRun(stack.apiUrl, runId)).toMatchObject({ status: 'paused', queued: 5, in_progress: 1 });

    // Resume fills the two free slots at once: back to three live calls.
    const resumedAt = Date.now();
    const resumed = await api('POST', `/runs/${runId}/resume`);
    expect(resumed.status).toBe(200);
    expect(resumed.body.status).toBe('running');
    await twilio.waitFor(() => created(runId) === 5, 5_000, 'the refill');
    expect(Date.now() - resumedAt).toBeLessThan(2_000);
    expect(twilio.stats().runs[runId]!.maxLive).toBe(3);

    // The rest of the run goes on as usual.
    twilio.configure({ talkMs: 30 });
    for (const call of callsOf(runId)) twilio.hangUp(call.sid);
    twilio.hangUp(third!.sid);
    await waitForRunCompleted(stack.apiUrl, runId, { timeoutMs: 20_000 });
    expect(twilio.stats().runs[runId]!.maxLive).toBeLessThanOrEqual(3);
    expect(twilio.repeatedTos().filter((to) => leads.some((l) => l.phone === to))).toEqual([]);
  });
});

describe('cancel', () => {
  it('cancels queued and ringing calls at Twilio, lets calls in progress end (or hangs them up), and ends with every lead final', async () => {
    // The first lead answers and talks; the second rings for a minute; the third sits in Twilio's queue.
    const scripts: Record<string, CallScript> = {
      '+14785000000': { outcome: 'completed', queuedMs: 0, ringMs: 20, talkMs: 60_000 },
      '+14785000001': { outcome: 'completed', queuedMs: 0, ringMs: 60_000, talkMs: 60_000 },
      '+14785000002': { outcome: 'completed', queuedMs: 60_000, ringMs: 20, talkMs: 60_000 },
    };
    twilio.configure({
      behavior: ({ to }) => scripts[to] ?? { outcome: 'completed', queuedMs: 0, ringMs: 20, talkMs: 50 },
    });
    const leads = leadsFor(10, '+1478');
    const { body: run } = await postRun(stack.apiUrl, { leads, concurrency: 3 });
    const runId = run.run_id;
    await twilio.waitFor(
      () => {
        const statuses = callsOf(runId)
          .map((c) => c.status)
          .sort();
        return statuses.join() === 'in-progress,queued,ringing';
      },
      10_000,
      'one call in progress, one ringing, one queued at Twilio',
    );
    await waitForView(
      runId,
      (v) => v.calling === 1 && v.dialing === 2 && v.queued === 7,
      'dialgate to agree',
    );

    const canceled = await api('POST', `/runs/${runId}/cancel`);
    expect(canceled.status).toBe(200);
    expect(canceled.body.status).toBe('canceling');

    // The ringing and the queued calls are canceled through the Calls API; the answered one talks on.
    await twilio.waitFor(
      () => callsOf(runId).filter((c) => c.status === 'canceled').length === 2,
      10_000,
      'two canceled calls',
    );
    const view = await waitForView(runId, (v) => v.canceled === 9, 'queued and ringing leads canceled');
    expect(view).toMatchObject({ status: 'canceling', queued: 0, in_progress: 1, calling: 1, completed: 0 });
    expect(callsOf(runId).find((c) => c.to === '+14785000000')!.status).toBe('in-progress');

    // Nothing can restart it.
    expect((await api('POST', `/runs/${runId}/resume`)).status).toBe(409);
    expect((await api('POST', `/runs/${runId}/pause`)).status).toBe(409);
    expect(
      (await api('POST', `/runs/${runId}/leads`, JSON.stringify({ leads: leadsFor(1, '+1479') }))).status,
    ).toBe(409);

    // Cancel again, this time hanging up: the call in progress ends `completed` and the run is over.
    const hangup = await api('POST', `/runs/${runId}/cancel?hangup=true`);
    expect(hangup.status).toBe(200);
    const done = await waitForView(runId, (v) => v.status === 'canceled', 'the run to end');
    expect(done).toMatchObject({
      total_leads: 10,
      queued: 0,
      in_progress: 0,
      completed: 1,
      failed: 0,
      canceled: 9,
    });
    expect(done.outcomes).toEqual({ completed: 1, canceled: 9 });
    expect(created(runId)).toBe(3);
    expect(
      callsOf(runId)
        .map((c) => c.status)
        .sort(),
    ).toEqual(['canceled', 'canceled', 'completed']);

    const { run: item, jobs } = await runItems(dynamo, stack.tableName, runId);
    expect(item.active).toBe(0);
    expect(item.holders).toEqual({});
    expect(jobs.every((job) => ['completed', 'canceled'].includes(String(job.status)))).toBe(true);
    expect(jobs.some((job) => 'queuedRun' in job)).toBe(false); // out of the queued index

    // A finished canceled run: canceling again changes nothing; a completed one refuses.
    expect((await api('POST', `/runs/${runId}/cancel`)).body.status).toBe('canceled');
    expect((await api('POST', '/runs/no-such-run/cancel')).status).toBe(404);
    twilio.configure({ behavior: plainCalls });
  });
});

describe('leads as CSV, appended leads, listings', () => {
  it('refuses a CSV with a bad row, naming its line and column, and creates nothing', async () => {
    const before = await api('GET', '/runs?limit=100');
    const csv =
      'phone,name\n+14155550100,Dana\n\n+1 (415) 555-0101,Eli\nnot-a-number,Gil\n+14155550100,Dup\n';
    const res = await api('POST', '/runs?concurrency=2', csv, 'text/csv');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.details).toEqual([
      { field: 'phone', row: 2, line: 5, message: expect.stringContaining('E.164') },
      { field: 'phone', row: 3, line: 6, message: 'the same number as line 2' },
    ]);
    const header = await api('POST', '/runs', 'name,number\nDana,+14155550100\n', 'text/csv');
    expect(header.status).toBe(400);
    expect(header.body.error.details).toEqual([{ field: 'phone', line: 1, message: expect.any(String) }]);
    const option = await api(
      'POST',
      '/runs?concurency=2&retry.max_attempts=99',
      'phone\n+14155550100\n',
      'text/csv',
    );
    expect(option.status).toBe(400);
    expect(option.body.error.details.map((d: { field: string }) => d.field)).toEqual(['concurency']);
    const after = await api('GET', '/runs?limit=100');
    expect(after.body.runs.length).toBe(before.body.runs.length);
  });

  it('runs a CSV upload with its options; leads appended while it runs are dialed before it completes', async () => {
    twilio.configure({ queuedMs: 0, ringMs: 20, talkMs: 60_000, behavior: plainCalls });
    const csv = 'Phone,name,plan\n+14285000000,Dana,gold\n+14285000001,Eli,\n+14285000002,Gil,silver\n';
    const created = await api(
      'POST',
      '/runs?concurrency=2&retry.on=busy&retry.delay_seconds=60',
      csv,
      'text/csv',
    );
    expect(created.status).toBe(202);
    const runId = created.body.run_id as string;
    const view = await waitForView(runId, (v) => v.calling === 2, 'two answered calls');
    expect(view).toMatchObject({
      concurrency: 2,
      total_leads: 3,
      retry: { on: ['busy'], delay_seconds: 60, max_attempts: 3 },
      window: null,
      from: null,
    });

    // Two more leads while the first calls are live (one as CSV, one as JSON).
    const appended = await api('POST', `/runs/${runId}/leads`, 'phone,name\n+14285000003,Hila\n', 'text/csv');
    expect(appended.status).toBe(202);
    expect(appended.body).toMatchObject({
      run_id: runId,
      appended: 1,
      first_job_id: '000003',
      total_leads: 4,
    });
    const json = await api(
      'POST',
      `/runs/${runId}/leads`,
      JSON.stringify({ leads: [{ phone: '+14285000004' }] }),
    );
    expect(json.body).toMatchObject({ appended: 1, first_job_id: '000004', total_leads: 5 });
    const bad = await api('POST', `/runs/${runId}/leads`, 'phone\n+1\n', 'text/csv');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details).toEqual([
      { field: 'phone', row: 0, line: 2, message: expect.any(String) },
    ]);

    // Let every call end quickly from now on: the run completes only once all five are done.
    twilio.configure({ talkMs: 20 });
    for (const call of callsOf(runId)) twilio.hangUp(call.sid);
    const done = await waitForRunCompleted(stack.apiUrl, runId, { timeoutMs: 20_000 });
    expect(done).toMatchObject({ total_leads: 5, completed: 5, pending_ingest: 0 });
    expect(
      callsOf(runId)
        .map((c) => c.to)
        .sort(),
    ).toEqual(['+14285000000', '+14285000001', '+14285000002', '+14285000003', '+14285000004']);
    // Completed: nothing more may be appended.
    expect(
      (await api('POST', `/runs/${runId}/leads`, JSON.stringify({ leads: [{ phone: '+14285000009' }] })))
        .status,
    ).toBe(409);

    // GET calls: attributes kept (an empty CSV cell is no attribute), phones masked unless asked for.
    const calls = await api('GET', `/runs/${runId}/calls?limit=2`);
    expect(calls.status).toBe(200);
    expect(calls.body.calls).toHaveLength(2);
    expect(calls.body.calls[0]).toMatchObject({
      job_id: '000000',
      phone: '+142******00',
      status: 'completed',
      attempts: 1,
      outcome: 'completed',
      call_sid: expect.stringMatching(/^CA/),
      attributes: { name: 'Dana', plan: 'gold' },
      next_attempt_at: null,
    });
    expect(calls.body.calls[1].attributes).toEqual({ name: 'Eli' });
    for (const key of ['queued_at', 'dialed_at', 'answered_at', 'ended_at']) {
      expect(calls.body.calls[0][key]).toEqual(expect.any(String));
    }
    const pages = [calls.body.calls];
    let cursor = calls.body.next_cursor as string | null;
    while (cursor) {
      const page = await api('GET', `/runs/${runId}/calls?limit=2&cursor=${cursor}`);
      pages.push(page.body.calls);
      cursor = page.body.next_cursor;
    }
    expect(pages.flat().map((c: { job_id: string }) => c.job_id)).toEqual([
      '000000',
      '000001',
      '000002',
      '000003',
      '000004',
    ]);
    const revealed = await api('GET', `/runs/${runId}/calls?reveal_phone=true&status=completed&limit=10`);
    expect(revealed.body.calls.map((c: { phone: string }) => c.phone)).toContain('+14285000004');
    expect(revealed.body.next_cursor).toBeNull();
    expect((await api('GET', `/runs/${runId}/calls?status=queued`)).body.calls).toEqual([]);
    expect((await api('GET', `/runs/${runId}/calls?status=bogus`)).status).toBe(400);
    expect((await api('GET', `/runs/${runId}/calls?cursor=bm9wZQ`)).status).toBe(400);
    expect((await api('GET', '/runs/no-such-run/calls')).status).toBe(404);
  });

  it('lists runs newest first, a page at a time', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { body } = await postRun(stack.apiUrl, { leads: leadsFor(1, `+143${i}`), concurrency: 1 });
      ids.push(body.run_id);
      await sleep(5); // distinct creation times
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: Json } = await api(
        'GET',
        `/runs?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.status).toBe(200);
      expect(page.body.runs.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.runs.map((r: { run_id: string }) => r.run_id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.slice(0, 3)).toEqual([...ids].reverse());
    const all = (await api('GET', '/runs?limit=100')).body.runs as { created_at: string }[];
    expect(all.map((r) => r.created_at)).toEqual([...all.map((r) => r.created_at)].sort().reverse());
    expect((await api('GET', '/runs?limit=0')).status).toBe(400);
  });
});
