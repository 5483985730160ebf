// A refill near a full account: the release says which account shard it freed a slot on, and the
// acquire tries that one first. Without it, the acquire tries the job's own shard and the three after
// it; with ten shards and only one slot free, it would find the account full and leave the slot idle.
// On DynamoDB Local, the shard counters set by hand.

import { randomUUID } from 'node:crypto';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { accountShardCaps, accountShardProbes } from '../../lambdas/core/account-shards.ts';
import { jobIdFor } from '../../lambdas/core/model.ts';
import { keys } from '../../lambdas/definitions/table-schema.ts';
import { type TestAws, testAws } from '../support/aws.ts';

const AT = '2026-11-30T09:00:00.000Z';
const ACCOUNT_CAP = 500; // ten shards of 50

describe('the account shard a release freed', () => {
  let aws: TestAws;
  beforeAll(async () => {
    aws = await testAws();
  });

  it('is tried first by the refill it is handed to, so a lone free slot is found', async () => {
    const accountName = `hint-${randomUUID().slice(0, 8)}`;
    const store = new DynamoRunStore(aws.dynamo, { tableName: aws.tableName, accountName });
    const runId = randomUUID();
    await store.createRun({ runId, createdAt: AT, concurrency: 3, totalLeads: 2 });
    const jobs = [0, 1].map((i) => ({ jobId: jobIdFor(i), phone: `+1206555${4000 + i}`, attributes: {} }));
    await store.ingestChunk(runId, 0, jobs, AT);
    const caps = accountShardCaps(ACCOUNT_CAP);
    expect(caps).toHaveLength(10);
    // Every shard full but one, which none of the job's own probes reach.
    const probed = new Set(accountShardProbes(runId, jobIdFor(0), caps.length));
    const freed = caps.findIndex((_, shard) => !probed.has(shard));
    for (const [shard, cap] of caps.entries()) {
      const key = keys.accountShard(accountName, shard);
      await aws.dynamo.send(
        new UpdateItemCommand({
          TableName: aws.tableName,
          Key: { pk: { S: key.pk }, sk: { S: key.sk } },
          UpdateExpression: 'SET active = :n',
          ExpressionAttributeValues: { ':n': { N: String(shard === freed ? cap - 1 : cap) } },
        }),
      );
    }
    const account = { maxConcurrentCalls: ACCOUNT_CAP, nowMs: Date.parse(AT) };
    const job = { ...jobs[0]!, attempt: 0 };
    expect(await store.acquireSlot(runId, job, AT, account)).toBe('account-full');
    expect(await store.acquireSlot(runId, { ...job, accountShard: freed }, AT, account)).toBe('acquired');
    expect((await store.getJob(runId, jobIdFor(0)))?.accountShard).toBe(freed);
    // A hint past the shards there are (the account cap lowered since) is no shard: the probes as usual.
    expect(
      await store.acquireSlot(runId, { ...jobs[1]!, attempt: 0, accountShard: caps.length + 3 }, AT, account),
    ).toBe('account-full');
  });
});
