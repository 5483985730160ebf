// DynamoDB's limits, which DynamoDB Local does not enforce, put in front of it by the limits model
// (lambdas/adapters/dynamo-limits.ts): transactions that overlap on an item are cancelled with
// TransactionConflict, a partition written past its rate is throttled. Many dispatchers and webhooks
// race on one high-cap run, and on several runs under an account cap split over shard counters; the
// test itself observes how many slots are held at any moment (from the store's answers, outside the
// store), and every lead must be taken once, every conflict retried, every counter back at zero.
// And answers lost after a write succeeded (acquire, release, reserving appended leads): the retry
// is recognised as the same request, so nothing is applied twice and nothing leaks.

import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { DYNAMO_MAX_ATTEMPTS } from '../../lambdas/adapters/aws-clients.ts';
import { withItemTurns } from '../../lambdas/adapters/dynamo/item-turns.ts';
import { DynamoLimitsModel } from '../../lambdas/adapters/dynamo-limits.ts';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { accountShardCaps } from '../../lambdas/core/account-shards.ts';
import { jobIdFor } from '../../lambdas/core/model.ts';
import type { AccountLimits, QueuedJob } from '../../lambdas/core/ports.ts';
import { LOCAL_AWS } from '../../tools/local/emulators.ts';
import { mulberry32 } from '../../tools/twilio-simulator/simulator.ts';
import { type TestAws, testAws } from '../support/aws.ts';
import { accountItems } from '../support/runs.ts';

const AT = '2026-11-30T09:00:00.000Z';
let aws: TestAws;

beforeAll(async () => {
  aws = await testAws();
});

function client(): DynamoDBClient {
  return new DynamoDBClient({ ...LOCAL_AWS, endpoint: aws.dynamoEndpoint, maxAttempts: DYNAMO_MAX_ATTEMPTS });
}

async function newRun(store: DynamoRunStore, leads: number, concurrency: number, prefix: string) {
  const runId = randomUUID();
  await store.createRun({
    runId,
    createdAt: AT,
    concurrency,
    totalLeads: leads,
    chunkCount: Math.ceil(leads / 90),
  });
  const jobs = Array.from({ length: leads }, (_, i) => ({
    jobId: jobIdFor(i),
    // Valid Israeli mobile numbers, one per lead.
    phone: `${prefix}${String(1_000_000 + i).slice(1)}`,
    attributes: {},
  }));
  for (let chunk = 0; chunk * 90 < leads; chunk++)
    await store.ingestChunk(runId, chunk, jobs.slice(chunk * 90, chunk * 90 + 90), AT);
  return runId;
}

/** Observed from outside the store: slots held by its answers (acquired, not yet released). */
class Observer {
  held = new Map<string, number>();
  maxHeld = new Map<string, number>();
  total = 0;
  maxTotal = 0;
  taken = new Map<string, number>();
  acquired(runId: string, jobId: string) {
    const n = (this.held.get(runId) ?? 0) + 1;
    this.held.set(runId, n);
    this.maxHeld.set(runId, Math.max(this.maxHeld.get(runId) ?? 0, n));
    this.total += 1;
    this.maxTotal = Math.max(this.maxTotal, this.total);
    const key = `${runId}#${jobId}`;
    this.taken.set(key, (this.taken.get(key) ?? 0) + 1);
  }
  released(runId: string) {
    this.held.set(runId, this.held.get(runId)! - 1);
    this.total -= 1;
  }
}

/**
 * `dispatchers` loops per run, each reading the queue and acquiring; every acquired slot is released
 * by a "webhook" after a short call, retried until the store answers (a Lambda's retry).
 */
async function race(
  store: DynamoRunStore,
  runs: string[],
  dispatchers: number,
  observer: Observer,
  account?: Omit<AccountLimits, 'nowMs'>,
) {
  const random = mulberry32(11);
  const webhooks: Promise<void>[] = [];
  const release = async (runId: string, job: QueuedJob) => {
    await new Promise((resolve) => setTimeout(resolve, 5 + random() * 40));
    // The observer lets go first: the slot is free from the moment the release may apply.
    observer.released(runId);
    for (;;) {
      try {
        const result = await store.releaseSlot({
          runId,
          jobId: job.jobId,
          attempt: job.attempt + 1,
          from: 'dialing',
          to: 'completed',
          outcome: 'completed',
          at: AT,
        });
        expect(result).toBe('released');
        return;
      } catch (error) {
        // Conflicts past the store's retry budget: the webhook's invocation fails and is retried.
        if (!(error instanceof Error) || !/Transaction|Throughput|Throttl/.test(error.name)) throw error;
      }
    }
  };
  await Promise.all(
    runs.flatMap((runId) =>
      Array.from({ length: dispatchers }, async () => {
        for (let idle = 0; idle < 200; ) {
          const candidates = await store.nextQueuedJobs(runId, 4);
          const run = await store.getRun(runId);
          if (candidates.length === 0 && run!.queued === 0) return;
          let progress = false;
          for (const job of candidates) {
            let result: string;
            try {
              result = await store.acquireSlot(
                runId,
                job,
                AT,
                account ? { ...account, nowMs: Date.now() } : undefined,
              );
            } catch (error) {
              if (!(error instanceof Error) || !/Transaction|Throughput|Throttl/.test(error.name))
                throw error;
              continue;
            }
            if (result === 'acquired') {
              observer.acquired(runId, job.jobId);
              webhooks.push(release(runId, job));
              progress = true;
            }
          }
          idle = progress ? 0 : idle + 1;
          if (!progress) await new Promise((resolve) => setTimeout(resolve, 10));
        }
        throw new Error(`dispatcher of ${runId} made no progress`);
      }),
    ),
  );
  await Promise.all(webhooks);
}

describe('under the DynamoDB limits model', () => {
  it('many dispatchers and webhooks on one cap-30 run: cap held, every lead once, conflicts retried, counters at zero', async () => {
    const model = new DynamoLimitsModel();
    const store = new DynamoRunStore(model.install(client()), { tableName: aws.tableName });
    const runId = await newRun(store, 90, 30, '+97252');
    const observer = new Observer();
    await race(store, [runId], 8, observer);

    expect(observer.maxHeld.get(runId)).toBeLessThanOrEqual(30);
    expect(observer.taken.size).toBe(90);
    expect([...observer.taken.values()].every((n) => n === 1)).toBe(true);
    expect(model.report.conflicts).toBeGreaterThan(0);
    const run = await store.getRun(runId);
    expect(run).toMatchObject({ active: 0, queued: 0, completed: 90, holders: {} });
  });

  it('runs racing under an account cap over shard counters: the account cap held, shards back at zero', async () => {
    const model = new DynamoLimitsModel();
    const accountName = `limits-${randomUUID().slice(0, 8)}`;
    const store = new DynamoRunStore(model.install(client()), { tableName: aws.tableName, accountName });
    const ACCOUNT_CAP = 60; // two shards of 30
    expect(accountShardCaps(ACCOUNT_CAP)).toEqual([30, 30]);
    const runs = await Promise.all([0, 1, 2].map((r) => newRun(store, 40, 30, `+9725${r + 3}`)));
    const observer = new Observer();
    await race(store, runs, 4, observer, { maxConcurrentCalls: ACCOUNT_CAP });

    expect(observer.maxTotal).toBeLessThanOrEqual(ACCOUNT_CAP);
    for (const runId of runs) expect(observer.maxHeld.get(runId)).toBeLessThanOrEqual(30);
    expect(observer.taken.size).toBe(120);
    expect([...observer.taken.values()].every((n) => n === 1)).toBe(true);
    expect(model.report.conflicts).toBeGreaterThan(0);
    for (const runId of runs)
      expect(await store.getRun(runId)).toMatchObject({ active: 0, completed: 40, holders: {} });
    const account = await accountItems(aws.dynamo, aws.tableName, accountName);
    expect(account.active).toBe(0);
    expect(account.shards.size).toBe(2);
  });

  it('throttles a partition key written past its write rate; the store backs off and retries', async () => {
    // The model's clock moves only when the store backs off (a second per backoff), so what is
    // throttled does not depend on this machine's speed.
    let clock = 0;
    const model = new DynamoLimitsModel({ writeUnitsPerSecond: 100, now: () => clock });
    const store = new DynamoRunStore(model.install(client()), {
      tableName: aws.tableName,
      sleep: async () => {
        clock += 1000;
      },
    });
    const runId = await newRun(store, 30, 30, '+97254');
    const jobs = await store.nextQueuedJobs(runId, 30);
    // 30 acquires, each 2 units on the run item and 2 on the job (one partition key, the run's) in a
    // transaction: 120 units at once against a (lowered) rate of 100 a second: some are throttled,
    // retried with backoff, and all of them get through.
    // One after another: conflicts are the other tests' subject; here only the rate is.
    const results: string[] = [];
    for (const job of jobs) results.push(await store.acquireSlot(runId, job, AT));
    expect(results.filter((r) => r === 'acquired')).toHaveLength(30);
    expect(model.report.writeThrottles).toBeGreaterThan(0);
    expect((await store.getRun(runId))?.active).toBe(30);
  });
});

describe('the conflict window', () => {
  it('a transaction holds its items for the window only, however long DynamoDB Local takes to answer it', async () => {
    // The model's clock moves only when the store backs off (30 ms a backoff).
    let clock = 0;
    const model = new DynamoLimitsModel({ conflictWindowMs: 25, now: () => clock });
    // A client whose requests wait at a gate until the test opens it: its transaction stays in flight.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const slowClient = model.install(client());
    const handler = slowClient.config.requestHandler as { handle: (...args: unknown[]) => Promise<unknown> };
    const handle = handler.handle.bind(handler);
    handler.handle = async (...args) => {
      const target = (args[0] as { headers: Record<string, string> }).headers['x-amz-target'] ?? '';
      if (target.endsWith('TransactWriteItems')) await gate;
      return handle(...args);
    };
    const slow = new DynamoRunStore(slowClient, { tableName: aws.tableName });
    const fast = new DynamoRunStore(model.install(client()), {
      tableName: aws.tableName,
      sleep: async () => {
        clock += 30;
      },
    });
    const runId = await newRun(fast, 4, 4, '+97255');
    const [first, second] = await fast.nextQueuedJobs(runId, 2);
    const sent = () => model.report.requestsByCommand.get('TransactWriteItemsCommand') ?? 0;
    await slow.getRunRecord(runId); // its cap known, the held acquire is its transaction alone
    const before = sent();
    const held = slow.acquireSlot(runId, first!, AT);
    while (sent() === before) await new Promise((resolve) => setTimeout(resolve, 1));

    // The held acquire is in flight on the run item: within the window the other one conflicts;
    // once its backoff has moved the clock past the window, it goes through.
    expect(await fast.acquireSlot(runId, second!, AT)).toBe('acquired');
    expect(model.report.conflicts).toBe(1);
    open();
    expect(await held).toBe('acquired');
    expect((await fast.getRun(runId))?.active).toBe(2);
  });
});

describe("one invocation's transactions on an item take turns", () => {
  it('refills of one batch reaching for the same account shard: side by side they conflict, in turn none does', async () => {
    const model = new DynamoLimitsModel();
    const accountName = `turns-${randomUUID().slice(0, 8)}`;
    const store = new DynamoRunStore(model.install(client()), { tableName: aws.tableName, accountName });
    const account = { maxConcurrentCalls: 100, nowMs: Date.parse(AT) }; // two shards of 50
    /** Eight runs of one lead each, every lead a refill hinted to shard 0 (the shard its release freed). */
    const refills = async (prefix: string) =>
      Promise.all(
        Array.from({ length: 8 }, async (_, r) => {
          const runId = await newRun(store, 1, 1, `${prefix}${r}`);
          const [job] = await store.nextQueuedJobs(runId, 1);
          return { runId, job: { ...job!, accountShard: 0 } };
        }),
      );
    const acquireAll = (batch: Awaited<ReturnType<typeof refills>>) =>
      Promise.all(batch.map(({ runId, job }) => store.acquireSlot(runId, job, AT, account)));

    // Side by side, as a batch's records were before: the shard item takes one at a time.
    const apart = await refills('+97254');
    const conflictsBefore = model.report.conflicts;
    expect(await acquireAll(apart)).toEqual(Array(8).fill('acquired'));
    expect(model.report.conflicts).toBeGreaterThan(conflictsBefore);

    // Within one invocation's turns: the same eight acquires, not one conflict.
    const inTurn = await refills('+97258');
    const conflictsBetween = model.report.conflicts;
    expect(await withItemTurns(() => acquireAll(inTurn))).toEqual(Array(8).fill('acquired'));
    expect(model.report.conflicts).toBe(conflictsBetween);
    const shards = (await accountItems(aws.dynamo, aws.tableName, accountName)).shards;
    expect(shards.get(0)).toBe(16);
  });
});

describe('an answer lost after the write succeeded', () => {
  /** A client whose answer to the first request `lose` picks is dropped after DynamoDB Local applied it. */
  function losing(lose: (command: string, input: Record<string, unknown>) => boolean) {
    const dynamo = client();
    const lost: string[] = [];
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        const command = context.commandName ?? '';
        if (lose(command, args.input as Record<string, unknown>)) {
          lost.push(command);
          const error = new Error('socket hang up after the request was sent');
          error.name = 'TimeoutError';
          throw error;
        }
        return result;
      },
      { step: 'initialize', name: 'loseAnswers' },
    );
    return { dynamo, lost };
  }

  it('acquire, release and reserving leads: applied once, answered as done', async () => {
    let armed = new Set(['TransactWriteItemsCommand', 'UpdateItemCommand']);
    const { dynamo, lost } = losing((command, input) => {
      const slotOrReserve =
        command === 'TransactWriteItemsCommand' ||
        (command === 'UpdateItemCommand' && String(input.UpdateExpression).includes('reservationId'));
      if (!slotOrReserve || !armed.has(command)) return false;
      armed.delete(command);
      return true;
    });
    const store = new DynamoRunStore(dynamo, { tableName: aws.tableName });
    const setup = new DynamoRunStore(client(), { tableName: aws.tableName });
    const runId = await newRun(setup, 4, 2, '+97255');
    const [first, second] = await setup.nextQueuedJobs(runId, 2);

    // The acquire's answer is lost: the retry (same ClientRequestToken) is answered as done.
    expect(await store.acquireSlot(runId, first!, AT)).toBe('acquired');
    expect(lost).toEqual(['TransactWriteItemsCommand']);
    expect(await setup.getRun(runId)).toMatchObject({ active: 1, queued: 3 });
    expect(await setup.getJob(runId, first!.jobId)).toMatchObject({ status: 'dialing', attempt: 1 });

    // The refill: another slot is taken, the first is released with its answer lost.
    expect(await setup.acquireSlot(runId, second!, AT)).toBe('acquired');
    armed = new Set(['TransactWriteItemsCommand', 'UpdateItemCommand']);
    const release = {
      runId,
      jobId: first!.jobId,
      attempt: 1,
      from: 'dialing',
      to: 'completed',
      at: AT,
    } as const;
    expect(await store.releaseSlot({ ...release, outcome: 'completed', accountShard: null })).toBe(
      'released',
    );
    expect(lost).toEqual(['TransactWriteItemsCommand', 'TransactWriteItemsCommand']);
    expect(await setup.getRun(runId)).toMatchObject({ active: 1, completed: 1, queued: 2 });
    expect(await setup.releaseSlot(release)).toBe('stale');

    // Appended leads: the reservation's answer is lost; its retry finds it made, and says where it starts.
    const reserved = await store.reserveLeads(runId, { leads: 5, chunks: 1, maxLeads: 100 });
    expect(lost.at(-1)).toBe('UpdateItemCommand');
    expect(reserved).toEqual({ kind: 'reserved', firstIndex: 4, firstChunk: 1 });
    expect(await setup.getRun(runId)).toMatchObject({ totalLeads: 9, chunkCount: 2 });
    expect(await setup.reserveLeads(runId, { leads: 1, chunks: 1, maxLeads: 100 })).toEqual({
      kind: 'reserved',
      firstIndex: 9,
      firstChunk: 2,
    });
  });
});
