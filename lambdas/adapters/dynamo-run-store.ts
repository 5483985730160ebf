// (adapter) RunStore on DynamoDB. Every slot change is one TransactWriteItems whose first item is the
// run (the semaphore: `active` and the named holders) and whose second is the job, so the cap and
// the job's state cannot disagree. ConditionalCheckFailed is an answer, not an error.

import { type DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { Job, NewJob, Run } from '../core/model.ts';
import type {
  AcquireResult,
  CreateRunResult,
  IdempotencyClaim,
  NewRun,
  QueuedJob,
  Release,
  ReleaseResult,
  RunStore,
} from '../core/ports.ts';
import { keys, OPEN_RUNS, TABLE_SCHEMA } from './table-schema.ts';

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

export interface DynamoRunStoreOptions {
  tableName: string;
  /** Backoff between retries of a transaction cancelled by a conflict; injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

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

  constructor(client: DynamoDBClient, options: DynamoRunStoreOptions) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
    this.table = options.tableName;
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
        [TABLE_SCHEMA.openRunsIndex.partitionKey]: OPEN_RUNS,
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

  async ingestChunk(
    runId: string,
    chunk: number,
    jobs: NewJob[],
    at: string,
  ): Promise<'ingested' | 'duplicate'> {
    const items: TransactItem[] = [
      // The marker makes the whole chunk idempotent: a redelivered message fails here.
      {
        Put: {
          TableName: this.table,
          Item: { ...keys.chunk(runId, chunk), entity: 'chunk', leads: jobs.length, at },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      {
        Update: {
          TableName: this.table,
          Key: keys.run(runId),
          UpdateExpression: 'ADD ingestedLeads :n, queued :n',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':n': jobs.length },
        },
      },
      ...jobs.map(
        (job): TransactItem => ({
          Put: {
            TableName: this.table,
            Item: {
              ...keys.job(runId, job.jobId),
              entity: 'job',
              runId,
              jobId: job.jobId,
              phone: job.phone,
              attributes: job.attributes,
              status: 'queued',
              attempt: 0,
              queuedAt: at,
              [TABLE_SCHEMA.queuedIndex.partitionKey]: runId,
              [TABLE_SCHEMA.queuedIndex.sortKey]: job.jobId,
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        }),
      ),
    ];
    const failed = await this.transact(items);
    if (failed.length === 0) return 'ingested';
    if (failed.includes(0)) return 'duplicate';
    throw new Error(
      `ingest of chunk ${chunk} failed on items ${failed.join(', ')}: run missing or job exists`,
    );
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

  async nextQueuedJobs(runId: string, limit: number): Promise<QueuedJob[]> {
    const { Items = [] } = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: TABLE_SCHEMA.queuedIndex.name,
        KeyConditionExpression: '#run = :run',
        ExpressionAttributeNames: { '#run': TABLE_SCHEMA.queuedIndex.partitionKey },
        ExpressionAttributeValues: { ':run': runId },
        Limit: limit,
      }),
    );
    return Items.map((item) => ({
      jobId: String(item.sk).slice('JOB#'.length),
      phone: String(item.phone),
      attempt: Number(item.attempt),
    }));
  }

  async acquireSlot(runId: string, job: QueuedJob, at: string): Promise<AcquireResult> {
    const attempt = job.attempt + 1;
    const failed = await this.transact([
      {
        Update: {
          TableName: this.table,
          Key: keys.run(runId),
          UpdateExpression: 'SET active = active + :one, queued = queued - :one, holders.#job = :holder',
          ConditionExpression:
            '#control = :running AND active < concurrency AND attribute_not_exists(holders.#job)',
          ExpressionAttributeNames: { '#job': job.jobId, '#control': 'control' },
          ExpressionAttributeValues: {
            ':one': 1,
            ':running': 'running',
            ':holder': { attempt, state: 'dialing', since: at },
          },
        },
      },
      {
        Update: {
          TableName: this.table,
          Key: keys.job(runId, job.jobId),
          // Leaving the sparse index is part of taking the slot.
          UpdateExpression: 'SET #status = :dialing, attempt = :attempt, dialedAt = :at REMOVE #qrun, #qkey',
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
    ]);
    if (failed.length === 0) return 'acquired';
    // The job's own condition first: a job already taken says nothing about the run's free slots.
    return failed.includes(1) ? 'job-taken' : 'no-slot';
  }

  async recordCallSid(runId: string, jobId: string, attempt: number, callSid: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.job(runId, jobId),
          UpdateExpression: 'SET callSid = :sid',
          ConditionExpression: 'attempt = :attempt AND attribute_not_exists(callSid)',
          ExpressionAttributeValues: { ':sid': callSid, ':attempt': attempt },
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailed(error)) return; // already saved, or a later attempt: fine either way
      throw error;
    }
  }

  async markCalling(runId: string, jobId: string, attempt: number, at: string): Promise<'applied' | 'stale'> {
    const failed = await this.transact([
      {
        Update: {
          TableName: this.table,
          Key: keys.run(runId),
          UpdateExpression: 'SET holders.#job.#state = :calling',
          ConditionExpression: 'holders.#job.attempt = :attempt AND holders.#job.#state = :dialing',
          ExpressionAttributeNames: { '#job': jobId, '#state': 'state' },
          ExpressionAttributeValues: { ':attempt': attempt, ':dialing': 'dialing', ':calling': 'calling' },
        },
      },
      {
        Update: {
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
        },
      },
    ]);
    return failed.length === 0 ? 'applied' : 'stale';
  }

  async releaseSlot(release: Release): Promise<ReleaseResult> {
    const { runId, jobId, attempt, from, to, at } = release;
    const requeue = to === 'queued';
    const outcome = release.outcome ?? to;
    const runUpdate = requeue
      ? 'SET active = active - :one, queued = queued + :one REMOVE holders.#job'
      : 'SET active = active - :one, #final = #final + :one, outcomes.#outcome = if_not_exists(outcomes.#outcome, :zero) + :one REMOVE holders.#job';
    const jobSet = requeue
      ? // Back in the sparse index: the next dispatcher finds it again.
        'SET #status = :queued, #qrun = :runId, #qkey = :jobId'
      : 'SET #status = :to, outcome = :outcome, endedAt = :at' +
        (release.errorCode === undefined ? '' : ', errorCode = :code') +
        (release.callSid === undefined ? '' : ', callSid = if_not_exists(callSid, :sid)');

    const failed = await this.transact([
      {
        Update: {
          TableName: this.table,
          Key: keys.run(runId),
          UpdateExpression: runUpdate,
          // Named and conditional: a duplicate or late release finds no holder and changes nothing.
          ConditionExpression: 'holders.#job.attempt = :attempt AND holders.#job.#state = :from',
          ExpressionAttributeNames: {
            '#job': jobId,
            '#state': 'state',
            ...(requeue ? {} : { '#final': to, '#outcome': outcome }),
          },
          ExpressionAttributeValues: {
            ':one': 1,
            ':attempt': attempt,
            ':from': from,
            ...(requeue ? {} : { ':zero': 0 }),
          },
        },
      },
      {
        Update: {
          TableName: this.table,
          Key: keys.job(runId, jobId),
          UpdateExpression: jobSet,
          ConditionExpression: 'attempt = :attempt AND #status = :from',
          ExpressionAttributeNames: {
            '#status': 'status',
            ...(requeue
              ? { '#qrun': TABLE_SCHEMA.queuedIndex.partitionKey, '#qkey': TABLE_SCHEMA.queuedIndex.sortKey }
              : {}),
          },
          ExpressionAttributeValues: {
            ':attempt': attempt,
            ':from': from,
            ...(requeue
              ? { ':queued': 'queued', ':runId': runId, ':jobId': jobId }
              : { ':to': to, ':outcome': outcome, ':at': at }),
            ...(requeue || release.errorCode === undefined ? {} : { ':code': release.errorCode }),
            ...(requeue || release.callSid === undefined ? {} : { ':sid': release.callSid }),
          },
        },
      },
    ]);
    return failed.length === 0 ? 'released' : 'stale';
  }

  /**
   * Runs a transaction. Returns the indexes of the items whose condition failed: none on success. Conflicts with a concurrent transaction (AWS cancels one of two that touch the same item)
   * are retried with jittered exponential backoff.
   */
  private async transact(items: TransactItem[]): Promise<number[]> {
    for (let retry = 0; ; retry++) {
      try {
        await this.doc.send(new TransactWriteCommand({ TransactItems: items }));
        return [];
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const reasons = error.CancellationReasons ?? [];
        const conditionFailed = reasons.flatMap((reason, index) =>
          reason.Code === 'ConditionalCheckFailed' ? [index] : [],
        );
        if (conditionFailed.length > 0) return conditionFailed;
        const retryable = reasons.some((reason) => RETRYABLE_REASONS.has(reason.Code ?? ''));
        if (!retryable || retry >= MAX_CONFLICT_RETRIES) throw error;
        await this.sleep(this.random() * Math.min(1000, 10 * 2 ** retry));
      }
    }
  }
}

function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
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
  };
}

function jobFromItem(item: Record<string, unknown>): Job {
  const { pk: _pk, sk: _sk, entity: _entity, queuedRun: _qr, queuedKey: _qk, ...rest } = item;
  return rest as unknown as Job;
}
