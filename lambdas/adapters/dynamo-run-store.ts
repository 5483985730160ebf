// (adapter) RunStore on DynamoDB. Every slot change is one TransactWriteItems whose first item is the
// run (the semaphore: `active` and the named holders) and whose second is the job, so the cap and
// the job's state cannot disagree. ConditionalCheckFailed is an answer, not an error.

import { type DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
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
import { keys, OPEN_RUNS, RUN_LIST, TABLE_SCHEMA } from './table-schema.ts';

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

export interface DynamoRunStoreOptions {
  tableName: string;
  /** Backoff between retries of a transaction cancelled by a conflict; injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** The account item's sort key: one per deployment; tests use their own. */
  accountName?: string;
}

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
  private accountReady: Promise<void> | undefined;

  constructor(client: DynamoDBClient, options: DynamoRunStoreOptions) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
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

  async ingestChunk(
    runId: string,
    chunk: number,
    jobs: NewJob[],
    at: string,
  ): Promise<'ingested' | 'duplicate'> {
    // A chunk that arrives after a cancel is ingested as canceled leads, so that the run still ends.
    let canceled = false;
    for (let tries = 0; tries < 3; tries++) {
      const failed = await this.transact(this.ingestItems(runId, chunk, jobs, at, canceled));
      if (failed.length === 0) return 'ingested';
      if (failed.includes(0)) return 'duplicate';
      if (!failed.includes(1)) break;
      const run = await this.getRun(runId);
      if (!run) break;
      canceled = run.control === 'canceled';
    }
    throw new Error(`ingest of chunk ${chunk} failed: run missing or job exists`);
  }

  private ingestItems(
    runId: string,
    chunk: number,
    jobs: NewJob[],
    at: string,
    canceled: boolean,
  ): TransactItem[] {
    return [
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
          UpdateExpression: canceled
            ? 'ADD ingestedLeads :n, canceled :n SET outcomes.#canceled = if_not_exists(outcomes.#canceled, :zero) + :n'
            : 'ADD ingestedLeads :n, queued :n',
          ConditionExpression: canceled
            ? 'attribute_exists(pk) AND #control = :canceled'
            : 'attribute_exists(pk) AND #control <> :canceled',
          ExpressionAttributeNames: {
            '#control': 'control',
            ...(canceled ? { '#canceled': 'canceled' } : {}),
          },
          ExpressionAttributeValues: {
            ':n': jobs.length,
            ':canceled': 'canceled',
            ...(canceled ? { ':zero': 0 } : {}),
          },
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
              attempt: 0,
              queuedAt: at,
              ...(job.timeZone ? { timeZone: job.timeZone } : {}),
              ...(canceled
                ? { status: 'canceled', outcome: 'canceled', endedAt: at }
                : {
                    status: 'queued',
                    ...(job.notBefore ? { notBefore: job.notBefore } : {}),
                    [TABLE_SCHEMA.queuedIndex.partitionKey]: runId,
                    [TABLE_SCHEMA.queuedIndex.sortKey]: keys.queuedKey(job.notBefore ?? 0, job.jobId),
                  }),
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        }),
      ),
    ];
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
    try {
      await this.doc.send(
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
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }

  async claimWake(runId: string, atMs: number, nowMs: number): Promise<boolean> {
    try {
      await this.doc.send(
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
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
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
