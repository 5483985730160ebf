// The whole local stack under the DynamoDB limits model (DYNAMO_LIMITS_MODEL=1: transactions that
// overlap on an item are cancelled with TransactionConflict, a partition written past its rate is
// throttled), with many dispatcher pollers and the Twilio double sending duplicated and reordered
// callbacks: one high-cap run, then runs racing for an account cap split over shard counters. Each
// run's own cap is split over slot counters too (more than 25 slots). The double, outside dialgate,
// observes every cap; every lead is called once; the model saw conflicts, which the code retried
// (the runs complete); every counter ends at zero.
//
// The model is one per process (limitsModelFromEnv) and vitest runs each file in a process of its own
// (pool 'forks'), so the setting does not reach other files.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limitsModelFromEnv } from '../../lambdas/adapters/dynamo-limits.ts';
import { accountShardCaps } from '../../lambdas/core/account-shards.ts';
import { LOCAL_AWS } from '../../tools/local/emulators.ts';
import { type LocalStack, startLocalStack } from '../../tools/local/stack.ts';
import { startTwilioSimulator, type TwilioSimulator } from '../../tools/twilio-simulator/simulator.ts';
import { accountItems, getRun, leadsFor, postRun, runItems, waitForRunCompleted } from '../support/runs.ts';

/** Twelve shards of 10: a run of cap 60 spreads over half of them; three runs of 50 contend for all. */
const ACCOUNT_CAP = 120;

let twilio: TwilioSimulator;
let stack: LocalStack;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  twilio = await startTwilioSimulator({
    queuedMs: 0,
    ringMs: 500,
    talkMs: 6_000,
    jitter: 0.5,
    faults: { duplicateCallback: 0.2, reorderCallback: 0.2 },
  });
  stack = await startLocalStack({
    port: 0,
    pollers: 6,
    retryVisibilitySeconds: 1,
    // A final callback whose webhook gave up (the machine too slow for the run item's burst of
    // releases) is settled by the reconciler, as in AWS; often here, so that the run ends.
    reconcileIntervalSeconds: 5,
    twilio: {
      baseUrl: twilio.url,
      accountSid: twilio.accountSid,
      authToken: twilio.authToken,
      fromNumber: '+15005550006',
    },
    functionEnv: {
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      DYNAMO_LIMITS_MODEL: '1',
      MAX_CONCURRENCY: '500',
      ACCOUNT_MAX_CONCURRENT_CALLS: String(ACCOUNT_CAP),
    },
  });
  dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: stack.endpoints.dynamodb });
});

afterAll(async () => {
  dynamo?.destroy();
  await stack?.stop();
  await twilio?.stop();
});

async function expectSettled(runId: string, leads: number, cap: number, counterCaps: number[]) {
  const stats = twilio.stats().runs[runId]!;
  expect(stats.maxLive, 'live calls at once, as the double saw them').toBeLessThanOrEqual(cap);
  expect(stats.created).toBe(leads);
  expect(stats.final).toBe(leads);
  const { run, jobs, slotCounters } = await runItems(dynamo, stack.tableName, runId);
  expect(jobs.filter((job) => job.status === 'completed')).toHaveLength(leads);
  // The run's cap split over slot counters (more than 25 slots), each back at zero. Each lead was
  // counted final once: on the counter its call ended on (the run item's `queued` still counts it).
  expect(slotCounters.map((counter) => counter.cap)).toEqual(counterCaps);
  expect(slotCounters.every((counter) => counter.active === 0)).toBe(true);
  const countedOnCounters = slotCounters.reduce((sum, counter) => sum + counter.completed, 0);
  expect(run).toMatchObject({ active: 0, holders: {} });
  expect(Number(run.completed) + countedOnCounters).toBe(leads);
  expect(Number(run.queued)).toBe(countedOnCounters);
  // What a client reads adds them up.
  const view = await getRun(stack.apiUrl, runId);
  expect(view).toMatchObject({ status: 'completed', queued: 0, in_progress: 0, completed: leads });
  return stats;
}

describe('the local stack under the DynamoDB limits model', () => {
  it('one run of cap 60, many dispatchers and webhooks: cap held, every lead once, conflicts retried', async () => {
    const model = limitsModelFromEnv();
    expect(model, 'the handlers run under the model').toBeDefined();
    expect(accountShardCaps(ACCOUNT_CAP)).toEqual(Array(12).fill(10));
    const conflictsBefore = model!.report.conflicts;
    const leads = leadsFor(100, '+1443');
    const created = await postRun(stack.apiUrl, { leads, concurrency: 60 });
    expect(created.status).toBe(202);
    const runId = created.body.run_id;
    await waitForRunCompleted(stack.apiUrl, runId, { timeoutMs: 120_000 });

    const stats = await expectSettled(runId, 100, 60, [10, 10, 10, 10, 10, 10]);
    // The cap was used, not just respected: waves filled it.
    expect(stats.maxLive).toBeGreaterThan(30);
    expect(twilio.repeatedTos()).toEqual([]);
    expect(model!.report.conflicts).toBeGreaterThan(conflictsBefore);
    const account = await accountItems(dynamo, stack.tableName);
    expect([...account.shards.values()].every((active) => active === 0)).toBe(true);
    // The layout before this table's first (shards of 50) was fenced, and holds no call.
    expect(account.fenced).toBe(0);
  });

  it('three runs of cap 50 under an account cap of 120 over twelve shards: every cap held, shards back at zero', async () => {
    const model = limitsModelFromEnv()!;
    const conflictsBefore = model.report.conflicts;
    const liveBefore = twilio.stats().maxLive;
    // Area codes libphonenumber calls valid (the API refuses numbers invalid for their country).
    const prefixes = ['+1445', '+1447', '+1448'];
    const created = await Promise.all(
      prefixes.map((prefix) => postRun(stack.apiUrl, { leads: leadsFor(60, prefix), concurrency: 50 })),
    );
    for (const res of created) expect(res.status).toBe(202);
    await Promise.all(
      created.map((res) => waitForRunCompleted(stack.apiUrl, res.body.run_id, { timeoutMs: 150_000 })),
    );

    for (const res of created) await expectSettled(res.body.run_id, 60, 50, [10, 10, 10, 10, 10]);
    // The account cap, seen from outside: never more live calls across all runs (the first test's
    // run, alone, stayed within 60).
    expect(Math.max(liveBefore, twilio.stats().maxLive)).toBeLessThanOrEqual(ACCOUNT_CAP);
    expect(twilio.repeatedTos()).toEqual([]);
    expect(model.report.conflicts).toBeGreaterThan(conflictsBefore);
    const account = await accountItems(dynamo, stack.tableName);
    expect(account.shards.size).toBe(12);
    expect([...account.shards.values()]).toEqual(Array(12).fill(0));
    expect(account.fenced).toBe(0);
    expect(account.waiting).toBeUndefined();
  });
});
