// The reconciler on the emulators with the Twilio double: slots whose callbacks are lost, and calls
// whose create answer was lost, are settled from Twilio's own word, and no lead is dialed twice.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_AWS } from '../../tools/local/emulators.ts';
import { type LocalStack, startLocalStack } from '../../tools/local/stack.ts';
import { startTwilioSimulator, type TwilioSimulator } from '../../tools/twilio-simulator/simulator.ts';
import { leadsFor, postRun, runItems, waitForRunCompleted } from '../support/runs.ts';

const INTERVAL_SECONDS = 1;
let stack: LocalStack;
let twilio: TwilioSimulator;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  twilio = await startTwilioSimulator({ queuedMs: 0, ringMs: 50, talkMs: 200 });
  stack = await startLocalStack({
    port: 0,
    reconcileIntervalSeconds: INTERVAL_SECONDS,
    twilio: {
      baseUrl: twilio.url,
      accountSid: twilio.accountSid,
      authToken: twilio.authToken,
      fromNumber: '+15005550006',
    },
    // Short timeouts so that a held slot becomes overdue within seconds, not minutes.
    functionEnv: {
      RING_TIMEOUT_SECONDS: '1',
      CALL_TIME_LIMIT_SECONDS: '2',
      RECONCILE_GRACE_SECONDS: '1',
      TWILIO_REQUEST_TIMEOUT_MS: '2000',
    },
  });
  dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: stack.endpoints.dynamodb });
});

afterAll(async () => {
  await stack?.stop();
  await twilio?.stop();
});

async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function callsOf(runId: string) {
  return twilio.calls().filter((call) => call.run === runId);
}

function expectEachLeadCalledOnce(runId: string, count: number) {
  const tos = callsOf(runId).map((call) => call.to);
  expect(tos).toHaveLength(count);
  expect(new Set(tos).size).toBe(count);
}

describe('reconciler', () => {
  it('recovers a lost final callback within two reconciler intervals of the slot falling due', async () => {
    twilio.configure({ faults: { dropCallback: 1 } }); // every callback lost: only the reconciler frees slots
    const created = await postRun(stack.apiUrl, { leads: leadsFor(6, '+1470'), concurrency: 3 });
    const runId = created.body.run_id;
    await waitForRunCompleted(stack.apiUrl, runId, { timeoutMs: 45_000 });
    expectEachLeadCalledOnce(runId, 6);

    // The fourth call could only start once a slot of the first three was reaped. A slot falls due
    // ring timeout + grace after it was taken (the call's `answered` callback was lost too).
    const [first, , , fourth] = callsOf(runId).sort((a, b) => a.createdAt - b.createdAt);
    const due = first!.createdAt + (1 + 1) * 1000;
    expect(first!.endedAt!).toBeLessThan(due);
    expect(fourth!.createdAt - due).toBeLessThan(2 * INTERVAL_SECONDS * 1000 + 500);
    const { run } = await runItems(dynamo, stack.tableName, runId);
    expect(run).toMatchObject({ active: 0, holders: {}, completed: 6 });
    // Closed within an interval or two: the reconciler stops visiting it.
    await until(
      async () => (await runItems(dynamo, stack.tableName, runId)).run.openRuns === undefined,
      'run closed',
    );
  });

  it('re-queues a call whose create failed before Twilio made it, and dials it once', async () => {
    twilio.configure({ faults: { createServerErrorWithoutCreating: 1 } });
    const leads = leadsFor(3, '+1475');
    const created = await postRun(stack.apiUrl, { leads, concurrency: 3 });
    const runId = created.body.run_id;
    await until(() => twilio.stats().serverErrors.withoutCreating >= 3, 'three failed creates');
    twilio.configure({ faults: {} });
    await waitForRunCompleted(stack.apiUrl, runId, { timeoutMs: 45_000 });
    expectEachLeadCalledOnce(runId, 3);
    // Each lead's first attempt is the one that never reached Twilio.
    expect(callsOf(runId).every((call) => Number(call.attempt) >= 2)).toBe(true);
  });

  it('settles a call whose create answer was lost, from the call list, without dialing again', async () => {
    // The call exists at Twilio but dialgate never learned its Sid, and its callbacks are lost too.
    twilio.configure({ faults: { createServerErrorAfterCreating: 1, dropCallback: 1 } });
    const leads = leadsFor(3, '+1423');
    const created = await postRun(stack.apiUrl, { leads, concurrency: 3 });
    const runId = created.body.run_id;
    await waitForRunCompleted(stack.apiUrl, runId, { timeoutMs: 45_000 });
    expectEachLeadCalledOnce(runId, 3);
    const { jobs } = await runItems(dynamo, stack.tableName, runId);
    expect(jobs.map((job) => job.status)).toEqual(['completed', 'completed', 'completed']);
    expect(jobs.every((job) => String(job.callSid).startsWith('CA'))).toBe(true);
  });

  it('credits each call to one attempt when two runs call the same people and every Sid is lost', async () => {
    // Two campaigns dial the same two people at once; no create answer and no callback arrives, so
    // every attempt is found by number among calls to that number from both runs.
    twilio.configure({ faults: { createServerErrorAfterCreating: 1, dropCallback: 1 } });
    const leads = leadsFor(2, '+1424');
    const [a, b] = await Promise.all([
      postRun(stack.apiUrl, { leads, concurrency: 1 }),
      postRun(stack.apiUrl, { leads, concurrency: 1 }),
    ]);
    const runIds = [a.body.run_id, b.body.run_id];
    await Promise.all(runIds.map((id) => waitForRunCompleted(stack.apiUrl, id, { timeoutMs: 60_000 })));
    twilio.configure({ faults: {} });

    for (const runId of runIds) expectEachLeadCalledOnce(runId, 2);
    const credited = [];
    for (const runId of runIds) {
      const { jobs } = await runItems(dynamo, stack.tableName, runId);
      for (const job of jobs) {
        // The call credited is one the double made to this job's number.
        const call = twilio.calls().find((c) => c.sid === job.callSid);
        expect(call?.to).toBe(job.phone);
        credited.push(job.callSid);
      }
    }
    // Four calls, four attempts: no call credited twice.
    expect(new Set(credited).size).toBe(4);
  });
});
