// (adapter) RunStore on DynamoDB. Every slot change is one TransactWriteItems whose first item is the
// run (the semaphore: `active` and the named holders) and whose second is the job, so the cap and
// the job's state cannot disagree. ConditionalCheckFailed is an answer, not an error. A lead chunk is
// ingested by the one worker that claims its marker item (see `ingestChunk`).

import { randomUUID } from 'node:crypto';
import { type DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ValidationError } from '../core/errors.ts';
import type { Job, NewJob, Run } from '../core/model.ts';
import type {
  AccountLimits,
  AcquireResult,
  ControlChange,
  ControlResult,
  CreateRunResult,
  IdempotencyClaim,
  LeadReservation,
  NewRun,
  Page,
  PageRequest,
  QueuedJob,
  Release,
  ReleaseResult,
  ReservationResult,
  RunStore,
} from '../core/ports.ts';
import type { RunOptions } from '../core/run-options.ts';
import { keys, OPEN_RUNS, RUN_LIST, TABLE_SCHEMA } from '../definitions/table-schema.ts';

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];
type JobItem = Record<string, unknown>;

/** How a chunk's jobs are written: queued, or (a chunk of a run canceled before it was claimed) canceled. */
type IngestMode = 'queued' | 'canceled';

/** A chunk's marker: `writing` while claimed, `abandoned` by an owner that failed, `done` once counted. */
interface ChunkMarker {
  state: 'writing' | 'abandoned' | 'done';
  mode: IngestMode;
  /** When the current claim was made (ms since the epoch, the claimer's clock). */
  claimedAt: number;
  token: string | undefined;
}

/** A claim this worker sent. */
interface ChunkClaim {
  token: string;
  mode: IngestMode;
  /** Only the first claimer of a chunk may use unconditional BatchWriteItem. */
  batch: boolean;
  /** performance.now() just before the claim was sent: the ownership window runs from here. */
  startedMs: number;
}

export interface IngestTiming {
  takeoverMs: number;
  batchWindowMs: number;
  unknownOutcomeSettleMs: number;
}

/**
 * A `writing` chunk marker younger than this may still have a live owner: a redelivery fails and
 * comes back later instead of writing. An owner runs in the dispatcher, whose Lambda timeout (30 s,
 * lambdas/definitions/resources.ts) ends it at most 30 s after its claim, plus 10 s for clock differences between
 * hosts and requests still in flight. What safety needs is that it be far beyond
 * CHUNK_BATCH_WINDOW_MS: no batch the owner sent can still land when a taker starts, and after the
 * window the owner writes only conditionally, which is safe alongside a taker.
 */
export const CHUNK_TAKEOVER_MS = 40_000;
/**
 * The owner sends unconditional BatchWriteItem only this long after its claim, far below the
 * takeover age: none of its batches can land once another worker may have taken the chunk over (and
 * a dispatcher one of its jobs). Past it, the rest is written with conditional puts.
 */
export const CHUNK_BATCH_WINDOW_MS = 10_000;
/**
 * A BatchWriteItem that failed without a refusal (5xx, network error, timeout) may still be applied:
 * its items are written conditionally only after this long, so that it cannot land after them.
 */
export const UNKNOWN_OUTCOME_SETTLE_MS = 5_000;

export interface DynamoRunStoreOptions {
  tableName: string;
  /** Backoff between retries of a transaction cancelled by a conflict; injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** The account item's sort key: one per deployment; tests use their own. */
  accountName?: string;
  /**
   * The client ingest sends its BatchWriteItem through (default: the store's own client). Either
   * way each batch is sent once: the SDK's retries are refused for it (`sendOnce`), as an unknown
   * outcome must never be resent blindly.
   */
  batchWriter?: DynamoDBClient;
  /** Wall clock, ms since the epoch: a chunk claim's time and age. Tests move it. */
  now?: () => number;
  /** Ingest's ages and windows; the defaults are the constants above. Tests shorten them. */
  ingestTiming?: Partial<IngestTiming>;
}

/** A redelivered chunk whose first delivery is still being written: fail the record, try later. */
export class ChunkBusyError extends Error {
  override readonly name = 'ChunkBusyError';
}

/** BatchWriteItem takes at most 25 items. */
const BATCH_WRITE_ITEMS = 25;
/** An owner's BatchWriteItem requests in flight at once (a chunk of 90 is 4). */
const BATCHES_IN_FLIGHT = 4;
/** Conditional puts in flight at once (a takeover, or a group past the window or after an error). */
const PUTS_IN_FLIGHT = 8;
/** Reads of a chunk marker before ingest gives up on a claim that keeps changing hands. */
const MAX_CLAIM_LOOKS = 4;

/** Jobs per cancel transaction: 99 jobs and the run item make DynamoDB's 100 items. */
const CANCEL_BATCH = 99;
/** Pages read for one page of a filtered job list, before answering with what was found. */
const MAX_FILTERED_PAGES = 5;

/** Conflicting transactions on the run item are retried this often before the caller sees an error. */
const MAX_CONFLICT_RETRIES = 8;
/** How long an Idempotency-Key is remembered (Stripe keeps them 24 hours). */
const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;
/** Cancellation reasons that say "not now" rather than "no": another transaction, or throttling. */
const RETRYABLE_REASONS = new Set([
  'TransactionConflict',
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
  'RequestLimitExceeded',
]);

export class DynamoRunStore implements RunStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly accountKey: { pk: string; sk: string };
  private readonly batchDoc: DynamoDBDocumentClient;
  private readonly now: () => number;
  private readonly ingestTiming: IngestTiming;
  private accountReady: Promise<void> | undefined;

  constructor(client: DynamoDBClient, options: DynamoRunStoreOptions) {
    const translate = { marshallOptions: { removeUndefinedValues: true } };
    this.doc = DynamoDBDocumentClient.from(client, translate);
    this.batchDoc = options.batchWriter
      ? DynamoDBDocumentClient.from(options.batchWriter, translate)
      : this.doc;
    this.now = options.now ?? Date.now;
    this.ingestTiming = {
      takeoverMs: CHUNK_TAKEOVER_MS,
      batchWindowMs: CHUNK_BATCH_WINDOW_MS,
      unknownOutcomeSettleMs: UNKNOWN_OUTCOME_SETTLE_MS,
      ...options.ingestTiming,
    };
    this.table = options.tableName;
    this.accountKey = keys.account(options.accountName);
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
  }

  async createRun(run: NewRun, idempotency?: IdempotencyClaim): Promise<CreateRunResult> {
    const putRun = {
      TableName: this.table,
      Item: {
        ...keys.run(run.runId),
        entity: 'run',
        runId: run.runId,
        createdAt: run.createdAt,
        concurrency: run.concurrency,
        control: 'running',
        totalLeads: run.totalLeads,
        ingestedLeads: 0,
        active: 0,
        holders: {},
        queued: 0,
        completed: 0,
        failed: 0,
        canceled: 0,
        outcomes: {},
        options: run.options ?? {},
        chunkCount: run.chunkCount ?? 0,
        [TABLE_SCHEMA.openRunsIndex.partitionKey]: OPEN_RUNS,
        [TABLE_SCHEMA.runsIndex.partitionKey]: RUN_LIST,
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    };
    if (!idempotency) {
      await this.doc.send(new PutCommand(putRun));
      return { kind: 'created' };
    }
    // The key and the run are written together: two racing retries cannot both create a run.
    const failed = await this.transact([
      { Put: putRun },
      {
        Put: {
          TableName: this.table,
          Item: {
            ...keys.idempotency(idempotency.key),
            entity: 'idempotency',
            runId: run.runId,
            fingerprint: idempotency.fingerprint,
            [TABLE_SCHEMA.timeToLiveAttribute]:
              Math.floor(Date.parse(run.createdAt) / 1000) + IDEMPOTENCY_TTL_SECONDS,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
    ]);
    if (failed.length === 0) return { kind: 'created' };
    const { Item } = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: keys.idempotency(idempotency.key), ConsistentRead: true }),
    );
    if (!Item) throw new Error('idempotency key claimed but not found');
    return { kind: 'existing', runId: String(Item.runId), fingerprint: String(Item.fingerprint) };
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const { Item } = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: keys.run(runId), ConsistentRead: true }),
    );
    return Item ? runFromItem(Item) : undefined;
  }

  async getJob(runId: string, jobId: string): Promise<Job | undefined> {
    const { Item } = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: keys.job(runId, jobId), ConsistentRead: true }),
    );
    return Item ? jobFromItem(Item) : undefined;
  }

  /**
   * One chunk of leads in, exactly once, whoever else delivers it (SQS redelivers, and may deliver
   * twice at once). The chunk's marker item says who writes its jobs and whether its counters are in:
   *
   * - no marker: this call claims it (`writing`, with a random token and the mode the run's control
   *   gives: `queued`, or `canceled` for a canceled run) and is the owner. Nobody can have written
   *   a job of the chunk yet, so the owner writes them with unconditional BatchWriteItem, which is
   *   cheaper (1 write unit a job instead of a transaction's 2) and faster than anything
   *   conditional — but only within CHUNK_BATCH_WINDOW_MS of its claim, and never resending a batch
   *   whose outcome it does not know (see `batchWriteGroup`): a late or repeated unconditional put
   *   would turn a job a dispatcher has already taken back into a queued one, and call it twice.
   * - `writing`, younger than CHUNK_TAKEOVER_MS: its owner may still be writing; this call fails
   *   (ChunkBusyError) and its SQS record comes back later, when the chunk is done.
   * - `writing` and older, or `abandoned` (its owner failed and said so): this call takes the claim
   *   over and writes every job with a conditional put (a job that is there stays as it is).
   * - `done`, or a marker from before this protocol (no state): 'duplicate'.
   *
   * The counters are added only by the transaction that turns the writer's claim into `done`, so a
   * chunk is counted once. Its jobs are visible in the queued index a little before that: a
   * dispatcher may take one and decrement `queued` first (the run's `queued` can be briefly
   * negative; `ingestedLeads` is not counted yet, so the run cannot close early meanwhile).
   */
  async ingestChunk(
    runId: string,
    chunk: number,
    jobs: NewJob[],
    at: string,
  ): Promise<'ingested' | 'duplicate'> {
    const token = randomUUID();
    // The claim this call sent last: if its answer was lost (the SDK retried a claim that had been
    // applied, and the retry failed its condition), the marker carries our token.
    let sent: ChunkClaim | undefined;
    for (let look = 0; look < MAX_CLAIM_LOOKS; look++) {
      const marker = await this.readChunkMarker(runId, chunk);
      if (sent && marker?.token === token && marker.state === 'writing') {
        return this.writeChunk(runId, chunk, jobs, at, sent);
      }
      if (!marker) {
        const run = await this.getRun(runId);
        if (!run) throw new Error(`ingest of chunk ${chunk} failed: run ${runId} not found`);
        // Read once: a run canceled after this is handled by the cancel sweep (see `finishChunk`).
        const mode: IngestMode = run.control === 'canceled' ? 'canceled' : 'queued';
        sent = { token, mode, batch: true, startedMs: performance.now() };
        if (await this.claimChunk(runId, chunk, jobs.length, at, sent)) {
          return this.writeChunk(runId, chunk, jobs, at, sent);
        }
        continue;
      }
      if (marker.state === 'done') return 'duplicate';
      const age = this.now() - marker.claimedAt;
      if (marker.state === 'writing' && age < this.ingestTiming.takeoverMs) {
        throw new ChunkBusyError(
          `chunk ${chunk} of run ${runId} is being written by another worker (claimed ${Math.round(age)} ms ago)`,
        );
      }
      sent = { token, mode: marker.mode, batch: false, startedMs: performance.now() };
      if (await this.takeOverChunk(runId, chunk, marker, sent)) {
        return this.writeChunk(runId, chunk, jobs, at, sent);
      }
    }
    throw new Error(`ingest of chunk ${chunk} failed: its claim kept changing hands`);
  }

  private async readChunkMarker(runId: string, chunk: number): Promise<ChunkMarker | undefined> {
    const { Item } = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: keys.chunk(runId, chunk), ConsistentRead: true }),
    );
    if (!Item) return undefined;
    // A marker written before claims existed was written with its jobs and counters: done.
    const state = Item.state === undefined ? 'done' : Item.state;
    if (state !== 'writing' && state !== 'abandoned' && state !== 'done') {
      throw new Error(`chunk ${chunk} of run ${runId}: unknown marker state ${String(state)}`);
    }
    if (state !== 'done' && Item.mode !== 'queued' && Item.mode !== 'canceled') {
      throw new Error(`chunk ${chunk} of run ${runId}: marker without a mode`);
    }
    return {
      state,
      mode: Item.mode === 'canceled' ? 'canceled' : 'queued',
      claimedAt: Number(Item.claimedAt ?? 0),
      token: typeof Item.token === 'string' ? Item.token : undefined,
    };
  }

  /** Claims a chunk nobody has claimed; false if someone else has (or our retried claim did). */
  private async claimChunk(
    runId: string,
    chunk: number,
    leads: number,
    at: string,
    claim: ChunkClaim,
  ): Promise<boolean> {
    return this.applies(
      new PutCommand({
        TableName: this.table,
        Item: {
          ...keys.chunk(runId, chunk),
          entity: 'chunk',
          leads,
          at,
          state: 'writing',
          mode: claim.mode,
          claimedAt: this.now(),
          token: claim.token,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  /** Takes over a stale or abandoned claim, as long as nobody else did since it was read. */
  private async takeOverChunk(
    runId: string,
    chunk: number,
    seen: ChunkMarker,
    claim: ChunkClaim,
  ): Promise<boolean> {
    return this.applies(
      new UpdateCommand({
        TableName: this.table,
        Key: keys.chunk(runId, chunk),
        UpdateExpression: 'SET #state = :writing, claimedAt = :now, #token = :token, takenOver = :true',
        ConditionExpression: '#state = :seen AND #token = :seenToken',
        ExpressionAttributeNames: { '#state': 'state', '#token': 'token' },
        ExpressionAttributeValues: {
          ':writing': 'writing',
          ':now': this.now(),
          ':token': claim.token,
          ':true': true,
          ':seen': seen.state,
          ':seenToken': seen.token ?? '',
        },
      }),
    );
  }

  /** The claimed chunk's jobs, then its counters; on failure the claim is let go (`abandoned`). */
  private async writeChunk(
    runId: string,
    chunk: number,
    jobs: NewJob[],
    at: string,
    claim: ChunkClaim,
  ): Promise<'ingested' | 'duplicate'> {
    const items = jobs.map((job) => this.jobItem(runId, job, at, claim.mode));
    try {
      if (claim.batch) await this.batchWriteJobs(items, claim.startedMs);
      else await this.putJobsIfAbsent(items);
      return await this.finishChunk(runId, chunk, jobs.length, claim);
    } catch (error) {
      // Every write this call started has settled by now (the writers wait for all of theirs, and an
      // unknown batch outcome for its settling time): a redelivery may take over at once instead of
      // waiting for the takeover age. Best effort: failing here leaves it to the age.
      await this.abandonChunk(runId, chunk, claim.token).catch(() => undefined);
      throw error;
    }
  }

  /**
   * The owner's writes: groups of 25, a few in flight. A group is written with BatchWriteItem while
   * the owner is inside its window, else (and after any error) with conditional puts.
   */
  private async batchWriteJobs(items: JobItem[], startedMs: number): Promise<void> {
    const groups: JobItem[][] = [];
    for (let i = 0; i < items.length; i += BATCH_WRITE_ITEMS)
      groups.push(items.slice(i, i + BATCH_WRITE_ITEMS));
    await inPool(groups, BATCHES_IN_FLIGHT, (group) => this.batchWriteGroup(group, startedMs));
  }

  private async batchWriteGroup(items: JobItem[], startedMs: number): Promise<void> {
    let pending = items;
    for (let round = 0; pending.length > 0; round++) {
      // Checked before every send: no unconditional put leaves this worker after the window, so none
      // can land after a takeover (CHUNK_TAKEOVER_MS is far beyond it).
      if (performance.now() - startedMs >= this.ingestTiming.batchWindowMs) break;
      const command = sendOnce(
        new BatchWriteCommand({
          RequestItems: { [this.table]: pending.map((Item) => ({ PutRequest: { Item } })) },
        }),
      );
      try {
        const { UnprocessedItems } = await this.batchDoc.send(command);
        // Unprocessed items were not written: they may be sent again.
        pending = (UnprocessedItems?.[this.table] ?? []).flatMap((request) =>
          request.PutRequest?.Item ? [request.PutRequest.Item as JobItem] : [],
        );
      } catch (error) {
        // A refusal (a 4xx: throttled, invalid) wrote nothing. Any other failure (5xx, network,
        // timeout) may have written the batch or may still write it: give it time to land before the
        // conditional puts, which must not be overtaken by it.
        if (!isRefusal(error)) await this.sleep(this.ingestTiming.unknownOutcomeSettleMs);
        break;
      }
      if (pending.length > 0) await this.sleep(this.random() * Math.min(500, 20 * 2 ** round));
    }
    if (pending.length > 0) await this.putJobsIfAbsent(pending);
  }

  /** Conditional puts: a job already there (written before, perhaps taken since) is left as it is. */
  private async putJobsIfAbsent(items: JobItem[]): Promise<void> {
    await inPool(items, PUTS_IN_FLIGHT, async (Item) => {
      try {
        await this.doc.send(
          new PutCommand({ TableName: this.table, Item, ConditionExpression: 'attribute_not_exists(pk)' }),
        );
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
      }
    });
  }

  /**
   * Claim → done and the run's counters, in one transaction: only the holder of the claim counts the
   * chunk, once. No condition on the run's control: a run canceled after the claim of a `queued`
   * chunk counts its jobs as queued, and the dispatcher's cancel sweep (which runs after every
   * ingest, on a canceled run) marks them canceled and moves the counts.
   */
  private async finishChunk(
    runId: string,
    chunk: number,
    leads: number,
    claim: ChunkClaim,
  ): Promise<'ingested' | 'duplicate'> {
    const canceled = claim.mode === 'canceled';
    const failed = await this.transact([
      {
        Update: {
          TableName: this.table,
          Key: keys.chunk(runId, chunk),
          UpdateExpression: 'SET #state = :done',
          ConditionExpression: '#state = :writing AND #token = :token',
          ExpressionAttributeNames: { '#state': 'state', '#token': 'token' },
          ExpressionAttributeValues: { ':done': 'done', ':writing': 'writing', ':token': claim.token },
        },
      },
      {
        Update: {
          TableName: this.table,
          Key: keys.run(runId),
          UpdateExpression: canceled
            ? 'ADD ingestedLeads :n, canceled :n SET outcomes.#canceled = if_not_exists(outcomes.#canceled, :zero) + :n'
            : 'ADD ingestedLeads :n, queued :n',
          ConditionExpression: 'attribute_exists(pk)',
          ...(canceled ? { ExpressionAttributeNames: { '#canceled': 'canceled' } } : {}),
          ExpressionAttributeValues: { ':n': leads, ...(canceled ? { ':zero': 0 } : {}) },
        },
      },
    ]);
    if (failed.length === 0) return 'ingested';
    // Not ours any more: a worker that took the claim over counts it (or has), or our own finish was
    // applied and its answer lost.
    if (failed.includes(0)) return 'duplicate';
    throw new Error(`ingest of chunk ${chunk} failed: run ${runId} not found`);
  }

  private async abandonChunk(runId: string, chunk: number, token: string): Promise<void> {
    await this.applies(
      new UpdateCommand({
        TableName: this.table,
        Key: keys.chunk(runId, chunk),
        UpdateExpression: 'SET #state = :abandoned',
        ConditionExpression: '#state = :writing AND #token = :token',
        ExpressionAttributeNames: { '#state': 'state', '#token': 'token' },
        ExpressionAttributeValues: { ':abandoned': 'abandoned', ':writing': 'writing', ':token': token },
      }),
    );
  }

  /** A new job: queued (in the queued index), or canceled for a chunk of a canceled run. */
  private jobItem(runId: string, job: NewJob, at: string, mode: IngestMode): JobItem {
    return {
      ...keys.job(runId, job.jobId),
      entity: 'job',
      runId,
      jobId: job.jobId,
      phone: job.phone,
      attributes: job.attributes,
      attempt: 0,
      queuedAt: at,
      ...(job.timeZone ? { timeZone: job.timeZone } : {}),
      ...(mode === 'canceled'
        ? { status: 'canceled', outcome: 'canceled', endedAt: at }
        : {
            status: 'queued',
            ...(job.notBefore ? { notBefore: job.notBefore } : {}),
            [TABLE_SCHEMA.queuedIndex.partitionKey]: runId,
            [TABLE_SCHEMA.queuedIndex.sortKey]: keys.queuedKey(job.notBefore ?? 0, job.jobId),
          }),
    };
  }

  async listOpenRuns(): Promise<string[]> {
    const runIds: string[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: TABLE_SCHEMA.openRunsIndex.name,
          KeyConditionExpression: '#open = :open',
          ExpressionAttributeNames: { '#open': TABLE_SCHEMA.openRunsIndex.partitionKey },
          ExpressionAttributeValues: { ':open': OPEN_RUNS },
          ...(ExclusiveStartKey ? { ExclusiveStartKey } : {}),
        }),
      );
      for (const item of page.Items ?? []) runIds.push(String(item.pk).slice('RUN#'.length));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return runIds;
  }

  async closeRun(runId: string): Promise<'closed' | 'still-open'> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.run(runId),
          UpdateExpression: 'REMOVE #open',
          // Every lead ingested and none queued or live means every lead is final.
          ConditionExpression: 'ingestedLeads = totalLeads AND queued = :zero AND active = :zero',
          ExpressionAttributeNames: { '#open': TABLE_SCHEMA.openRunsIndex.partitionKey },
          ExpressionAttributeValues: { ':zero': 0 },
        }),
      );
      return 'closed';
    } catch (error) {
      if (isConditionalCheckFailed(error)) return 'still-open';
      throw error;
    }
  }

  async nextQueuedJobs(runId: string, limit: number, dueBy?: number): Promise<QueuedJob[]> {
    const { Items = [] } = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: TABLE_SCHEMA.queuedIndex.name,
        // Keys start with the zero-padded not-before time: "due by T" is a range on the sort key.
        KeyConditionExpression: dueBy === undefined ? '#run = :run' : '#run = :run AND #key < :due',
        ExpressionAttributeNames: {
          '#run': TABLE_SCHEMA.queuedIndex.partitionKey,
          ...(dueBy === undefined ? {} : { '#key': TABLE_SCHEMA.queuedIndex.sortKey }),
        },
        ExpressionAttributeValues: {
          ':run': runId,
          ...(dueBy === undefined ? {} : { ':due': keys.queuedKey(Math.floor(dueBy) + 1, '') }),
        },
        Limit: limit,
      }),
    );
    return Items.map(queuedJobFromItem);
  }

  async earliestQueued(runId: string): Promise<number | undefined> {
    const [first] = await this.nextQueuedJobs(runId, 1);
    return first?.notBefore;
  }

  async deferJob(runId: string, job: QueuedJob, notBefore: number): Promise<void> {
    await this.applies(
      new UpdateCommand({
        TableName: this.table,
        Key: keys.job(runId, job.jobId),
        UpdateExpression: 'SET #qkey = :to, notBefore = :notBefore',
        // Only if it is still queued where we saw it: a job taken or moved meanwhile stays as it is.
        ConditionExpression: '#status = :queued AND attempt = :attempt AND #qkey = :from',
        ExpressionAttributeNames: { '#status': 'status', '#qkey': TABLE_SCHEMA.queuedIndex.sortKey },
        ExpressionAttributeValues: {
          ':queued': 'queued',
          ':attempt': job.attempt,
          ':from': keys.queuedKey(job.notBefore ?? 0, job.jobId),
          ':to': keys.queuedKey(notBefore, job.jobId),
          ':notBefore': notBefore,
        },
      }),
    );
  }

  async claimWake(runId: string, atMs: number, nowMs: number): Promise<boolean> {
    return this.applies(
      new UpdateCommand({
        TableName: this.table,
        Key: keys.run(runId),
        UpdateExpression: 'SET wakeAt = :at',
        // A wake-up already armed for this time or earlier (and not yet past) covers this one.
        ConditionExpression:
          'attribute_exists(pk) AND (attribute_not_exists(wakeAt) OR wakeAt < :now OR wakeAt > :at)',
        ExpressionAttributeValues: { ':at': atMs, ':now': nowMs },
      }),
    );
  }

  async acquireSlot(
    runId: string,
    job: QueuedJob,
    at: string,
    account?: AccountLimits,
  ): Promise<AcquireResult> {
    const attempt = job.attempt + 1;
    const withAccount =
      account !== undefined &&
      (account.maxConcurrentCalls !== undefined || account.callsPerSecond !== undefined);
    if (withAccount) await this.ensureAccount();
    const holder = { attempt, state: 'dialing', since: at, ...(withAccount ? { account: true } : {}) };
    const items: TransactItem[] = [
      {
        Update: {
          TableName: this.table,
          Key: keys.run(runId),
          UpdateExpression: 'SET active = active + :one, queued = queued - :one, holders.#job = :holder',
          ConditionExpression:
            '#control = :running AND active < concurrency AND attribute_not_exists(holders.#job)',
          ExpressionAttributeNames: { '#job': job.jobId, '#control': 'control' },
          ExpressionAttributeValues: { ':one': 1, ':running': 'running', ':holder': holder },
        },
      },
      {
        Update: {
          TableName: this.table,
          Key: keys.job(runId, job.jobId),
          // Leaving the sparse index is part of taking the slot; what described the last attempt goes.
          UpdateExpression:
            'SET #status = :dialing, attempt = :attempt, dialedAt = :at ' +
            'REMOVE #qrun, #qkey, notBefore, callSid, outcome, errorCode, answeredAt, endedAt',
          ConditionExpression: '#status = :queued AND attempt = :previous',
          ExpressionAttributeNames: {
            '#status': 'status',
            '#qrun': TABLE_SCHEMA.queuedIndex.partitionKey,
            '#qkey': TABLE_SCHEMA.queuedIndex.sortKey,
          },
          ExpressionAttributeValues: {
            ':dialing': 'dialing',
            ':queued': 'queued',
            ':attempt': attempt,
            ':previous': job.attempt,
            ':at': at,
          },
        },
      },
    ];
    if (withAccount) items.push(this.acquireAccountItem(runId, job.jobId, attempt, at, account));
    const { failed, oldItems } = await this.transactWithReasons(items);
    if (failed.length === 0) return 'acquired';
    // The job's own condition first: a job already taken says nothing about the run's free slots.
    if (failed.includes(1)) return 'job-taken';
    if (failed.includes(0)) return 'no-slot';
    const old = oldItems[2];
    const active = Number(old?.active?.N ?? 0);
    return account?.maxConcurrentCalls !== undefined && active >= account.maxConcurrentCalls
      ? 'account-full'
      : 'paced';
  }

  /** The account's share of an acquire: its own slot under the account cap, and the CPS pace. */
  private acquireAccountItem(
    runId: string,
    jobId: string,
    attempt: number,
    at: string,
    account: AccountLimits,
  ): TransactItem {
    const conditions: string[] = [];
    const values: Record<string, unknown> = { ':one': 1, ':holder': { attempt, since: at } };
    let update = 'SET active = active + :one, holders.#holder = :holder';
    if (account.maxConcurrentCalls !== undefined) {
      conditions.push('active < :max');
      values[':max'] = account.maxConcurrentCalls;
    }
    if (account.callsPerSecond !== undefined) {
      // One create per 1/cps seconds across the account: the next may start no earlier than this one + 1/cps.
      conditions.push('nextCreateAt <= :now');
      update += ', nextCreateAt = :next';
      values[':now'] = account.nowMs;
      values[':next'] = account.nowMs + 1000 / account.callsPerSecond;
    }
    return {
      Update: {
        TableName: this.table,
        Key: this.accountKey,
        UpdateExpression: update,
        ConditionExpression: conditions.join(' AND '),
        ExpressionAttributeNames: { '#holder': accountHolder(runId, jobId) },
        ExpressionAttributeValues: values,
        // Tells "account full" from "paced" when the condition fails.
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }

  /** The account item, made once: a nested holder cannot be set on an item that does not exist. */
  private ensureAccount(): Promise<void> {
    this.accountReady ??= this.doc
      .send(
        new PutCommand({
          TableName: this.table,
          Item: { ...this.accountKey, entity: 'account', active: 0, holders: {}, nextCreateAt: 0 },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      )
      .then(
        () => undefined,
        (error) => {
          if (isConditionalCheckFailed(error)) return;
          this.accountReady = undefined;
          throw error;
        },
      );
    return this.accountReady;
  }

  async addWaitingRun(runId: string): Promise<void> {
    await this.ensureAccount();
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: this.accountKey,
        UpdateExpression: 'ADD waiting :run',
        ExpressionAttributeValues: { ':run': new Set([runId]) },
      }),
    );
  }

  async takeWaitingRuns(): Promise<string[]> {
    try {
      // Read and cleared in one write: each waiting run is handed to exactly one releaser.
      const { Attributes } = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.accountKey,
          UpdateExpression: 'REMOVE waiting',
          ConditionExpression: 'attribute_exists(waiting)',
          ReturnValues: 'UPDATED_OLD',
        }),
      );
      const waiting = Attributes?.waiting;
      return waiting instanceof Set ? [...waiting].map(String) : [];
    } catch (error) {
      if (isConditionalCheckFailed(error)) return [];
      throw error;
    }
  }

  async recordCallSid(runId: string, jobId: string, attempt: number, callSid: string): Promise<void> {
    // Refused: already saved, or a later attempt: fine either way.
    await this.applies(
      new UpdateCommand({
        TableName: this.table,
        Key: keys.job(runId, jobId),
        UpdateExpression: 'SET callSid = :sid',
        ConditionExpression: 'attempt = :attempt AND attribute_not_exists(callSid)',
        ExpressionAttributeValues: { ':sid': callSid, ':attempt': attempt },
      }),
    );
  }

  async markCalling(runId: string, jobId: string, attempt: number, at: string): Promise<'applied' | 'stale'> {
    // Two plain writes, not a transaction (which bills every item twice): "answered" moves no slot.
    // The holder first — it is what the semaphore and the release condition read; the job's own
    // status follows, and a crash in between only leaves the job showing `dialing` a while longer.
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.run(runId),
          UpdateExpression: 'SET holders.#job.#state = :calling',
          ConditionExpression: 'holders.#job.attempt = :attempt AND holders.#job.#state = :dialing',
          ExpressionAttributeNames: { '#job': jobId, '#state': 'state' },
          ExpressionAttributeValues: { ':attempt': attempt, ':dialing': 'dialing', ':calling': 'calling' },
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailed(error)) return 'stale';
      throw error;
    }
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.job(runId, jobId),
          UpdateExpression: 'SET #status = :calling, answeredAt = :at',
          ConditionExpression: 'attempt = :attempt AND #status = :dialing',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':attempt': attempt,
            ':dialing': 'dialing',
            ':calling': 'calling',
            ':at': at,
          },
        }),
      );
    } catch (error) {
      // Already released (final) in between: the holder said so first, nothing to fix.
      if (!isConditionalCheckFailed(error)) throw error;
    }
    return 'applied';
  }

  async releaseSlot(release: Release): Promise<ReleaseResult> {
    const { runId, jobId, attempt, from, to, at } = release;
    const accountSlot = release.accountSlot ?? (await this.getRun(runId))?.holders[jobId]?.account === true;
    const requeue = to === 'queued';
    const outcome = release.outcome ?? to;
    const runUpdate = requeue
      ? 'SET active = active - :one, queued = queued + :one REMOVE holders.#job'
      : 'SET active = active - :one, #final = #final + :one, outcomes.#outcome = if_not_exists(outcomes.#outcome, :zero) + :one REMOVE holders.#job';
    // What the attempt that just ended left behind is kept (a retry shows why it is waiting).
    const lastAttempt =
      (release.outcome === undefined ? '' : ', outcome = :outcome') +
      (release.errorCode === undefined ? '' : ', errorCode = :code') +
      (release.callSid === undefined ? '' : ', callSid = if_not_exists(callSid, :sid)');
    const jobUpdate = requeue
      ? // Back in the sparse index, at its not-before time: the next dispatcher finds it when it is due.
        `SET #status = :queued, #qrun = :runId, #qkey = :qkey, endedAt = :at${lastAttempt}` +
        (release.notBefore ? ', notBefore = :notBefore' : ' REMOVE notBefore')
      : `SET #status = :to, endedAt = :at${lastAttempt}${release.outcome === undefined ? ', outcome = :outcome' : ''} REMOVE notBefore`;

    const items: TransactItem[] = [
      {
        Update: {
          TableName: this.table,
          Key: keys.run(runId),
          UpdateExpression: runUpdate,
          // Named and conditional: a duplicate or late release finds no holder and changes nothing.
          // A requeue also needs a run that is not canceled: no lead may wait in a canceled run.
          ConditionExpression:
            'holders.#job.attempt = :attempt AND holders.#job.#state = :from' +
            (requeue ? ' AND #control <> :canceled' : ''),
          ExpressionAttributeNames: {
            '#job': jobId,
            '#state': 'state',
            ...(requeue ? { '#control': 'control' } : { '#final': to, '#outcome': outcome }),
          },
          ExpressionAttributeValues: {
            ':one': 1,
            ':attempt': attempt,
            ':from': from,
            ...(requeue ? { ':canceled': 'canceled' } : { ':zero': 0 }),
          },
        },
      },
      {
        Update: {
          TableName: this.table,
          Key: keys.job(runId, jobId),
          UpdateExpression: jobUpdate,
          // The holder (on the run) is the guard; the job need only be this attempt and still live.
          // Its own dialing/calling can lag the holder's: "answered" is written holder first.
          ConditionExpression: 'attempt = :attempt AND #status IN (:dialing, :calling)',
          ExpressionAttributeNames: {
            '#status': 'status',
            ...(requeue
              ? { '#qrun': TABLE_SCHEMA.queuedIndex.partitionKey, '#qkey': TABLE_SCHEMA.queuedIndex.sortKey }
              : {}),
          },
          ExpressionAttributeValues: {
            ':attempt': attempt,
            ':dialing': 'dialing',
            ':calling': 'calling',
            ':at': at,
            ...(requeue
              ? {
                  ':queued': 'queued',
                  ':runId': runId,
                  ':qkey': keys.queuedKey(release.notBefore ?? 0, jobId),
                  ...(release.notBefore ? { ':notBefore': release.notBefore } : {}),
                }
              : { ':to': to }),
            ...(release.outcome === undefined && requeue ? {} : { ':outcome': outcome }),
            ...(release.errorCode === undefined ? {} : { ':code': release.errorCode }),
            ...(release.callSid === undefined ? {} : { ':sid': release.callSid }),
          },
        },
      },
    ];
    if (accountSlot) {
      items.push({
        Update: {
          TableName: this.table,
          Key: this.accountKey,
          UpdateExpression: 'SET active = active - :one REMOVE holders.#holder',
          ConditionExpression: 'attribute_exists(holders.#holder)',
          ExpressionAttributeNames: { '#holder': accountHolder(runId, jobId) },
          ExpressionAttributeValues: { ':one': 1 },
        },
      });
    }
    let failed = await this.transact(items);
    // The account holder alone is missing (the account item was reset by hand): the run's slot must
    // still be freed, or it would leak.
    if (failed.length > 0 && failed.every((index) => index === 2))
      failed = await this.transact(items.slice(0, 2));
    if (failed.length === 0) return 'released';
    if (requeue && failed.includes(0)) {
      // Refused because the run was canceled meanwhile? Then the lead is canceled instead of queued.
      const run = await this.getRun(runId);
      const holder = run?.holders[jobId];
      if (run?.control === 'canceled' && holder?.attempt === attempt && holder.state === from) {
        return this.releaseSlot({
          ...release,
          to: 'canceled',
          outcome: 'canceled',
          accountSlot: holder.account === true,
        });
      }
    }
    return 'stale';
  }

  async setControl(runId: string, change: ControlChange): Promise<ControlResult> {
    const from = Object.fromEntries(change.from.map((control, i) => [`:from${i}`, control]));
    try {
      const { Attributes } = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.run(runId),
          UpdateExpression: `SET #control = :to, controlAt = :at${change.hangup ? ', hangup = :true' : ''}`,
          // Not on a completed run: every lead final means queued = 0, active = 0 and all ingested.
          ConditionExpression:
            `attribute_exists(pk) AND #control IN (${Object.keys(from).join(', ')}) ` +
            'AND (queued > :zero OR active > :zero OR ingestedLeads < totalLeads)',
          ExpressionAttributeNames: { '#control': 'control' },
          ExpressionAttributeValues: {
            ':to': change.to,
            ':at': change.at,
            ':zero': 0,
            ...from,
            ...(change.hangup ? { ':true': true } : {}),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { kind: 'changed', run: runFromItem(Attributes ?? {}) };
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      const run = await this.getRun(runId);
      return run ? { kind: 'refused', run } : { kind: 'not-found' };
    }
  }

  async reserveLeads(runId: string, request: LeadReservation): Promise<ReservationResult> {
    try {
      const { Attributes = {} } = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.run(runId),
          // One write for the whole append: the run cannot look completed while any of it is pending.
          UpdateExpression:
            'SET totalLeads = totalLeads + :n, chunkCount = if_not_exists(chunkCount, :zero) + :k',
          ConditionExpression:
            'attribute_exists(pk) AND #control <> :canceled AND totalLeads <= :room ' +
            'AND (queued > :zero OR active > :zero OR ingestedLeads < totalLeads)',
          ExpressionAttributeNames: { '#control': 'control' },
          ExpressionAttributeValues: {
            ':n': request.leads,
            ':k': request.chunks,
            ':zero': 0,
            ':canceled': 'canceled',
            ':room': request.maxLeads - request.leads,
          },
          ReturnValues: 'UPDATED_OLD',
        }),
      );
      return {
        kind: 'reserved',
        firstIndex: Number(Attributes.totalLeads),
        firstChunk: Number(Attributes.chunkCount ?? 0),
      };
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      const run = await this.getRun(runId);
      return run ? { kind: 'refused', run } : { kind: 'not-found' };
    }
  }

  async cancelQueuedJobs(runId: string, limit: number, at: string): Promise<number> {
    let canceled = 0;
    // The index is eventually consistent: a job it still lists may be gone. Each is tried once here.
    const tried = new Set<string>();
    while (canceled < limit) {
      const listed = await this.nextQueuedJobs(runId, Math.min(CANCEL_BATCH, limit - canceled) + tried.size);
      let batch = listed.filter((job) => !tried.has(job.jobId)).slice(0, CANCEL_BATCH);
      if (batch.length === 0) break;
      for (const job of batch) tried.add(job.jobId);
      while (batch.length > 0) {
        const failed = await this.transact([
          {
            Update: {
              TableName: this.table,
              Key: keys.run(runId),
              UpdateExpression:
                'SET queued = queued - :n, canceled = canceled + :n, ' +
                'outcomes.#canceled = if_not_exists(outcomes.#canceled, :zero) + :n',
              ConditionExpression: '#control = :canceled',
              ExpressionAttributeNames: { '#control': 'control', '#canceled': 'canceled' },
              ExpressionAttributeValues: { ':n': batch.length, ':zero': 0, ':canceled': 'canceled' },
            },
          },
          ...batch.map(
            (job): TransactItem => ({
              Update: {
                TableName: this.table,
                Key: keys.job(runId, job.jobId),
                UpdateExpression:
                  'SET #status = :canceled, outcome = :canceled, endedAt = :at REMOVE #qrun, #qkey, notBefore',
                // Counted only if it moves now: a job canceled before, or taken, fails and is left out.
                ConditionExpression: '#status = :queued AND attempt = :attempt',
                ExpressionAttributeNames: {
                  '#status': 'status',
                  '#qrun': TABLE_SCHEMA.queuedIndex.partitionKey,
                  '#qkey': TABLE_SCHEMA.queuedIndex.sortKey,
                },
                ExpressionAttributeValues: {
                  ':canceled': 'canceled',
                  ':queued': 'queued',
                  ':attempt': job.attempt,
                  ':at': at,
                },
              },
            }),
          ),
        ]);
        if (failed.length === 0) {
          canceled += batch.length;
          break;
        }
        if (failed.includes(0)) return canceled; // not canceled (any more): nothing to do
        const stale = new Set(failed.map((index) => index - 1));
        batch = batch.filter((_, index) => !stale.has(index));
      }
    }
    return canceled;
  }

  async listRuns(page: PageRequest): Promise<Page<Run>> {
    const start = page.cursor === undefined ? undefined : decodeCursor(page.cursor, isRunsCursor);
    const { Items = [], LastEvaluatedKey } = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: TABLE_SCHEMA.runsIndex.name,
        KeyConditionExpression: '#list = :list',
        ExpressionAttributeNames: { '#list': TABLE_SCHEMA.runsIndex.partitionKey },
        ExpressionAttributeValues: { ':list': RUN_LIST },
        ScanIndexForward: false, // newest first
        Limit: page.limit,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    const runs = await this.batchGetRuns(Items.map((item) => String(item.pk)));
    return {
      items: runs,
      ...(LastEvaluatedKey ? { nextCursor: encodeCursor(LastEvaluatedKey) } : {}),
    };
  }

  /** The runs behind `pks`, in that order (consistent reads; at most 100 keys). */
  private async batchGetRuns(pks: string[]): Promise<Run[]> {
    if (pks.length === 0) return [];
    const found = new Map<string, Run>();
    let pending: Record<string, unknown>[] = pks.map((pk) => ({ pk, sk: 'RUN' }));
    for (let round = 0; pending.length > 0; round++) {
      const { Responses, UnprocessedKeys } = await this.doc.send(
        new BatchGetCommand({ RequestItems: { [this.table]: { Keys: pending, ConsistentRead: true } } }),
      );
      for (const item of Responses?.[this.table] ?? []) found.set(String(item.pk), runFromItem(item));
      pending = (UnprocessedKeys?.[this.table]?.Keys ?? []) as Record<string, unknown>[];
      if (pending.length > 0) {
        if (round >= MAX_CONFLICT_RETRIES) throw new Error('BatchGetItem kept leaving keys unprocessed');
        await this.sleep(this.random() * Math.min(1000, 10 * 2 ** round));
      }
    }
    return pks.flatMap((pk) => found.get(pk) ?? []);
  }

  async listJobs(runId: string, page: PageRequest & { statuses?: readonly string[] }): Promise<Page<Job>> {
    const runPk = keys.run(runId).pk;
    let start: Record<string, unknown> | undefined =
      page.cursor === undefined
        ? undefined
        : decodeCursor(
            page.cursor,
            (key) => key.pk === runPk && typeof key.sk === 'string' && key.sk.startsWith('JOB#'),
          );
    const statuses = page.statuses ?? [];
    const filter = Object.fromEntries(statuses.map((status, i) => [`:s${i}`, status]));
    const jobs: Job[] = [];
    let next: Record<string, unknown> | undefined;
    // A filter applies after the read's Limit, so a filtered page may take a few reads to fill.
    for (let read = 0; read < (statuses.length > 0 ? MAX_FILTERED_PAGES : 1); read++) {
      const want = page.limit - jobs.length;
      const { Items = [], LastEvaluatedKey } = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :job)',
          ExpressionAttributeValues: { ':pk': runPk, ':job': 'JOB#', ...filter },
          ...(statuses.length > 0
            ? {
                FilterExpression: `#status IN (${Object.keys(filter).join(', ')})`,
                ExpressionAttributeNames: { '#status': 'status' },
                Limit: Math.max(want, 100),
              }
            : { Limit: want }),
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      const taken = Items.slice(0, want);
      jobs.push(...taken.map(jobFromItem));
      const last = taken.at(-1);
      // Cut short inside a page: resume after the last job shown, not after the page.
      next = taken.length < Items.length && last ? { pk: last.pk, sk: last.sk } : LastEvaluatedKey;
      if (!next || jobs.length >= page.limit) break;
      start = next;
    }
    return { items: jobs, ...(next ? { nextCursor: encodeCursor(next) } : {}) };
  }

  /** Sends a conditional write: true if it applied, false if its condition failed (an answer). */
  private async applies(command: PutCommand | UpdateCommand): Promise<boolean> {
    try {
      // Two calls, not one: `send` is overloaded per command type.
      await (command instanceof PutCommand ? this.doc.send(command) : this.doc.send(command));
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  /**
   * Runs a transaction. Returns the indexes of the items whose condition failed: none on success.
   * Conflicts with a concurrent transaction (AWS cancels one of two that touch the same item) are
   * retried with jittered exponential backoff.
   */
  private async transact(items: TransactItem[]): Promise<number[]> {
    return (await this.transactWithReasons(items)).failed;
  }

  /** `transact`, plus each failed item's old image (raw attribute values) when it asked for one. */
  private async transactWithReasons(
    items: TransactItem[],
  ): Promise<{ failed: number[]; oldItems: (Record<string, { N?: string; S?: string }> | undefined)[] }> {
    for (let retry = 0; ; retry++) {
      try {
        await this.doc.send(new TransactWriteCommand({ TransactItems: items }));
        return { failed: [], oldItems: [] };
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const reasons = error.CancellationReasons ?? [];
        const failed = reasons.flatMap((reason, index) =>
          reason.Code === 'ConditionalCheckFailed' ? [index] : [],
        );
        if (failed.length > 0) {
          return { failed, oldItems: reasons.map((reason) => reason.Item as Record<string, { N?: string }>) };
        }
        const retryable = reasons.some((reason) => RETRYABLE_REASONS.has(reason.Code ?? ''));
        if (!retryable || retry >= MAX_CONFLICT_RETRIES) throw error;
        await this.sleep(this.random() * Math.min(1000, 10 * 2 ** retry));
      }
    }
  }
}

/** The account's holder name for a job: unique across runs. */
function accountHolder(runId: string, jobId: string): string {
  return `${runId}#${jobId}`;
}

function encodeCursor(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** A cursor is the client's to hold, so it is checked like any input: it must point where it may. */
function decodeCursor(
  cursor: string,
  valid: (key: Record<string, unknown>) => boolean,
): Record<string, unknown> {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    key = undefined;
  }
  const ok =
    typeof key === 'object' &&
    key !== null &&
    !Array.isArray(key) &&
    Object.values(key).every((value) => typeof value === 'string') &&
    valid(key as Record<string, unknown>);
  if (!ok) {
    throw new ValidationError('The cursor is not one this list gave out.', [
      { field: 'cursor', message: 'pass the next_cursor of the previous page unchanged' },
    ]);
  }
  return key as Record<string, unknown>;
}

function isRunsCursor(key: Record<string, unknown>): boolean {
  return (
    Object.keys(key).length === 4 &&
    typeof key.pk === 'string' &&
    key.pk.startsWith('RUN#') &&
    key.sk === 'RUN' &&
    key[TABLE_SCHEMA.runsIndex.partitionKey] === RUN_LIST &&
    typeof key.createdAt === 'string'
  );
}

function queuedJobFromItem(item: Record<string, unknown>): QueuedJob {
  const queuedKey = String(item[TABLE_SCHEMA.queuedIndex.sortKey]);
  return {
    jobId: String(item.sk).slice('JOB#'.length),
    phone: String(item.phone),
    attempt: Number(item.attempt),
    notBefore: Number(queuedKey.slice(0, queuedKey.indexOf('#'))),
    ...(typeof item.timeZone === 'string' ? { timeZone: item.timeZone } : {}),
  };
}

function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

/** Raised instead of a second attempt of a request that `sendOnce` guards. */
class NotResent extends Error {
  override readonly name = 'NotResent';
  constructor(readonly firstError: unknown) {
    super('a request whose outcome is not known is not sent again');
  }
}

/**
 * `command`, sent at most once whatever the client's retry settings: the SDK retries inside its
 * retry middleware by running the steps after it again, so a middleware there (before the request is
 * signed and sent) sees every attempt and refuses the second. The retry strategy does not retry the
 * refusal (no status, no code: a client error). The first attempt's error is kept for the caller.
 */
function sendOnce<C extends { middlewareStack: BatchWriteCommand['middlewareStack'] }>(command: C): C {
  let attempts = 0;
  let lastError: unknown;
  command.middlewareStack.add(
    (next) => async (args) => {
      attempts += 1;
      if (attempts > 1) throw new NotResent(lastError);
      try {
        return await next(args);
      } catch (error) {
        lastError = error;
        throw error;
      }
    },
    // override: a document client command's stack is concatenated twice (lib-dynamodb does the same).
    { step: 'deserialize', priority: 'high', name: 'dialgateSendOnce', override: true },
  );
  return command;
}

/** DynamoDB answered with a 4xx (throttled, invalid, …): the request was refused, nothing written. */
function isRefusal(error: unknown): boolean {
  const first = error instanceof NotResent ? error.firstError : error;
  const status = (first as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
    ?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500;
}

/**
 * `work` over `items`, `concurrency` at a time. On a failure no new item is started, every one in
 * flight is awaited, and then the first failure is thrown: nothing is left running unobserved.
 */
async function inPool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failure) throw failure.error;
}

function runFromItem(item: Record<string, unknown>): Run {
  return {
    runId: String(item.runId),
    createdAt: String(item.createdAt),
    concurrency: Number(item.concurrency),
    control: item.control as Run['control'],
    totalLeads: Number(item.totalLeads),
    ingestedLeads: Number(item.ingestedLeads),
    active: Number(item.active),
    holders: (item.holders ?? {}) as Run['holders'],
    queued: Number(item.queued),
    completed: Number(item.completed),
    failed: Number(item.failed),
    canceled: Number(item.canceled),
    outcomes: (item.outcomes ?? {}) as Run['outcomes'],
    options: (item.options ?? {}) as RunOptions,
    chunkCount: Number(item.chunkCount ?? 0),
    ...(typeof item.controlAt === 'string' ? { controlAt: item.controlAt } : {}),
    ...(item.hangup === true ? { hangup: true } : {}),
  };
}

function jobFromItem(item: Record<string, unknown>): Job {
  const { pk: _pk, sk: _sk, entity: _entity, queuedRun: _qr, queuedKey: _qk, timeZone: _tz, ...rest } = item;
  return rest as unknown as Job;
}
