// Ingesting a lead chunk on DynamoDB Local through the real adapter: the owner of a chunk writes its
// jobs with unconditional BatchWriteItem, so every other path — a redelivery, a concurrent delivery,
// a takeover after a crash, a batch that failed — must leave each job written once, never reset a
// job a dispatcher already took (that would call the lead twice), and count the chunk exactly once.
// Faults are injected into the real SDK client, inside its retry loop, as the network would.

import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DYNAMO_MAX_ATTEMPTS } from '../../lambdas/adapters/aws-clients.ts';
import { CHUNK_TAKEOVER_MS, ChunkBusyError } from '../../lambdas/adapters/dynamo/ingest.ts';
import { DynamoRunStore, type DynamoRunStoreOptions } from '../../lambdas/adapters/dynamo-run-store.ts';
import { jobIdFor, type NewJob, toRunView } from '../../lambdas/core/model.ts';
import { keys } from '../../lambdas/definitions/table-schema.ts';
import { LOCAL_AWS } from '../../tools/local/emulators.ts';
import { type TestAws, testAws } from '../support/aws.ts';

const AT = '2026-11-28T00:00:00.000Z';
/** Settling time after a batch of unknown outcome, shortened for tests (and recognisable in `sleep`). */
const SETTLE_MS = 37;

let aws: TestAws;
let doc: DynamoDBDocumentClient;

beforeAll(async () => {
  aws = await testAws();
  doc = DynamoDBDocumentClient.from(aws.dynamo);
});

type Kind = 'claim' | 'takeover' | 'batch' | 'put' | 'finish' | 'abandon' | 'other';
/** `before`: the request fails without reaching DynamoDB; `after`: it is applied, its answer lost. */
type Fault = 'before' | 'after';

/**
 * A DynamoDB client whose ingest requests can be failed by kind, and which records every request
 * that reached DynamoDB (each SDK attempt counts) and can run a step right after one landed.
 */
class Tapped {
  readonly client: DynamoDBClient;
  readonly reached: Kind[] = [];
  fail: Partial<Record<Kind, Fault>> = {};
  /** Fail only the nth request of the kind (0-based); every one when unset. */
  failNth: Partial<Record<Kind, number>> = {};
  onLanded: ((kind: Kind) => Promise<void>) | undefined;
  onSending: ((kind: Kind) => Promise<void>) | undefined;
  readonly #seen: Partial<Record<Kind, number>> = {};

  constructor(maxAttempts = 2) {
    this.client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: aws.dynamoEndpoint, maxAttempts });
    this.client.middlewareStack.add(
      (next, context) => async (args) => {
        const kind = kindOf(context.commandName ?? '', args.input as Record<string, unknown>);
        const nth = this.#seen[kind] ?? 0;
        this.#seen[kind] = nth + 1;
        const fault =
          this.failNth[kind] === undefined || this.failNth[kind] === nth ? this.fail[kind] : undefined;
        if (fault === 'before') throw serverError(kind);
        await this.onSending?.(kind);
        this.reached.push(kind);
        const result = await next(args);
        if (fault === 'after') throw serverError(kind);
        await this.onLanded?.(kind);
        return result;
      },
      // Inside the SDK's retry middleware: every attempt passes here.
      { step: 'deserialize', name: 'testTap' },
    );
  }

  count(kind: Kind): number {
    return this.reached.filter((k) => k === kind).length;
  }
}

function kindOf(command: string, input: Record<string, unknown>): Kind {
  const sk = (key: unknown) => {
    const value = (key as { sk?: unknown } | undefined)?.sk;
    return String((value as { S?: string } | undefined)?.S ?? value ?? '');
  };
  if (command === 'BatchWriteItemCommand') return 'batch';
  if (command === 'PutItemCommand') return sk(input.Item).startsWith('JOB#') ? 'put' : 'claim';
  if (command === 'UpdateItemCommand' && sk(input.Key).startsWith('CHUNK#')) {
    return String(input.UpdateExpression).includes(':abandoned') ? 'abandon' : 'takeover';
  }
  if (command === 'TransactWriteItemsCommand') {
    const first = (input.TransactItems as { Update?: { Key?: unknown } }[] | undefined)?.[0];
    if (sk(first?.Update?.Key).startsWith('CHUNK#')) return 'finish';
  }
  return 'other';
}

function serverError(kind: Kind): Error {
  return Object.assign(new Error(`injected: ${kind} failed`), {
    name: 'InternalServerError',
    $fault: 'server',
    $metadata: { httpStatusCode: 500 },
  });
}

function storeWith(client: DynamoDBClient, options: Partial<DynamoRunStoreOptions> = {}): DynamoRunStore {
  return new DynamoRunStore(client, {
    tableName: aws.tableName,
    ingestTiming: { unknownOutcomeSettleMs: SETTLE_MS },
    ...options,
  });
}

/** A healthy store on the test's plain client. */
function plainStore(options: Partial<DynamoRunStoreOptions> = {}): DynamoRunStore {
  return storeWith(aws.dynamo, options);
}

function leads(n: number): NewJob[] {
  return Array.from({ length: n }, (_, i) => ({
    jobId: jobIdFor(i),
    phone: `+1415555${String(1000 + i)}`,
    attributes: { i },
  }));
}

async function newRun(
  leadCount: number,
  concurrency = leadCount,
): Promise<{ runId: string; jobs: NewJob[] }> {
  const runId = randomUUID();
  await plainStore().createRun({ runId, createdAt: AT, concurrency, totalLeads: leadCount });
  return { runId, jobs: leads(leadCount) };
}

async function jobItems(runId: string): Promise<Map<string, Record<string, unknown>>> {
  const jobs = new Map<string, Record<string, unknown>>();
  let start: Record<string, unknown> | undefined;
  do {
    const page = await doc.send(
      new QueryCommand({
        TableName: aws.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :job)',
        ExpressionAttributeValues: { ':pk': keys.run(runId).pk, ':job': 'JOB#' },
        ConsistentRead: true,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of page.Items ?? []) jobs.set(String(item.jobId), item);
    start = page.LastEvaluatedKey;
  } while (start);
  return jobs;
}

async function marker(runId: string, chunk = 0): Promise<Record<string, unknown> | undefined> {
  const { Item } = await doc.send(
    new GetCommand({ TableName: aws.tableName, Key: keys.chunk(runId, chunk), ConsistentRead: true }),
  );
  return Item;
}

/** Takes the first queued job the index lists, as a dispatcher would; its id, if any was taken. */
async function acquireOne(runId: string): Promise<string | undefined> {
  const store = plainStore();
  for (const job of await store.nextQueuedJobs(runId, 5)) {
    if ((await store.acquireSlot(runId, job, AT)) === 'acquired') return job.jobId;
  }
  return undefined;
}

async function acquireJob(runId: string, job: NewJob): Promise<string> {
  expect(await plainStore().acquireSlot(runId, { ...job, attempt: 0 }, AT)).toBe('acquired');
  return job.jobId;
}

/** Every lead a job, each taken one still taken, the counters exactly those of one ingest. */
async function expectIngestedOnce(runId: string, jobs: NewJob[], taken: Iterable<string>) {
  const takenIds = new Set(taken);
  const items = await jobItems(runId);
  expect([...items.keys()].sort()).toEqual(jobs.map((j) => j.jobId).sort());
  for (const [jobId, item] of items) {
    if (takenIds.has(jobId)) expect(item).toMatchObject({ status: 'dialing', attempt: 1 });
    else expect(item).toMatchObject({ status: 'queued', attempt: 0 });
  }
  const run = await plainStore().getRun(runId);
  expect(run).toMatchObject({
    ingestedLeads: jobs.length,
    queued: jobs.length - takenIds.size,
    active: takenIds.size,
  });
  expect(await marker(runId)).toMatchObject({ state: 'done' });
}

describe('ingesting a chunk', () => {
  it('counts a chunk delivered twice once, and leaves a job taken in between as it is', async () => {
    const { runId, jobs } = await newRun(90);
    const tap = new Tapped();
    const store = storeWith(tap.client);
    expect(await store.ingestChunk(runId, 0, jobs, AT)).toBe('ingested');
    // The owner's path: a claim, four batches of ≤ 25, no conditional put, one finishing transaction.
    expect(tap.count('claim')).toBe(1);
    expect(tap.count('batch')).toBe(4);
    expect(tap.count('put')).toBe(0);
    expect(tap.count('finish')).toBe(1);
    const taken = await acquireOne(runId);
    expect(taken).toBeDefined();
    expect(await store.ingestChunk(runId, 0, jobs, AT)).toBe('duplicate');
    expect(tap.count('batch')).toBe(4); // the duplicate wrote nothing
    await expectIngestedOnce(runId, jobs, [taken!]);
  });

  it('counts a chunk marked by the one-transaction ingest of earlier versions as done', async () => {
    const { runId, jobs } = await newRun(3);
    // What the old ingest left: a marker with no state, written with the jobs and the counters.
    await doc.send(
      new PutCommand({
        TableName: aws.tableName,
        Item: { ...keys.chunk(runId, 0), entity: 'chunk', leads: 3, at: AT },
      }),
    );
    const tap = new Tapped();
    expect(await storeWith(tap.client).ingestChunk(runId, 0, jobs, AT)).toBe('duplicate');
    expect(tap.count('batch') + tap.count('put') + tap.count('finish')).toBe(0);
  });

  it('lets exactly one of several concurrent deliveries count the chunk; the others fail or see a duplicate', async () => {
    const { runId, jobs } = await newRun(60);
    const deliveries = await Promise.allSettled(
      Array.from({ length: 4 }, () => plainStore().ingestChunk(runId, 0, jobs, AT)),
    );
    const results = deliveries.map((d) => (d.status === 'fulfilled' ? d.value : d.reason));
    expect(results.filter((r) => r === 'ingested')).toHaveLength(1);
    for (const result of results) {
      if (result !== 'ingested' && result !== 'duplicate') expect(result).toBeInstanceOf(ChunkBusyError);
    }
    // SQS brings the failed ones back later: by then the chunk is done.
    for (const d of deliveries) {
      if (d.status === 'rejected')
        expect(await plainStore().ingestChunk(runId, 0, jobs, AT)).toBe('duplicate');
    }
    await expectIngestedOnce(runId, jobs, []);
  });

  it('an owner that fails after its claim marks the chunk abandoned, and a redelivery takes over at once', async () => {
    const { runId, jobs } = await newRun(90);
    const tap = new Tapped();
    tap.fail.finish = 'before';
    await expect(storeWith(tap.client).ingestChunk(runId, 0, jobs, AT)).rejects.toThrow(/injected: finish/);
    expect(await marker(runId)).toMatchObject({ state: 'abandoned', mode: 'queued' });
    expect(await plainStore().getRun(runId)).toMatchObject({ ingestedLeads: 0, queued: 0 });
    // Its jobs are written and visible: a dispatcher takes two before the redelivery comes.
    const taken = [await acquireOne(runId), await acquireOne(runId)];
    expect(taken.every((id) => id !== undefined)).toBe(true);
    // Counted nowhere yet and taken: `queued` is negative for now; the view shows neither below 0.
    const early = (await plainStore().getRun(runId))!;
    expect(early.queued).toBe(-2);
    expect(toRunView(early)).toMatchObject({ queued: 0, in_progress: 2, pending_ingest: 88 });

    const redelivery = new Tapped();
    expect(await storeWith(redelivery.client).ingestChunk(runId, 0, jobs, AT)).toBe('ingested');
    // A taker never batch-writes: the jobs exist, and two of them are taken.
    expect(redelivery.count('batch')).toBe(0);
    expect(redelivery.count('put')).toBe(90);
    expect(await marker(runId)).toMatchObject({ takenOver: true });
    await expectIngestedOnce(runId, jobs, taken as string[]);
  });

  it('an owner whose conditional puts fail too abandons the chunk only after its writes have settled', async () => {
    const { runId, jobs } = await newRun(90);
    const tap = new Tapped();
    tap.fail.batch = 'before';
    tap.failNth.batch = 1; // the second group's batch fails: its items go to conditional puts…
    tap.fail.put = 'before'; // …which fail as well
    await expect(storeWith(tap.client).ingestChunk(runId, 0, jobs, AT)).rejects.toThrow(/injected: put/);
    expect(await marker(runId)).toMatchObject({ state: 'abandoned' });
    // The other groups were written; a job from them is taken; the redelivery writes the rest.
    const taken = await acquireOne(runId);
    expect(await plainStore().ingestChunk(runId, 0, jobs, AT)).toBe('ingested');
    await expectIngestedOnce(runId, jobs, [taken!]);
  });

  it('a redelivery fails while a writing claim is younger than the takeover age, and takes over once it is older', async () => {
    const { runId, jobs } = await newRun(40);
    // The owner dies without a word: its finish and its abandon both fail (a crash, a lost network).
    const tap = new Tapped();
    tap.fail.finish = 'before';
    tap.fail.abandon = 'before';
    await expect(storeWith(tap.client).ingestChunk(runId, 0, jobs, AT)).rejects.toThrow(/injected/);
    expect(await marker(runId)).toMatchObject({ state: 'writing' });
    const taken = await acquireOne(runId);

    await expect(plainStore().ingestChunk(runId, 0, jobs, AT)).rejects.toBeInstanceOf(ChunkBusyError);
    const almost = () => Date.now() + CHUNK_TAKEOVER_MS - 5_000;
    await expect(plainStore({ now: almost }).ingestChunk(runId, 0, jobs, AT)).rejects.toBeInstanceOf(
      ChunkBusyError,
    );
    expect(await plainStore().getRun(runId)).toMatchObject({ ingestedLeads: 0 });

    const later = () => Date.now() + CHUNK_TAKEOVER_MS + 1_000;
    expect(await plainStore({ now: later }).ingestChunk(runId, 0, jobs, AT)).toBe('ingested');
    await expectIngestedOnce(runId, jobs, [taken!]);
  });

  it('an owner stalled past its window writes the rest conditionally, and counts nothing after a takeover', async () => {
    // 125 leads: five groups, four in flight at once; the fifth is sent after one of them returns.
    const { runId, jobs } = await newRun(125);
    let resume!: () => void;
    const stalled = new Promise<void>((resolve) => {
      resume = resolve;
    });
    let landed = 0;
    let allLanded!: () => void;
    const fourLanded = new Promise<void>((resolve) => {
      allLanded = resolve;
    });
    const tap = new Tapped();
    tap.onLanded = async (kind) => {
      if (kind !== 'batch') return;
      if (++landed === 4) allLanded();
      await stalled; // the owner freezes with its first four batches written
    };
    const windowMs = 300;
    const started = performance.now();
    const owner = storeWith(tap.client, { ingestTiming: { batchWindowMs: windowMs } }).ingestChunk(
      runId,
      0,
      jobs,
      AT,
    );
    await fourLanded;
    // Long enough for a redelivery to take over and finish, and for dispatchers to take jobs, one of
    // them in the group the owner has not written yet.
    const later = () => Date.now() + CHUNK_TAKEOVER_MS + 1_000;
    expect(await plainStore({ now: later }).ingestChunk(runId, 0, jobs, AT)).toBe('ingested');
    const taken = [await acquireJob(runId, jobs[110]!), await acquireJob(runId, jobs[0]!)];
    // On a loaded machine the window may be over already: then there is nothing to wait for.
    const pastWindowMs = Math.max(0, windowMs - (performance.now() - started) + 50);
    await new Promise((resolve) => setTimeout(resolve, pastWindowMs));
    resume();
    // Past its window the owner sends no batch: an unconditional put would turn job 110 back into
    // a queued one, to be called again.
    expect(await owner).toBe('duplicate');
    expect(tap.count('batch')).toBe(4);
    expect(tap.count('put')).toBe(25);
    await expectIngestedOnce(runId, jobs, taken);
  });

  it('sends each batch once, whatever the client retry settings, and writes a failed batch conditionally', async () => {
    const { runId, jobs } = await newRun(90);
    // The functions' retry budget; every batch is applied and its answer lost (a 500 after the write).
    const tap = new Tapped(DYNAMO_MAX_ATTEMPTS);
    tap.fail.batch = 'after';
    const slept: number[] = [];
    let taken: string | undefined;
    let acquiring = false;
    const store = storeWith(tap.client, {
      sleep: async (ms) => {
        slept.push(ms);
        // While the owner waits for its unknown batches to settle, a dispatcher takes a job they wrote.
        if (ms === SETTLE_MS && !acquiring) {
          acquiring = true;
          taken = await acquireOne(runId);
        }
      },
    });
    expect(await store.ingestChunk(runId, 0, jobs, AT)).toBe('ingested');
    expect(tap.count('batch')).toBe(4); // never resent by the SDK
    expect(slept.filter((ms) => ms === SETTLE_MS)).toHaveLength(4);
    expect(tap.count('put')).toBe(90); // each found its job there: the taken one stays taken
    expect(taken).toBeDefined();
    await expectIngestedOnce(runId, jobs, [taken!]);
  });

  it('writes a refused batch (throttled: nothing written) conditionally without waiting', async () => {
    const { runId, jobs } = await newRun(30);
    const tap = new Tapped(DYNAMO_MAX_ATTEMPTS);
    tap.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'BatchWriteItemCommand') {
          throw Object.assign(new Error('Rate exceeded (injected)'), {
            name: 'ThrottlingException',
            $fault: 'client',
            $metadata: { httpStatusCode: 400 },
          });
        }
        return next(args);
      },
      { step: 'deserialize', name: 'throttleBatches' },
    );
    const slept: number[] = [];
    const store = storeWith(tap.client, { sleep: async (ms) => void slept.push(ms) });
    expect(await store.ingestChunk(runId, 0, jobs, AT)).toBe('ingested');
    expect(slept).not.toContain(SETTLE_MS);
    expect(tap.count('put')).toBe(30);
    await expectIngestedOnce(runId, jobs, []);
  });

  it('resends only the unprocessed items of a batch', async () => {
    const { runId, jobs } = await newRun(25);
    const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: aws.dynamoEndpoint });
    const sizes: number[] = [];
    // The first batch: DynamoDB takes 20 of its 25 items and hands back 5 unprocessed.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'BatchWriteItemCommand') return next(args);
        const input = args.input as { RequestItems: Record<string, unknown[]> };
        const requests = input.RequestItems[aws.tableName]!;
        sizes.push(requests.length);
        if (sizes.length > 1) return next(args);
        const result = await next({
          ...args,
          input: { ...input, RequestItems: { [aws.tableName]: requests.slice(0, 20) } },
        });
        (result.output as { UnprocessedItems?: unknown }).UnprocessedItems = {
          [aws.tableName]: requests.slice(20),
        };
        return result;
      },
      // Before the document client's marshalling: plain items in, plain items out.
      { step: 'initialize', name: 'unprocessed' },
    );
    const store = storeWith(aws.dynamo, { batchWriter: client, sleep: async () => undefined });
    expect(await store.ingestChunk(runId, 0, jobs, AT)).toBe('ingested');
    expect(sizes).toEqual([25, 5]);
    await expectIngestedOnce(runId, jobs, []);
  });

  it('writes with conditional puts only once the ownership window has passed', async () => {
    const { runId, jobs } = await newRun(30);
    const tap = new Tapped();
    const store = storeWith(tap.client, { ingestTiming: { batchWindowMs: 0 } });
    expect(await store.ingestChunk(runId, 0, jobs, AT)).toBe('ingested');
    expect(tap.count('batch')).toBe(0);
    expect(tap.count('put')).toBe(30);
    await expectIngestedOnce(runId, jobs, []);
  });

  it('ingests the leads of a canceled run as canceled, and counts them, so the run ends', async () => {
    const { runId, jobs } = await newRun(30);
    const store = plainStore();
    expect(await store.setControl(runId, { from: ['running'], to: 'canceled', at: AT })).toMatchObject({
      kind: 'changed',
    });
    expect(await store.ingestChunk(runId, 0, jobs, AT)).toBe('ingested');
    const items = await jobItems(runId);
    expect(items.size).toBe(30);
    for (const item of items.values())
      expect(item).toMatchObject({ status: 'canceled', outcome: 'canceled' });
    expect(await store.nextQueuedJobs(runId, 10)).toHaveLength(0);
    expect(await store.getRun(runId)).toMatchObject({
      ingestedLeads: 30,
      queued: 0,
      canceled: 30,
      outcomes: { canceled: 30 },
    });
    expect(await store.closeRun(runId)).toBe('closed');
  });

  it('a run canceled while its chunk is written: the chunk counts as queued and the cancel sweep ends every lead', async () => {
    const { runId, jobs } = await newRun(90);
    const tap = new Tapped();
    let sending = 0;
    let swept!: () => void;
    const sweepDone = new Promise<void>((resolve) => {
      swept = resolve;
    });
    // The first batch goes; the others wait until the run has been canceled and swept.
    tap.onSending = async (kind) => {
      if (kind === 'batch' && ++sending > 1) await sweepDone;
    };
    let early: ReturnType<typeof toRunView> | undefined;
    let sweptEarly = -1;
    tap.onLanded = async (kind) => {
      if (kind !== 'batch' || early) return;
      // After the first batch lands: the run is canceled and a dispatcher's sweep cancels what it sees.
      const store = plainStore();
      await store.setControl(runId, { from: ['running'], to: 'canceled', at: AT });
      sweptEarly = await store.cancelQueuedJobs(runId, 1000, AT);
      early = toRunView((await store.getRun(runId))!);
      swept();
    };
    expect(await storeWith(tap.client).ingestChunk(runId, 0, jobs, AT)).toBe('ingested');
    expect(sweptEarly).toBe(25);
    // Swept before being counted: `queued` is -25 in the table, never below 0 in the view.
    expect(early).toMatchObject({ queued: 0, canceled: 25, pending_ingest: 65, status: 'canceling' });
    const store = plainStore();
    expect(await store.getRun(runId)).toMatchObject({ ingestedLeads: 90, queued: 65, canceled: 25 });
    expect(await store.closeRun(runId)).toBe('still-open');
    // The sweep the dispatcher runs after every ingest on a canceled run.
    expect(await store.cancelQueuedJobs(runId, 1000, AT)).toBe(65);
    const run = (await store.getRun(runId))!;
    expect(run).toMatchObject({ ingestedLeads: 90, queued: 0, canceled: 90, outcomes: { canceled: 90 } });
    expect(toRunView(run).status).toBe('canceled');
    for (const item of (await jobItems(runId)).values()) expect(item).toMatchObject({ status: 'canceled' });
    expect(await store.closeRun(runId)).toBe('closed');
  });
});

/** One step of the property: a delivery (maybe failing somewhere), a dispatcher's acquire, time passing. */
type Step =
  | {
      kind: 'deliver';
      fault?: { at: Kind; how: Fault; nth?: number };
      abandonFails: boolean;
      acquireAfter: number;
    }
  | { kind: 'deliver-twice' }
  | { kind: 'acquire' }
  | { kind: 'wait' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('deliver' as const),
      fault: fc.option(
        fc.record({
          at: fc.constantFrom<Kind>('batch', 'put', 'finish', 'takeover', 'claim'),
          how: fc.constantFrom<Fault>('before', 'after'),
          nth: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
        }),
        { nil: undefined },
      ),
      abandonFails: fc.boolean(),
      // A dispatcher takes a job right after the nth write of this delivery lands (never if ≥ writes).
      acquireAfter: fc.integer({ min: 0, max: 6 }),
    }),
  },
  fc.constant({ kind: 'deliver-twice' as const }),
  fc.constant({ kind: 'acquire' as const }),
  fc.constant({ kind: 'wait' as const }),
);

describe('ingest under any interleaving', () => {
  it('writes each job once, never resets a taken one, and counts the chunk exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 60 }),
        fc.array(stepArb, { maxLength: 8 }),
        async (n, steps) => {
          const { runId, jobs } = await newRun(n);
          const taken = new Set<string>();
          let offset = 0; // the wall clock's advance: `wait` moves it past the takeover age
          const now = () => Date.now() + offset;
          const acquire = async () => {
            const id = await acquireOne(runId);
            if (id) taken.add(id);
          };
          const checkTaken = async () => {
            const items = await jobItems(runId);
            for (const id of taken) expect(items.get(id)).toMatchObject({ status: 'dialing', attempt: 1 });
          };
          for (const step of steps) {
            if (step.kind === 'acquire') await acquire();
            else if (step.kind === 'wait') offset += CHUNK_TAKEOVER_MS + 1_000;
            else if (step.kind === 'deliver-twice') {
              const results = await Promise.allSettled(
                [0, 1].map(() => plainStore({ now }).ingestChunk(runId, 0, jobs, AT)),
              );
              for (const result of results) {
                if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(ChunkBusyError);
              }
            } else {
              const tap = new Tapped();
              if (step.fault) {
                tap.fail[step.fault.at] = step.fault.how;
                if (step.fault.nth !== undefined) tap.failNth[step.fault.at] = step.fault.nth;
              }
              if (step.abandonFails) tap.fail.abandon = 'before';
              let writes = 0;
              tap.onLanded = async (kind) => {
                if ((kind === 'batch' || kind === 'put') && writes++ === step.acquireAfter) await acquire();
              };
              const result = await storeWith(tap.client, { now })
                .ingestChunk(runId, 0, jobs, AT)
                .catch((error: unknown) => error);
              if (result instanceof Error && !/injected|being written/.test(result.message)) throw result;
            }
            await checkTaken();
            // Counted at most once at every moment.
            const run = (await plainStore().getRun(runId))!;
            expect([0, n]).toContain(run.ingestedLeads);
          }
          // SQS keeps bringing the chunk back until it goes through: at the latest after the takeover age.
          offset += CHUNK_TAKEOVER_MS + 1_000;
          expect(['ingested', 'duplicate']).toContain(
            await plainStore({ now }).ingestChunk(runId, 0, jobs, AT),
          );
          await expectIngestedOnce(runId, jobs, taken);
        },
      ),
      { numRuns: 60 },
    );
  });
});
