// Calls nobody may make, on the whole local stack (DynamoDB Local, the SQS emulator, several dispatcher
// pollers, the Twilio double over HTTP): numbers suppressed while dispatchers are dialing them, a
// frequency cap across runs that share numbers, and an opt-out by keypress. What was called is read
// from the double's own record of creates, outside dialgate.
//
// The race is judged by when each dial was decided: a lead's acquire transaction starts after its
// dispatcher stamps the job's `dialedAt` (the same clock as this process: the handlers run in it). A
// number whose PUT /suppressions had returned before that stamp can only have been refused by the
// transaction's condition; a create for it is the failure this test exists for. A dial decided before
// the PUT returned (its create may still reach the double a moment after) is allowed, and counted.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_AWS } from '../../tools/local/emulators.ts';
import { type LocalStack, startLocalStack } from '../../tools/local/stack.ts';
import type { TwilioSimulator } from '../../tools/twilio-simulator/simulator.ts';
import { postRun, runItems, waitForRunCompleted } from '../support/runs.ts';

/** Calls to one number per window, across runs. */
const MAX_CALLS = 2;
/**
 * The window, in whole hours, so that this test's few minutes fall inside one window: windows are
 * counted from the epoch, and one ending during the test would let a number be called again.
 */
const WINDOW_HOURS = windowHoursClearOfItsEnd(Date.now(), 30 * 60_000);

function windowHoursClearOfItsEnd(nowMs: number, marginMs: number): number {
  for (let hours = 24; ; hours++) {
    const windowMs = hours * 3_600_000;
    if ((Math.floor(nowMs / windowMs) + 1) * windowMs - nowMs > marginMs) return hours;
  }
}

/** Israeli mobile numbers (+972 52x, valid under libphonenumber's full metadata), one block per test. */
function numbers(block: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `+97252${block}${String(100_000 + i)}`);
}

let stack: LocalStack;
let sim: TwilioSimulator;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  stack = await startLocalStack({
    port: 0,
    pollers: 4,
    retryVisibilitySeconds: 1,
    simulator: { queuedMs: 0, ringMs: 100, talkMs: 800, jitter: 0.5 },
    functionEnv: {
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      RECIPIENT_MAX_CALLS: String(MAX_CALLS),
      RECIPIENT_WINDOW_HOURS: String(WINDOW_HOURS),
    },
  });
  sim = stack.simulator!;
  dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: stack.endpoints.dynamodb });
}, 120_000);

afterAll(async () => {
  dynamo?.destroy();
  await stack?.stop();
});

async function api(method: string, path: string, body?: unknown, contentType = 'application/json') {
  const res = await fetch(new URL(path, stack.apiUrl), {
    method,
    ...(body === undefined
      ? {}
      : {
          headers: { 'content-type': contentType },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const suppress = (phone: string, body: unknown = { reason: 'dnc-registry' }) =>
  api('PUT', `/suppressions/${encodeURIComponent(phone)}`, body);

/** The double's creates to `phone`, with the run, job and attempt of each (from its callback URL). */
function createsTo(phone: string) {
  return sim.calls().filter((call) => call.to === phone);
}

describe('the suppression list', () => {
  it('refuses an invalid number (400), says 404 for an absent one, and lists what it holds', async () => {
    expect((await suppress('+1 212 000 0000')).status).toBe(400);
    const [phone] = numbers('2', 1);
    expect((await api('GET', `/suppressions/${encodeURIComponent(phone!)}`)).status).toBe(404);
    expect((await api('DELETE', `/suppressions/${encodeURIComponent(phone!)}`)).status).toBe(404);
    const put = await suppress(phone!, { reason: 'complaint' });
    expect(put).toMatchObject({ status: 200, body: { phone, reason: 'complaint', expires_at: null } });
    expect((await api('GET', `/suppressions/${encodeURIComponent(phone!)}`)).body).toMatchObject({ phone });
    expect((await suppress(phone!, { reason: 'complaint', colour: 'red' })).status).toBe(400);
    const list = await api('GET', '/suppressions?prefix=%2B972522');
    expect(list.body.suppressions).toEqual([expect.objectContaining({ phone, reason: 'complaint' })]);
    expect((await api('GET', '/suppressions?cursor=bm90LWEtY3Vyc29y')).status).toBe(400);
    expect((await api('DELETE', `/suppressions/${encodeURIComponent(phone!)}`)).status).toBe(204);
    expect((await api('GET', `/suppressions/${encodeURIComponent(phone!)}`)).status).toBe(404);

    // An import is every row or none: one bad line, nothing stored.
    const [a, b] = numbers('2', 3).slice(1);
    const bad = await api('POST', '/suppressions', `phone,reason\n${a},dnc-registry\n+1555,x\n`, 'text/csv');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ details: [expect.objectContaining({ field: 'phone', line: 3 })] });
    expect((await api('GET', `/suppressions/${encodeURIComponent(a!)}`)).status).toBe(404);
    const good = await api('POST', '/suppressions', `phone,reason\n${a},dnc-registry\n${b},\n`, 'text/csv');
    expect(good).toMatchObject({ status: 200, body: { imported: 2 } });
    expect((await api('GET', `/suppressions/${encodeURIComponent(b!)}`)).body).toMatchObject({
      reason: 'manual',
    });
  });

  it('numbers suppressed while dispatchers dial them are never dialed once the PUT has returned', async () => {
    // Two runs over the same 40 numbers, racing four pollers; numbers are suppressed one by one
    // just ahead of where the dialing is, so that some suppressions land as their leads are taken.
    const phones = numbers('3', 40);
    const leads = phones.map((phone, i) => ({ phone, row: i }));
    const runs = await Promise.all([0, 1].map(() => postRun(stack.apiUrl, { leads, concurrency: 6 })));
    for (const run of runs) expect(run.status).toBe(202);
    const suppressedAt = new Map<string, number>();
    const targets = phones.filter((_, i) => i % 2 === 1 && i >= 6);
    for (const phone of targets) {
      // Just ahead of the dialing: the highest lead index the double has seen created, plus a little.
      for (;;) {
        const dialed = Math.max(-1, ...sim.calls().map((call) => phones.indexOf(call.to)));
        if (phones.indexOf(phone) <= dialed + 3) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const res = await suppress(phone);
      expect(res.status).toBe(200);
      suppressedAt.set(phone, performance.timeOrigin + performance.now());
    }
    for (const run of runs) await waitForRunCompleted(stack.apiUrl, run.body.run_id, { timeoutMs: 300_000 });

    let decidedBefore = 0;
    let refused = 0;
    for (const run of runs) {
      const { jobs } = await runItems(dynamo, stack.tableName, run.body.run_id);
      for (const phone of targets) {
        const job = jobs.find((j) => j.phone === phone)!;
        const calls = createsTo(phone).filter((call) => call.run === run.body.run_id);
        if (job.outcome === 'suppressed') {
          refused += 1;
          expect(calls, `${run.body.run_id}: a suppressed lead was never called`).toEqual([]);
          expect(job).toMatchObject({ status: 'failed', attempt: 0 });
          continue;
        }
        // Called: its dial was decided before the suppression's PUT returned.
        expect(calls).toHaveLength(1);
        const decided = Date.parse(String(job.dialedAt));
        expect(
          decided,
          `lead ${job.jobId}: dialed after its number's suppression returned`,
        ).toBeLessThanOrEqual(suppressedAt.get(phone)!);
        decidedBefore += 1;
      }
    }
    console.info(
      `suppression race: ${targets.length} numbers x 2 runs, ${refused} leads ended suppressed uncalled, ` +
        `${decidedBefore} dialed before their suppression returned`,
    );
    // The race happened: many leads were refused while their runs were dialing, not only after.
    expect(refused).toBeGreaterThan(targets.length / 2);
    // The runs count them: outcome `suppressed`, final, uncalled; nobody else was held back.
    for (const run of runs) {
      const view = await api('GET', `/runs/${run.body.run_id}`);
      const outcomes = view.body.outcomes as Record<string, number>;
      expect((outcomes.suppressed ?? 0) + (outcomes.completed ?? 0)).toBe(40);
      expect(view.body).toMatchObject({ status: 'completed', in_progress: 0, queued: 0 });
    }
    for (const phone of phones.filter((p) => !targets.includes(p))) expect(createsTo(phone)).toHaveLength(2);
  }, 420_000);
});

describe('the frequency cap', () => {
  it(`three concurrent runs sharing numbers: each number called at most ${MAX_CALLS} times in the window`, async () => {
    const phones = numbers('4', 20);
    const leads = phones.map((phone) => ({ phone }));
    const runs = await Promise.all([0, 1, 2].map(() => postRun(stack.apiUrl, { leads, concurrency: 5 })));
    for (const run of runs) expect(run.status).toBe(202);
    for (const run of runs) await waitForRunCompleted(stack.apiUrl, run.body.run_id, { timeoutMs: 300_000 });

    // The double's count: never more than the cap per number; and the cap was reached, not avoided.
    for (const phone of phones) expect(createsTo(phone).length, phone).toBe(MAX_CALLS);
    let capped = 0;
    for (const run of runs) {
      const { jobs } = await runItems(dynamo, stack.tableName, run.body.run_id);
      for (const job of jobs.filter((j) => j.outcome === 'frequency_capped')) {
        capped += 1;
        expect(job).toMatchObject({ status: 'failed', attempt: 0 });
        expect(createsTo(String(job.phone)).filter((c) => c.run === run.body.run_id)).toEqual([]);
      }
    }
    // Three leads per number, two calls: one lead per number ended uncalled.
    expect(capped).toBe(phones.length);
  }, 360_000);

  it('a number’s calls in the window outlive a suppression added and removed: it is still capped', async () => {
    // Called MAX_CALLS times by the first test; its one item holds both its counts and suppressions.
    const phones = numbers('4', 7).slice(5);
    for (const phone of phones) {
      expect((await suppress(phone, { reason: 'complaint' })).status).toBe(200);
      expect((await api('DELETE', `/suppressions/${encodeURIComponent(phone)}`)).status).toBe(204);
      expect((await api('GET', `/suppressions/${encodeURIComponent(phone)}`)).status).toBe(404);
    }
    const run = await postRun(stack.apiUrl, { leads: phones.map((phone) => ({ phone })) });
    expect(run.status).toBe(202);
    await waitForRunCompleted(stack.apiUrl, run.body.run_id, { timeoutMs: 60_000 });
    const { jobs } = await runItems(dynamo, stack.tableName, run.body.run_id);
    expect(jobs.map((job) => job.outcome)).toEqual(['frequency_capped', 'frequency_capped']);
    for (const phone of phones) expect(createsTo(phone)).toHaveLength(MAX_CALLS);
  }, 90_000);

  it('with frequency_cap "wait", a lead over the cap stays queued until its number’s next window', async () => {
    const phones = numbers('4', 2); // called twice already by the test above
    const run = await postRun(stack.apiUrl, {
      leads: phones.map((phone) => ({ phone })),
      frequency_cap: 'wait',
    });
    expect(run.status).toBe(202);
    const windowMs = WINDOW_HOURS * 3_600_000;
    const opens = new Date((Math.floor(Date.now() / windowMs) + 1) * windowMs).toISOString();
    const deadline = Date.now() + 30_000;
    let calls: Record<string, unknown>[] = [];
    for (;;) {
      calls = (await api('GET', `/runs/${run.body.run_id}/calls`)).body.calls as Record<string, unknown>[];
      if (calls.length === 2 && calls.every((c) => c.next_attempt_at === opens)) break;
      if (Date.now() > deadline) throw new Error(`not deferred to ${opens}: ${JSON.stringify(calls)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(calls.map((c) => c.status)).toEqual(['queued', 'queued']);
    for (const phone of phones) expect(createsTo(phone)).toHaveLength(MAX_CALLS);
    expect((await api('POST', `/runs/${run.body.run_id}/cancel`)).status).toBe(200);
  }, 60_000);
});

describe('opt-out by keypress', () => {
  it('the callee presses the run’s digit: the number is suppressed, and a later run does not call it', async () => {
    const [target, ...others] = numbers('5', 3) as [string, ...string[]];
    // The double's callee at `target` presses 9 half-way through the call.
    sim.configure({
      behavior: ({ to }) =>
        to === target ? { outcome: 'completed', digits: '9' } : { outcome: 'completed' },
    });
    try {
      const leads = [target, ...others].map((phone) => ({ phone }));
      const first = await postRun(stack.apiUrl, { leads, opt_out: { digit: '9' } });
      expect(first.status).toBe(202);
      expect((await api('GET', `/runs/${first.body.run_id}`)).body.opt_out).toEqual({
        digit: '9',
        message: null,
      });
      await waitForRunCompleted(stack.apiUrl, first.body.run_id, { timeoutMs: 120_000 });

      const [call] = createsTo(target);
      expect(call?.twiml).toContain('<Gather input="dtmf" numDigits="1"');
      // The webhook checked the keypress's signature and answered goodbye; the double hung up.
      expect(call?.gather).toMatchObject({ digits: '9', responseStatus: 200 });
      expect(call?.gather?.twiml).toContain('<Hangup/>');
      const suppression = await api('GET', `/suppressions/${encodeURIComponent(target)}`);
      expect(suppression).toMatchObject({
        status: 200,
        body: { phone: target, reason: 'opt-out', run_id: first.body.run_id, expires_at: null },
      });
      // Nobody else opted out.
      for (const phone of others)
        expect((await api('GET', `/suppressions/${encodeURIComponent(phone)}`)).status).toBe(404);

      const later = await postRun(stack.apiUrl, { leads });
      expect(later.status).toBe(202);
      await waitForRunCompleted(stack.apiUrl, later.body.run_id, { timeoutMs: 120_000 });
      expect(createsTo(target)).toHaveLength(1);
      const calls = (await api('GET', `/runs/${later.body.run_id}/calls?reveal_phone=true`)).body
        .calls as Record<string, unknown>[];
      expect(calls.find((c) => c.phone === target)).toMatchObject({
        status: 'failed',
        outcome: 'suppressed',
        call_sid: null,
        attempts: 0,
      });
      for (const phone of others) expect(createsTo(phone)).toHaveLength(2);
    } finally {
      sim.configure({ behavior: () => ({ outcome: 'completed' }) });
    }
  }, 300_000);

  it('a keypress whose signature is not Twilio’s changes nothing (403)', async () => {
    const [phone] = numbers('5', 4).slice(3) as [string];
    const url = new URL('/opt-out?run=r1&job=000000&attempt=1', stack.webhookUrl);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': 'forged' },
      body: new URLSearchParams({ Digits: '9', To: phone }).toString(),
    });
    expect(res.status).toBe(403);
    expect((await api('GET', `/suppressions/${encodeURIComponent(phone)}`)).status).toBe(404);
  });
});
