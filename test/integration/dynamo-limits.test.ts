// DynamoDB's limits, which DynamoDB Local does not enforce, put in front of it by the limits model
// (lambdas/adapters/dynamo-limits.ts): transactions that overlap on an item are cancelled with
// TransactionConflict, a partition written past its rate is throttled. Many dispatchers and webhooks
// race on one high-cap run, and on several runs under an account cap split over shard counters; the
// test itself observes how many slots are held at any moment (from the store's answers, outside the
// store), and every lead must be taken once, every conflict retried, every counter back at zero.
// And answers lost after a write succeeded (acquire, release, reserving appended leads): the retry
// is recognised as the same request, so nothing is applied twice and nothing leaks.

import { randomUUID } from 'node:crypto';
import { DynamoDBClient, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { DYNAMO_MAX_ATTEMPTS } from '../../lambdas/adapters/aws-clients.ts';
import { withItemTurns } from '../../lambdas/adapters/dynamo/item-turns.ts';
import { DynamoLimitsModel } from '../../lambdas/adapters/dynamo-limits.ts';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { accountShardCaps, FENCE, layoutRange } from '../../lambdas/core/account-shards.ts';
import { jobIdFor } from '../../lambdas/core/model.ts';
import type { AccountLimits, CarriedSlot, QueuedJob } from '../../lambdas/core/ports.ts';
import { keys } from '../../lambdas/definitions/table-schema.ts';
import { createTable, LOCAL_AWS } from '../../tools/local/emulators.ts';
import { mulberry32 } from '../../tools/twilio-simulator/simulator.ts';
import { type TestAws, testAws } from '../support/aws.ts';
import { accountItems, runCounters } from '../support/runs.ts';

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
 * A completed call's release, as a webhook makes it: retried until the store answers, which must be
 * "released". `carry`: its slot (the run's and the account's) kept on the job for the next acquire
 * (CarriedSlot).
 */
async function releaseCompleted(store: DynamoRunStore, runId: string, job: QueuedJob, carry = false) {
  for (;;) {
    try {
      const result = await store.releaseSlot({
        runId,
        jobId: job.jobId,
        attempt: job.attempt + 1,
        from: 'dialing',
        to: 'completed',
        outcome: 'completed',
        ...(carry
          ? { carry: true, accountShard: job.accountShard ?? null, slotShard: job.slotShard ?? null }
          : {}),
        at: AT,
      });
      expect(result).toBe('released');
      return;
    } catch (error) {
      // Conflicts past the store's retry budget: the webhook's invocation fails and is retried.
      if (!(error instanceof Error) || !/Transaction|Throughput|Throttl/.test(error.name)) throw error;
    }
  }
}

/** A carried slot dropped, retried as a Lambda's invocation is until the store answers. */
async function dropCarry(store: DynamoRunStore, carry: CarriedSlot): Promise<'dropped' | 'gone'> {
  for (;;) {
    try {
      return await store.dropCarry(carry);
    } catch (error) {
      if (!(error instanceof Error) || !/Transaction|Throughput|Throttl/.test(error.name)) throw error;
    }
  }
}

/**
 * `dispatchers` loops per run, each reading the queue and acquiring; every acquired slot is released
 * by a "webhook" after a short call (`callMs`, from and to), retried until the store answers (a
 * Lambda's retry).
 */
async function race(
  store: DynamoRunStore,
  runs: string[],
  dispatchers: number,
  observer: Observer,
  account?: Omit<AccountLimits, 'nowMs'>,
  callMs: [number, number] = [5, 45],
  carried?: CarriedSlot[],
) {
  const random = mulberry32(11);
  const webhooks: Promise<void>[] = [];
  const release = async (runId: string, job: QueuedJob) => {
    await new Promise((resolve) => setTimeout(resolve, callMs[0] + random() * (callMs[1] - callMs[0])));
    // The observer lets go first: the slot is free from the moment the release may apply.
    observer.released(runId);
    await releaseCompleted(store, runId, job, carried !== undefined);
    // Handed to whichever dispatcher reaches for it first, of any run, and to a second one as well
    // (a dispatch delivered twice): both reach for it, one takes it.
    if (carried) {
      const carry: CarriedSlot = {
        runId,
        jobId: job.jobId,
        attempt: job.attempt + 1,
        ...(job.accountShard === undefined ? {} : { shard: job.accountShard }),
        runSlot: { counter: job.slotShard ?? null, to: 'completed', outcome: 'completed' },
      };
      carried.push(carry, carry);
    }
  };
  await Promise.all(
    runs.flatMap((runId) =>
      Array.from({ length: dispatchers }, async () => {
        // A dispatcher with no slot for 20 s is stuck (a run waiting for old calls to end waits seconds).
        for (let lastProgress = Date.now(); Date.now() - lastProgress < 20_000; ) {
          const candidates = await store.nextQueuedJobs(runId, 4);
          const run = await store.getRun(runId);
          if (candidates.length === 0 && run!.queued === 0) return;
          let progress = false;
          for (const job of candidates) {
            let result: string;
            const carry = carried?.shift();
            const taking = carry ? { ...job, carried: carry } : job;
            try {
              result = await store.acquireSlot(
                runId,
                taking,
                AT,
                account ? { ...account, nowMs: Date.now() } : undefined,
              );
            } catch (error) {
              if (!(error instanceof Error) || !/Transaction|Throughput|Throttl/.test(error.name))
                throw error;
              result = 'failed';
            }
            // Not taken with it (the job was, the run is full, the store gave up): back on its shard,
            // as a dispatch that cannot use its carried slot drops it before it fills from the shards.
            if (carry && result !== 'acquired') await dropCarry(store, carry);
            if (result === 'acquired') {
              observer.acquired(runId, job.jobId);
              webhooks.push(release(runId, taking));
              progress = true;
            }
          }
          if (progress) lastProgress = Date.now();
          else await new Promise((resolve) => setTimeout(resolve, 10));
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

  it('one run over slot counters, its releases carrying their slots to its acquires, each handed twice: cap held, each lead once, counters at zero', async () => {
    const model = new DynamoLimitsModel();
    // Counters of 3 slots: a cap of 12 is split over four; calls long enough that 8 dispatchers keep
    // it full on a busy machine.
    const store = new DynamoRunStore(model.install(client()), {
      tableName: aws.tableName,
      runSlotShardSize: 3,
    });
    const runId = await newRun(store, 36, 12, '+97256');
    const observer = new Observer();
    const carried: CarriedSlot[] = [];
    await race(store, [runId], 8, observer, undefined, [1_500, 2_500], carried);
    const dropped = await Promise.all(carried.map((carry) => dropCarry(store, carry)));

    expect(observer.maxHeld.get(runId)).toBeLessThanOrEqual(12);
    expect(observer.maxHeld.get(runId)).toBeGreaterThanOrEqual(9);
    expect(observer.taken.size).toBe(36);
    expect([...observer.taken.values()].every((n) => n === 1)).toBe(true);
    expect(dropped.filter((d) => d === 'dropped').length).toBeLessThanOrEqual(12);
    expect(model.report.conflicts).toBeGreaterThan(0);
    expect(await store.getRun(runId)).toMatchObject({
      active: 0,
      queued: 0,
      completed: 36,
      outcomes: { completed: 36 },
      holders: {},
    });
    expect(await store.carriedSlots(runId, true)).toEqual([]);
    const counters = await runCounters(aws.dynamo, aws.tableName, runId);
    expect(counters).toHaveLength(4);
    expect(counters.every((active) => active === 0)).toBe(true);
  });

  it('runs racing under an account cap over shard counters: the account cap held, shards back at zero', async () => {
    const model = new DynamoLimitsModel();
    const accountName = `limits-${randomUUID().slice(0, 8)}`;
    const store = new DynamoRunStore(model.install(client()), { tableName: aws.tableName, accountName });
    const ACCOUNT_CAP = 60; // six shards of 10
    expect(accountShardCaps(ACCOUNT_CAP)).toEqual(Array(6).fill(10));
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
    // Every shard that took a call is back at zero, and none but the account's six took any.
    expect([...account.shards.values()].every((active) => active === 0)).toBe(true);
    expect(account.shards.size).toBeGreaterThan(1);
    expect(account.shards.size).toBeLessThanOrEqual(6);
  });

  it('releases that carry their slots to acquires of any run, each handed twice: every cap held, each slot taken once, counters and shards back at zero', async () => {
    const model = new DynamoLimitsModel();
    const accountName = `carry-${randomUUID().slice(0, 8)}`;
    const store = new DynamoRunStore(model.install(client()), { tableName: aws.tableName, accountName });
    const ACCOUNT_CAP = 12; // shards of 10 and 2: the runs' caps (24 together) pass it
    const runs = await Promise.all([0, 1, 2].map((r) => newRun(store, 40, 8, `+9725${r + 3}`)));
    const observer = new Observer();
    const carried: CarriedSlot[] = [];
    // Calls long enough for the account to fill: its slots are what the carries hand on.
    await race(store, runs, 3, observer, { maxConcurrentCalls: ACCOUNT_CAP }, [200, 400], carried);
    // What no acquire reached for goes back to its shard (a carry taken already, or dropped, is `gone`).
    const dropped = await Promise.all(carried.map((carry) => dropCarry(store, carry)));

    expect(observer.maxTotal).toBeLessThanOrEqual(ACCOUNT_CAP);
    expect(observer.maxTotal).toBeGreaterThan(ACCOUNT_CAP / 2);
    for (const runId of runs) expect(observer.maxHeld.get(runId)).toBeLessThanOrEqual(8);
    expect(observer.taken.size).toBe(120);
    expect([...observer.taken.values()].every((n) => n === 1)).toBe(true);
    // The last releases' carries, at most one a slot; every other was taken or dropped once.
    expect(dropped.filter((d) => d === 'dropped').length).toBeLessThanOrEqual(ACCOUNT_CAP);
    expect(model.report.conflicts).toBeGreaterThan(0);
    for (const runId of runs) {
      expect(await store.getRun(runId)).toMatchObject({ active: 0, completed: 40, holders: {} });
      expect(await store.carriedSlots(runId, true)).toEqual([]);
    }
    const account = await accountItems(aws.dynamo, aws.tableName, accountName);
    expect([...account.shards.values()].every((active) => active === 0)).toBe(true);
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
    const account = { maxConcurrentCalls: 100, nowMs: Date.parse(AT) }; // ten shards of 10
    const { base } = layoutRange(1, 100); // a new account's first layout
    /** Eight runs of one lead each, every lead a refill hinted to one shard (the shard its release freed). */
    const refills = async (prefix: string, shard: number) =>
      Promise.all(
        Array.from({ length: 8 }, async (_, r) => {
          const runId = await newRun(store, 1, 1, `${prefix}${r}`);
          const [job] = await store.nextQueuedJobs(runId, 1);
          return { runId, job: { ...job!, accountShard: shard } };
        }),
      );
    const acquireAll = (batch: Awaited<ReturnType<typeof refills>>) =>
      Promise.all(batch.map(({ runId, job }) => store.acquireSlot(runId, job, AT, account)));

    // Side by side, as a batch's records were before: the shard item takes one at a time.
    const apart = await refills('+97254', base);
    const conflictsBefore = model.report.conflicts;
    expect(await acquireAll(apart)).toEqual(Array(8).fill('acquired'));
    expect(model.report.conflicts).toBeGreaterThan(conflictsBefore);

    // Within one invocation's turns: the same eight acquires, not one conflict.
    const inTurn = await refills('+97258', base + 1);
    const conflictsBetween = model.report.conflicts;
    expect(await withItemTurns(() => acquireAll(inTurn))).toEqual(Array(8).fill('acquired'));
    expect(model.report.conflicts).toBe(conflictsBetween);
    const shards = (await accountItems(aws.dynamo, aws.tableName, accountName)).shards;
    expect(shards.get(base)).toBe(8);
    expect(shards.get(base + 1)).toBe(8);
  });
});

/**
 * Code from before the account's layouts were recorded, as it took or freed an account slot: its
 * shard item's share of the acquire (under the shard's cap) or the release (never below zero).
 */
async function oldCodeShardWrite(
  tableName: string,
  name: string,
  shard: number,
  change: 'acquire' | 'release',
  cap = 30,
) {
  const key = keys.accountShard(name, shard);
  try {
    await aws.dynamo.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: { pk: { S: key.pk }, sk: { S: key.sk } },
        ...(change === 'acquire'
          ? {
              UpdateExpression: 'SET active = if_not_exists(active, :zero) + :one',
              ConditionExpression: 'attribute_not_exists(active) OR active <= :room',
              ExpressionAttributeValues: {
                ':zero': { N: '0' },
                ':one': { N: '1' },
                ':room': { N: String(cap - 1) },
              },
            }
          : {
              UpdateExpression: 'SET active = active - :one',
              ConditionExpression: 'active > :zero',
              ExpressionAttributeValues: { ':zero': { N: '0' }, ':one': { N: '1' } },
            }),
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return false;
    throw error;
  }
}

async function layoutRecord(tableName: string, name: string) {
  const key = keys.accountLayout(name);
  const { Item } = await aws.dynamo.send(
    new GetItemCommand({
      TableName: tableName,
      Key: { pk: { S: key.pk }, sk: { S: key.sk } },
      ConsistentRead: true,
    }),
  );
  return Item ? unmarshall(Item) : undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The observer, also noting when the first slot of the new deploy was taken and the most held then. */
class DeployObserver extends Observer {
  firstNewAt: number | undefined;
  maxTotalAtNew = 0;
  constructor(private readonly isOld: (runId: string) => boolean) {
    super();
  }
  override acquired(runId: string, jobId: string) {
    super.acquired(runId, jobId);
    if (this.isOld(runId)) return;
    this.firstNewAt ??= Date.now();
    this.maxTotalAtNew = Math.max(this.maxTotalAtNew, this.total);
  }
}

describe("a deploy that changes the account's layout under live calls", () => {
  it('onto shards of 50 from before layouts were recorded: their calls counted, their code refused once fenced, the cap held', async () => {
    // A table of the version before: no layout recorded, and none known not to be there.
    const tableName = `dialgate-before-${randomUUID().slice(0, 8)}`;
    await createTable(aws.dynamoEndpoint, tableName, { fromBefore: true });
    const model = new DynamoLimitsModel();
    const name = `deploy-${randomUUID().slice(0, 8)}`;
    const CAP = 30; // the old layout: one shard of 30 (shard 0); the new one: three of 10
    const observer = new DeployObserver((runId) => runId === 'old');
    // Before the deploy: 25 calls live, taken by the old code.
    for (let i = 0; i < 25; i++) {
      expect(await oldCodeShardWrite(tableName, name, 0, 'acquire')).toBe(true);
      observer.acquired('old', `before-${i}`);
    }
    const store = new DynamoRunStore(model.install(client()), { tableName, accountName: name });
    const runs = await Promise.all(['+972541', '+972542'].map((prefix) => newRun(store, 30, 15, prefix)));

    let done = false;
    const lateOld = { tried: 0, took: 0 };
    const random = mulberry32(5);
    const oldEnds = async () => {
      await sleep(3000 + random() * 3000);
      observer.released('old');
      expect(await oldCodeShardWrite(tableName, name, 0, 'release')).toBe(true);
    };
    // A container of the old code, still running: it keeps reaching for the old shards.
    const oldCode = async () => {
      const ends: Promise<void>[] = [];
      for (let n = 0; !done; n++) {
        const startedAfterNew = observer.firstNewAt !== undefined;
        if (await oldCodeShardWrite(tableName, name, 0, 'acquire')) {
          observer.acquired('old', `late-${n}`);
          if (startedAfterNew) lateOld.took += 1;
          ends.push(oldEnds());
        } else if (startedAfterNew) lateOld.tried += 1;
        await sleep(20);
      }
      await Promise.all(ends);
    };
    await Promise.all([
      // Calls long enough for the new deploy to fill what room it has while the old calls are live.
      race(store, runs, 3, observer, { maxConcurrentCalls: CAP }, [2000, 3000]).finally(() => {
        done = true;
      }),
      ...Array.from({ length: 25 }, oldEnds),
      oldCode(),
    ]);

    expect(observer.maxTotal).toBeLessThanOrEqual(CAP);
    // Once the new deploy had taken a slot, the old code took none (and it did try).
    expect(lateOld.took).toBe(0);
    expect(lateOld.tried).toBeGreaterThan(0);
    // The new deploy filled the room the old calls left it.
    expect(observer.maxTotalAtNew).toBeGreaterThan(20);
    // Every lead of the new deploy's runs taken once.
    const leads = [...observer.taken].filter(([key]) => !key.startsWith('old#'));
    expect(leads).toHaveLength(60);
    expect(leads.every(([, n]) => n === 1)).toBe(true);
    for (const runId of runs) expect(await store.getRun(runId)).toMatchObject({ active: 0, completed: 30 });
    const account = await accountItems(aws.dynamo, tableName, name);
    expect(account.fenced).toBe(0);
    expect([...account.shards.values()].every((active) => active === 0)).toBe(true);
    // The old layout's shards were fenced; the record names the new one, and, the old calls all
    // ended, no layout left to drain once a container reads it again.
    const oldShard = keys.accountShard(name, 0);
    const fenced = await aws.dynamo.send(
      new GetItemCommand({ TableName: tableName, Key: { pk: { S: oldShard.pk }, sk: { S: oldShard.sk } } }),
    );
    expect(Number(fenced.Item?.fence?.N)).toBe(FENCE);
    await sleep(2100);
    await store.acquireSlots(runs[0]!, 30, [], AT, { maxConcurrentCalls: CAP });
    expect(await layoutRecord(tableName, name)).toMatchObject({
      gen: 1,
      max: CAP,
      shardSize: 10,
      draining: [],
    });
  });

  it('a lowered account cap: the calls on the layout before count against it, and a container of the deploy before takes no slot', async () => {
    const name = `lowered-${randomUUID().slice(0, 8)}`;
    // A container of the deploy before (account cap 60) holds 50 calls.
    const before = new DynamoRunStore(client(), { tableName: aws.tableName, accountName: name });
    const runA = await newRun(before, 60, 60, '+972543');
    const jobsA = await before.nextQueuedJobs(runA, 60);
    const first = await before.acquireSlots(runA, 60, jobsA.slice(0, 50), AT, { maxConcurrentCalls: 60 });
    expect(first.acquired).toHaveLength(50);
    const observer = new DeployObserver((runId) => runId === runA);
    for (const job of first.acquired) observer.acquired(runA, job.jobId);

    // The deploy lowers the cap to 30; its container's first acquire fences the layout of 60.
    const model = new DynamoLimitsModel();
    const after = new DynamoRunStore(model.install(client()), {
      tableName: aws.tableName,
      accountName: name,
    });
    const runB = await newRun(after, 40, 30, '+972544');
    const random = mulberry32(8);
    const beforeAnswers: string[] = [];
    await Promise.all([
      race(after, [runB], 3, observer, { maxConcurrentCalls: 30 }, [200, 400]),
      // The old calls end over a second and a half (released by whichever container gets the callback).
      ...first.acquired.map(async (job) => {
        await sleep(200 + random() * 1300);
        observer.released(runA);
        await releaseCompleted(after, runA, job);
      }),
      // The container of the deploy before, still running, reaches for more of its run's leads.
      (async () => {
        while (observer.firstNewAt === undefined) await sleep(20);
        for (const job of jobsA.slice(50)) {
          beforeAnswers.push(
            await before.acquireSlot(runA, job, AT, { maxConcurrentCalls: 60, nowMs: Date.now() }),
          );
          await sleep(50);
        }
      })(),
    ]);

    // While the old calls were live, the new deploy took slots only under the new cap with them.
    expect(observer.maxTotalAtNew).toBeLessThanOrEqual(30);
    expect(observer.maxTotal).toBeLessThanOrEqual(60);
    expect(beforeAnswers).toEqual(Array(10).fill('account-full'));
    // It did not fence the new layout back: the record is the new deploy's.
    expect(await layoutRecord(aws.tableName, name)).toMatchObject({ gen: 2, max: 30 });
    const leads = [...observer.taken].filter(([key]) => key.startsWith(`${runB}#`));
    expect(leads).toHaveLength(40);
    const account = await accountItems(aws.dynamo, aws.tableName, name);
    expect(account.active).toBe(0);
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
