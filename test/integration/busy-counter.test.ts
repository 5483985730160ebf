// A refill on a run whose cap is split over counters, when the counter its release freed is in
// another transaction at that moment (calls that end together meet on counters): AWS cancels the
// acquire with TransactionConflict, which DynamoDB Local never does, so the conflict is injected into
// the real client for the transactions that write that one counter. The acquire takes a slot on
// another counter with room at once; only when no other counter has one does it wait for the busy
// counter (its retries), and then takes the slot there.

import { randomUUID } from 'node:crypto';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { jobIdFor } from '../../lambdas/core/model.ts';
import { keys } from '../../lambdas/definitions/table-schema.ts';
import { type TestAws, testAws } from '../support/aws.ts';

const AT = '2026-11-30T09:00:00.000Z';

describe('a refill whose freed counter is busy', () => {
  let aws: TestAws;
  /** Transactions refused with a conflict on the busy counter, and every transaction sent. */
  const busy = { item: '', conflictsLeft: 0, refused: 0 };
  const sent: string[][] = [];
  beforeAll(async () => {
    aws = await testAws();
    aws.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'TransactWriteItemsCommand') {
          // The document client's input, before it is marshalled: plain values.
          type Op = { Key?: { pk: string; sk: string }; Item?: { pk: string; sk: string } };
          const items = (args.input as { TransactItems: Record<string, Op>[] }).TransactItems;
          const sks = items.map((item) => {
            const op = Object.values(item)[0]!;
            const key = (op.Key ?? op.Item)!;
            return `${key.pk}|${key.sk}`;
          });
          sent.push(sks);
          const at = sks.indexOf(busy.item);
          if (at >= 0 && busy.conflictsLeft > 0) {
            busy.conflictsLeft -= 1;
            busy.refused += 1;
            throw new TransactionCanceledException({
              message: 'Transaction cancelled (injected)',
              $metadata: { httpStatusCode: 400 },
              CancellationReasons: sks.map((_, i) =>
                i === at
                  ? { Code: 'TransactionConflict', Message: 'Transaction is ongoing for the item' }
                  : { Code: 'None' },
              ),
            });
          }
        }
        return next(args);
      },
      { step: 'initialize', name: 'busyCounter' },
    );
  });

  function counterKey(runId: string, shard: number): string {
    const key = keys.runSlots(runId, shard);
    return `${key.pk}|${key.sk}`;
  }

  /** A run of cap 4 over two counters of 2 (the store's counter size made small). */
  async function splitRun(leads: number) {
    const store = new DynamoRunStore(aws.dynamo, {
      tableName: aws.tableName,
      runSlotShardSize: 2,
      sleep: async () => undefined,
    });
    const runId = randomUUID();
    await store.createRun({ runId, createdAt: AT, concurrency: 4, totalLeads: leads });
    const jobs = Array.from({ length: leads }, (_, i) => ({
      jobId: jobIdFor(i),
      phone: `+1206555${4100 + i}`,
      attributes: {},
      attempt: 0,
    }));
    await store.ingestChunk(runId, 0, jobs, AT);
    return { store, runId, jobs };
  }

  it('takes a slot on another counter at once', async () => {
    const { store, runId, jobs } = await splitRun(3);
    busy.item = counterKey(runId, 0);
    busy.conflictsLeft = 100; // busy for as long as this acquire would wait
    busy.refused = 0;
    sent.length = 0;
    expect(await store.acquireSlot(runId, { ...jobs[0]!, slotShard: 0 }, AT)).toBe('acquired');
    expect((await store.getJob(runId, jobIdFor(0)))?.slotShard).toBe(1);
    // One refused try on the busy counter, no retry of it: the next transaction took counter 1.
    expect(busy.refused).toBe(1);
    expect(sent).toHaveLength(2);
  });

  it('waits for the busy counter when no other counter has a slot, and takes it there', async () => {
    const { store, runId, jobs } = await splitRun(3);
    // Counter 1 full: two acquires offered it.
    for (const job of jobs.slice(0, 2))
      expect(await store.acquireSlot(runId, { ...job, slotShard: 1 }, AT)).toBe('acquired');
    busy.item = counterKey(runId, 0);
    busy.conflictsLeft = 2;
    busy.refused = 0;
    expect(await store.acquireSlot(runId, { ...jobs[2]!, slotShard: 0 }, AT)).toBe('acquired');
    expect((await store.getJob(runId, jobIdFor(2)))?.slotShard).toBe(0);
    expect(busy.refused).toBe(2);
    const run = await store.getRun(runId);
    expect(run?.active).toBe(3);
  });
});
