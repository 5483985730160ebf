// DynamoDB Local never throttles and never cancels a transaction for a conflict; AWS does both. These
// faults are injected into the real client here, and the store must ride them out without breaking
// the cap or double-counting — and give up, loudly, when they never stop.

import { randomUUID } from 'node:crypto';
import { DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { DYNAMO_MAX_ATTEMPTS } from '../../lambdas/adapters/aws-clients.ts';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { faultInjector } from '../../lambdas/adapters/fault-injection.ts';
import { jobIdFor } from '../../lambdas/core/model.ts';
import { LOCAL_AWS } from '../../tools/local/emulators.ts';
import { type TestAws, testAws } from '../support/aws.ts';

const AT = '2026-11-28T00:00:00.000Z';
let aws: TestAws;

function storeWith(plan: { transactionConflict: number; dynamoThrottle: number }) {
  const faults = faultInjector({ seed: 3, crashBefore: 0, crashAfter: 0, ...plan });
  // The same retry budget the functions' client has (lambdas/adapters/aws-clients.ts).
  const client = faults.dynamo(
    new DynamoDBClient({ ...LOCAL_AWS, endpoint: aws.dynamoEndpoint, maxAttempts: DYNAMO_MAX_ATTEMPTS }),
  );
  const store = new DynamoRunStore(client, { tableName: aws.tableName, sleep: async () => undefined });
  return { store, faults };
}

async function newRun(store: DynamoRunStore, leads: number, concurrency: number) {
  const runId = randomUUID();
  await store.createRun({ runId, createdAt: AT, concurrency, totalLeads: leads });
  const jobs = Array.from({ length: leads }, (_, i) => ({
    jobId: jobIdFor(i),
    phone: '+14155550100',
    attributes: {},
  }));
  await store.ingestChunk(runId, 0, jobs, AT);
  return { runId, jobs };
}

beforeAll(async () => {
  aws = await testAws();
});

describe('DynamoDB faults', () => {
  it('holds the cap and counts exactly while transactions conflict and requests are throttled', async () => {
    const { store, faults } = storeWith({ transactionConflict: 0.4, dynamoThrottle: 0.1 });
    const { runId, jobs } = await newRun(store, 30, 4);
    const results = await Promise.all(
      jobs.map((job) => store.acquireSlot(runId, { ...job, attempt: 0 }, AT)),
    );
    expect(results.filter((r) => r === 'acquired')).toHaveLength(4);
    const acquired = jobs.filter((_, i) => results[i] === 'acquired');
    // Every holder released twice at once: exactly one release each may succeed.
    const releases = await Promise.all(
      [...acquired, ...acquired].map((job) =>
        store.releaseSlot({ runId, jobId: job.jobId, attempt: 1, from: 'dialing', to: 'completed', at: AT }),
      ),
    );
    expect(releases.filter((r) => r === 'released')).toHaveLength(4);
    const run = await store.getRun(runId);
    expect(run).toMatchObject({ active: 0, holders: {}, completed: 4, queued: 26 });
    expect(faults.counts.transactionConflict).toBeGreaterThan(0);
    expect(faults.counts.dynamoThrottle).toBeGreaterThan(0);
  });

  it('gives up after bounded retries when every transaction conflicts, having changed nothing', async () => {
    const setup = storeWith({ transactionConflict: 0, dynamoThrottle: 0 });
    const { runId, jobs } = await newRun(setup.store, 1, 1);
    const { store, faults } = storeWith({ transactionConflict: 1, dynamoThrottle: 0 });
    await expect(store.acquireSlot(runId, { ...jobs[0]!, attempt: 0 }, AT)).rejects.toBeInstanceOf(
      TransactionCanceledException,
    );
    expect(faults.counts.transactionConflict).toBeGreaterThan(1);
    expect(await setup.store.getRun(runId)).toMatchObject({ active: 0, queued: 1 });
  });
});
