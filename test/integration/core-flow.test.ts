// dialgate end to end on DynamoDB Local + the SQS emulator, with a Twilio double over real HTTP that
// signs its callbacks like Twilio. The double's own observations (calls live at once, creates per
// number) are the ground truth for the cap; dialgate's counters are checked against them.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunk, LEADS_PER_CHUNK } from '../../lambdas/core/create-run.ts';
import { normalizePhone } from '../../lambdas/core/leads.ts';
import { jobIdFor } from '../../lambdas/core/model.ts';
import { LOCAL_AWS } from '../../tools/local/emulators.ts';
import { type LocalStack, startLocalStack } from '../../tools/local/stack.ts';
import {
  startTwilioSimulator,
  type TwilioSimulator,
  twilioSignature,
} from '../../tools/twilio-simulator/simulator.ts';
import { getRun, leadsFor, postRun, runItems, waitForRunCompleted } from '../support/runs.ts';

let stack: LocalStack;
let twilio: TwilioSimulator;
let dynamo: DynamoDBClient;
let sqs: SQSClient;

const FAST = { queuedMs: 0, ringMs: 40, talkMs: 120, jitter: 0.5, faults: {} };

beforeAll(async () => {
  twilio = await startTwilioSimulator({ ...FAST });
  stack = await startLocalStack({
    port: 0,
    // More pollers than a run has slots: ten or more dispatchers race on the same run.
    pollers: 12,
    retryVisibilitySeconds: 1,
    twilio: {
      baseUrl: twilio.url,
      accountSid: twilio.accountSid,
      authToken: twilio.authToken,
      fromNumber: '+15005550006',
    },
    functionEnv: { MAX_CONCURRENCY: '10', POWERTOOLS_LOG_LEVEL: 'ERROR' },
  });
  dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: stack.endpoints.dynamodb });
  sqs = new SQSClient({ ...LOCAL_AWS, endpoint: stack.endpoints.sqs, useQueueUrlAsEndpoint: false });
});

afterAll(async () => {
  await stack?.stop();
  await twilio?.stop();
});

/** What the auditor checks once a run is over: the double, the API and the table must agree. */
async function expectRunSettled(runId: string, leads: { phone: string }[], cap: number) {
  const view = await getRun(stack.apiUrl, runId);
  const stats = twilio.stats().runs[runId]!;
  expect(stats.maxLive).toBeLessThanOrEqual(cap);
  const calls = twilio.calls().filter((call) => call.run === runId);
  // Every lead called exactly once.
  const perNumber = new Map<string, number>();
  for (const call of calls) perNumber.set(call.to, (perNumber.get(call.to) ?? 0) + 1);
  expect([...perNumber.values()].every((n) => n === 1)).toBe(true);
  expect(new Set(perNumber.keys())).toEqual(new Set(leads.map((lead) => normalizePhone(lead.phone))));
  // The counts add up, and agree with what the double saw.
  expect(view).toMatchObject({ status: 'completed', total_leads: leads.length, queued: 0, in_progress: 0 });
  expect(Number(view.completed) + Number(view.failed) + Number(view.canceled)).toBe(leads.length);
  const outcomes = calls.reduce<Record<string, number>>((acc, call) => {
    acc[call.status] = (acc[call.status] ?? 0) + 1;
    return acc;
  }, {});
  expect(view.outcomes).toEqual(outcomes);
  // The semaphore is back to zero, with no holder left behind.
  const { run, jobs } = await runItems(dynamo, stack.tableName, runId);
  expect(run.active).toBe(0);
  expect(run.holders).toEqual({});
  expect(jobs).toHaveLength(leads.length);
  expect(jobs.every((job) => ['completed', 'failed', 'canceled'].includes(String(job.status)))).toBe(true);
  return { view, stats };
}

describe('a run of 100 leads with cap 3', () => {
  it('runs to completion with exactly 3 calls live at the peak, each lead called once', async () => {
    twilio.configure(FAST);
    const leads = leadsFor(100);
    const created = await postRun(stack.apiUrl, { leads, concurrency: 3 });
    expect(created.status).toBe(202);
    let maxInProgress = 0;
    await waitForRunCompleted(stack.apiUrl, created.body.run_id, {
      onPoll: (view) => {
        maxInProgress = Math.max(maxInProgress, Number(view.in_progress));
      },
    });
    const { stats } = await expectRunSettled(created.body.run_id, leads, 3);
    // Reaching the cap (not just staying under it) shows that slots are refilled as calls end.
    expect(stats.maxLive).toBe(3);
    expect(stats.created).toBe(100);
    expect(maxInProgress).toBeLessThanOrEqual(3);
  });
});

describe('races', () => {
  it('holds every cap with many dispatchers, duplicated SQS messages and duplicated, reordered callbacks', async () => {
    twilio.configure({ ...FAST, faults: { duplicateCallback: 0.3, reorderCallback: 0.3 } });
    const runs = [
      { leads: leadsFor(40, '+1416'), concurrency: 3 },
      { leads: leadsFor(40, '+1417'), concurrency: 2 },
      { leads: leadsFor(40, '+1418'), concurrency: 5 },
    ];
    const created = await Promise.all(runs.map((run) => postRun(stack.apiUrl, run)));
    for (const res of created) expect(res.status).toBe(202);

    // SQS delivers at least once: every lead chunk again, and a flood of "dispatch this run".
    const duplicates = created.flatMap((res, r) => {
      const jobs = runs[r]!.leads.map((lead, i) => ({
        jobId: jobIdFor(i),
        phone: lead.phone,
        attributes: { name: lead.name },
      }));
      const runId = res.body.run_id;
      return [
        ...chunk(jobs, LEADS_PER_CHUNK).map((c) => ({ type: 'ingest', runId, chunk: c.chunk, jobs: c.jobs })),
        ...Array.from({ length: 30 }, () => ({ type: 'dispatch', runId })),
      ];
    });
    // All at once: sent batch after batch, on a busy machine the pollers kept up with the sends, and
    // fewer than ten dispatchers were ever at work together (seen: nine).
    await Promise.all(
      Array.from({ length: Math.ceil(duplicates.length / 10) }, (_, b) =>
        sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: stack.queueUrl,
            Entries: duplicates
              .slice(b * 10, b * 10 + 10)
              .map((body, j) => ({ Id: String(j), MessageBody: JSON.stringify(body) })),
          }),
        ),
      ),
    );

    await Promise.all(created.map((res) => waitForRunCompleted(stack.apiUrl, res.body.run_id)));
    for (const [r, res] of created.entries()) {
      const { stats } = await expectRunSettled(res.body.run_id, runs[r]!.leads, runs[r]!.concurrency);
      expect(stats.created).toBe(40);
    }
    const { callbacks } = twilio.stats();
    expect(callbacks.duplicated).toBeGreaterThan(0);
    expect(callbacks.reordered).toBeGreaterThan(0);
    expect(stack.eventSource().maxConcurrentInvocations).toBeGreaterThanOrEqual(10);
  });
});

describe('the original bug: calls that stay long in dialing', () => {
  it('counts dialing (Twilio-queued and ringing) calls toward the cap', async () => {
    // Each call sits 300 ms in Twilio's queue and rings 600 ms before anyone answers: the old
    // limiter, counting only answered calls, placed every lead in that window.
    twilio.configure({ queuedMs: 300, ringMs: 600, talkMs: 100, jitter: 0, faults: {} });
    const leads = leadsFor(30, '+1419');
    const created = await postRun(stack.apiUrl, { leads, concurrency: 3 });
    const runId = created.body.run_id;

    await twilio.waitFor((sim) => (sim.stats().runs[runId]?.created ?? 0) >= 3, 10_000, 'first calls');
    await new Promise((resolve) => setTimeout(resolve, 500)); // well inside the first ring
    const early = twilio.stats().runs[runId]!;
    expect(early.created).toBe(3);
    expect(twilio.calls().filter((c) => c.run === runId && c.answeredAt !== undefined)).toHaveLength(0);
    const view = await getRun(stack.apiUrl, runId);
    expect(view).toMatchObject({ dialing: 3, calling: 0, in_progress: 3 });

    await waitForRunCompleted(stack.apiUrl, runId);
    const { stats } = await expectRunSettled(runId, leads, 3);
    expect(stats.maxLive).toBe(3);
  });
});

/** The run's table state once exactly three holders are all `calling` (polls; the double is async). */
async function threeAnswered(runId: string) {
  for (let i = 0; ; i++) {
    const items = await runItems(dynamo, stack.tableName, runId);
    const holders = Object.values(items.run.holders);
    // The job is the holder: "answered" is one write on it.
    if (holders.length === 3 && holders.every((h) => h.state === 'calling')) return items;
    if (i > 200) throw new Error(`holders never settled: ${JSON.stringify(items.run.holders)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('status callbacks', () => {
  it('refuses forged or unsigned callbacks with 403 and changes nothing; a duplicate final releases nothing', async () => {
    twilio.configure({ queuedMs: 0, ringMs: 30, talkMs: 60_000, jitter: 0, faults: {} });
    const leads = leadsFor(4, '+1469');
    const created = await postRun(stack.apiUrl, { leads, concurrency: 3 });
    const runId = created.body.run_id;
    await twilio.waitFor(
      (sim) => sim.calls().filter((c) => c.run === runId && c.status === 'in-progress').length === 3,
      10_000,
      'three answered calls',
    );
    // Wait until dialgate has applied the three `answered` callbacks, so nothing moves under us.
    const before = await threeAnswered(runId);
    const [victim, other] = twilio.calls().filter((c) => c.run === runId);

    const completedParams = (sid: string, to: string) => ({
      AccountSid: twilio.accountSid,
      CallSid: sid,
      CallStatus: 'completed',
      CallDuration: '5',
      Direction: 'outbound-api',
      From: '+15005550006',
      To: to,
      ApiVersion: '2010-04-01',
      SequenceNumber: '9',
    });
    const post = (url: string, params: Record<string, string>, signature?: string) =>
      fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          ...(signature ? { 'x-twilio-signature': signature } : {}),
        },
        body: new URLSearchParams(params).toString(),
      });

    // Unsigned, signed with the wrong token, or signed for another URL: 403, nothing written.
    const forged = completedParams(victim!.sid, victim!.to);
    const url = victim!.statusCallback!;
    expect((await post(url, forged)).status).toBe(403);
    expect((await post(url, forged, twilioSignature('not-the-token', url, forged))).status).toBe(403);
    expect((await post(url, forged, twilioSignature(twilio.authToken, `${url}&x=1`, forged))).status).toBe(
      403,
    );
    const afterForgery = await runItems(dynamo, stack.tableName, runId);
    expect(afterForgery.run).toEqual(before.run);
    expect(afterForgery.jobs).toEqual(before.jobs);

    // The callee hangs up: the real final callback frees one slot and the fourth lead is dialed.
    twilio.hangUp(victim!.sid);
    await twilio.waitFor((sim) => (sim.stats().runs[runId]?.created ?? 0) === 4, 10_000, 'the fourth call');
    const afterHangUp = await threeAnswered(runId);
    expect(afterHangUp.run.completed).toBe(1);

    // Twilio sends the same final callback again, validly signed: it must not free another slot.
    const replay = completedParams(victim!.sid, victim!.to);
    expect((await post(url, replay, twilioSignature(twilio.authToken, url, replay))).status).toBe(200);
    const afterReplay = await runItems(dynamo, stack.tableName, runId);
    expect(afterReplay.run.active).toBe(3);
    expect(afterReplay.run.completed).toBe(1);
    expect(afterReplay.run.holders).toEqual(afterHangUp.run.holders);

    // And a signed final callback for a live call does release it.
    const real = completedParams(other!.sid, other!.to);
    const otherUrl = other!.statusCallback!;
    expect((await post(otherUrl, real, twilioSignature(twilio.authToken, otherUrl, real))).status).toBe(200);
    const afterReal = await runItems(dynamo, stack.tableName, runId);
    expect(afterReal.run.completed).toBe(2);

    for (const call of twilio.calls().filter((c) => c.run === runId)) twilio.hangUp(call.sid);
    await waitForRunCompleted(stack.apiUrl, runId);
  });
});

describe('a telephony configuration error', () => {
  it('pauses the run and keeps the lead, instead of failing every lead the same way', async () => {
    const leads = leadsFor(4, '+1424');
    // Twilio answers 21210 ("From number not verified") for the first lead dialed: a setup problem.
    const badTo = normalizePhone(leads[0]!.phone)!;
    twilio.configure({
      ...FAST,
      rejectNumbers: {
        [badTo]: { status: 400, code: 21210, message: 'The source phone number is not verified' },
      },
    });
    const created = await postRun(stack.apiUrl, { leads, concurrency: 1 });
    const runId = created.body.run_id;
    // The run is paused first, then the lead's slot is freed (so no other lead takes it): wait for both.
    // A view is two reads (the run item, then its holders), not a snapshot: one taken as the release
    // commits can show the holder gone and the lead not back in `queued` yet, so the lead is waited for too.
    let view = await getRun(stack.apiUrl, runId);
    for (
      let i = 0;
      i < 200 && (view.status !== 'paused' || view.in_progress !== 0 || view.queued !== 4);
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      view = await getRun(stack.apiUrl, runId);
    }
    expect(view).toMatchObject({
      status: 'paused',
      failed: 0,
      queued: 4,
      in_progress: 0,
      // Why, on the run view (and in its run.status_changed event).
      pause_reason: "Twilio refused the run's caller id or call content (error 21210)",
    });

    // Fixed (here: Twilio accepts again) and resumed: every lead is called, none failed.
    twilio.configure({ ...FAST, rejectNumbers: {} });
    const resumed = await fetch(new URL(`/runs/${runId}/resume`, stack.apiUrl), { method: 'POST' });
    expect(resumed.status).toBe(200);
    const done = await waitForRunCompleted(stack.apiUrl, runId);
    expect(done).toMatchObject({ completed: 4, failed: 0, pause_reason: null });
  });
});
