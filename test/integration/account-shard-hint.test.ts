// An acquire near a full account. It writes only to shards with room: the shard a release just freed
// (a refill's hint), tried without a read; else the shards a read of all of them shows with room.
// Each full shard it wrote to would be a refused transaction; a wave refused on a shard filled since
// the read reads the shards again. On DynamoDB Local, the shard counters
// set by hand, and the requests the store sends counted on its client. Each test's account is new:
// its first acquire fences the layout before layouts were recorded and records layout 1.

import { randomUUID } from 'node:crypto';
import { GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { accountShardCaps, layoutRange } from '../../lambdas/core/account-shards.ts';
import { jobIdFor } from '../../lambdas/core/model.ts';
import type { WaveResult } from '../../lambdas/core/ports.ts';
import { keys } from '../../lambdas/definitions/table-schema.ts';
import { type TestAws, testAws } from '../support/aws.ts';

const AT = '2026-11-30T09:00:00.000Z';
const ACCOUNT_CAP = 100; // ten shards of 10
/** The shard numbers of a new account's first layout. */
const { base: BASE } = layoutRange(1, ACCOUNT_CAP);

describe('an acquire near a full account', () => {
  let aws: TestAws;
  const sent: string[] = [];
  /** Runs once, after the next BatchGetItem the store sends has been answered. */
  let afterNextRead: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    aws = await testAws();
    aws.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        sent.push(String(context.commandName));
        const output = await next(args);
        const after = context.commandName === 'BatchGetItemCommand' ? afterNextRead : undefined;
        afterNextRead = undefined;
        await after?.();
        return output;
      },
      { step: 'initialize', name: 'countCommands' },
    );
  });

  async function setShards(accountName: string, active: (shard: number, cap: number) => number) {
    for (const [shard, cap] of accountShardCaps(ACCOUNT_CAP).entries()) {
      const key = keys.accountShard(accountName, BASE + shard);
      await aws.dynamo.send(
        new UpdateItemCommand({
          TableName: aws.tableName,
          Key: { pk: { S: key.pk }, sk: { S: key.sk } },
          UpdateExpression: 'SET active = :n',
          ExpressionAttributeValues: { ':n': { N: String(active(shard, cap)) } },
        }),
      );
    }
  }

  async function shardActive(accountName: string, shard: number): Promise<number> {
    const key = keys.accountShard(accountName, BASE + shard);
    const { Item } = await aws.dynamo.send(
      new GetItemCommand({
        TableName: aws.tableName,
        Key: { pk: { S: key.pk }, sk: { S: key.sk } },
        ConsistentRead: true,
      }),
    );
    return Number(Item?.active?.N);
  }

  async function runWithLeads(accountName: string, leads: number) {
    const store = new DynamoRunStore(aws.dynamo, { tableName: aws.tableName, accountName });
    const runId = randomUUID();
    await store.createRun({ runId, createdAt: AT, concurrency: 20, totalLeads: leads });
    const jobs = Array.from({ length: leads }, (_, i) => ({
      jobId: jobIdFor(i),
      phone: `+1206555${4000 + i}`,
      attributes: {},
      attempt: 0,
    }));
    await store.ingestChunk(runId, 0, jobs, AT);
    // The store's first acquire reads the account's layout (and, the account being new, records it);
    // later ones do not. An acquire of nothing does that first read.
    await store.acquireSlots(runId, 20, [], AT, account);
    sent.length = 0;
    await store.acquireSlots(runId, 20, [], AT, account);
    expect(sent).toEqual(['BatchGetItemCommand']);
    return { store, runId, jobs };
  }

  const account = { maxConcurrentCalls: ACCOUNT_CAP, nowMs: Date.parse(AT) };

  /**
   * A fill that took the account's room and stopped there: its jobs on `shards` (by index in the
   * layout, one entry a job), those shards now full, `left` jobs left queued.
   */
  async function expectFilledUntilFull(
    store: DynamoRunStore,
    runId: string,
    result: WaveResult,
    accountName: string,
    shards: number[],
    left: number,
  ) {
    expect(result.acquired).toHaveLength(shards.length);
    expect(result.left).toHaveLength(left);
    expect(result.stop).toBe('account-full');
    for (const shard of new Set(shards)) expect(await shardActive(accountName, shard)).toBe(10);
    const taken = await Promise.all(
      result.acquired.map(async (j) => (await store.getJob(runId, j.jobId))?.accountShard),
    );
    expect(taken.sort()).toEqual(shards.map((shard) => BASE + shard));
  }

  it('finds the lone free slot by reading the shards, and then reports the account full', async () => {
    const accountName = `room-${randomUUID().slice(0, 8)}`;
    const { store, runId, jobs } = await runWithLeads(accountName, 2);
    expect(accountShardCaps(ACCOUNT_CAP)).toHaveLength(10);
    const free = 7;
    await setShards(accountName, (shard, cap) => (shard === free ? cap - 1 : cap));
    sent.length = 0;
    expect(await store.acquireSlot(runId, jobs[0]!, AT, account)).toBe('acquired');
    expect((await store.getJob(runId, jobIdFor(0)))?.accountShard).toBe(BASE + free);
    // One read of the shards, one transaction: no write to a full shard.
    expect(sent.filter((c) => c === 'TransactWriteItemsCommand')).toHaveLength(1);
    expect(sent).toContain('BatchGetItemCommand');
    sent.length = 0;
    expect(await store.acquireSlot(runId, jobs[1]!, AT, account)).toBe('account-full');
    expect(sent).not.toContain('TransactWriteItemsCommand');
    expect(await shardActive(accountName, free)).toBe(10);
  });

  it('tries the freed shard a refill is handed first, without a read', async () => {
    const accountName = `hint-${randomUUID().slice(0, 8)}`;
    const { store, runId, jobs } = await runWithLeads(accountName, 2);
    const freed = 3;
    await setShards(accountName, (shard, cap) => (shard === freed ? cap - 1 : cap));
    sent.length = 0;
    expect(await store.acquireSlot(runId, { ...jobs[0]!, accountShard: BASE + freed }, AT, account)).toBe(
      'acquired',
    );
    expect(sent.filter((c) => c !== 'TransactWriteItemsCommand')).toEqual([]);
    expect((await store.getJob(runId, jobIdFor(0)))?.accountShard).toBe(BASE + freed);
    // A hint past the shards there are (the account cap lowered since) is no shard: the read as usual.
    expect(
      await store.acquireSlot(
        runId,
        { ...jobs[1]!, accountShard: BASE + accountShardCaps(ACCOUNT_CAP).length + 3 },
        AT,
        account,
      ),
    ).toBe('account-full');
  });

  it('packs a wave onto the shards with room, and leaves the jobs past the room queued', async () => {
    const accountName = `wave-${randomUUID().slice(0, 8)}`;
    const { store, runId, jobs } = await runWithLeads(accountName, 8);
    // Room for five: three on shard 2, two on shard 6.
    await setShards(accountName, (shard, cap) => cap - (shard === 2 ? 3 : shard === 6 ? 2 : 0));
    sent.length = 0;
    const result = await store.acquireSlots(runId, 20, jobs, AT, account);
    await expectFilledUntilFull(store, runId, result, accountName, [2, 2, 2, 6, 6], 3);
    // No transaction was refused: every one wrote only to shards with room.
    expect(sent.filter((c) => c === 'TransactWriteItemsCommand').length).toBeLessThanOrEqual(2);
  });

  it('reads the shards again after a wave is refused on one filled since its read, not learning them a refused wave at a time', async () => {
    const accountName = `stale-${randomUUID().slice(0, 8)}`;
    const { store, runId, jobs } = await runWithLeads(accountName, 8);
    // Another run's first fill lands between this acquire's read of the shards (all empty) and its
    // first wave: every shard full but shard 6, which has room for three.
    afterNextRead = () => setShards(accountName, (shard, cap) => (shard === 6 ? cap - 3 : cap));
    sent.length = 0;
    const result = await store.acquireSlots(runId, 20, jobs, AT, account);
    await expectFilledUntilFull(store, runId, result, accountName, [6, 6, 6], 5);
    // The first wave (on a shard read empty) is refused; the second, placed after a second read, is
    // the one that takes the three. Learning the shards from refusals would take one a shard.
    expect(sent.filter((c) => c === 'TransactWriteItemsCommand')).toHaveLength(2);
    expect(sent.filter((c) => c === 'BatchGetItemCommand')).toHaveLength(2);
  });
});
