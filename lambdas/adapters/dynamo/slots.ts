// (adapter) The semaphore (docs/DESIGN.md, invariant 2). Every slot change is one TransactWriteItems
// whose first item is the run (`active` and the named holders) and whose second is the job, so the
// cap and the job's state cannot disagree; with account limits the account item is the third. A
// holder is removed only on the condition that it is there with the same attempt: a duplicate or
// late release fails it and changes nothing.

import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type {
  AccountLimits,
  AcquireResult,
  QueuedJob,
  Release,
  ReleaseResult,
  RunReader,
  SlotStore,
} from '../../core/ports.ts';
import { keys, TABLE_SCHEMA } from '../../definitions/table-schema.ts';
import type { DynamoAccount } from './account.ts';
import { type DynamoTable, isConditionalCheckFailed, type TransactItem } from './table.ts';

export class DynamoSlots implements SlotStore {
  constructor(
    private readonly t: DynamoTable,
    private readonly runs: RunReader,
    private readonly account: DynamoAccount,
  ) {}

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
    if (withAccount) await this.account.ensure();
    const holder = { attempt, state: 'dialing', since: at, ...(withAccount ? { account: true } : {}) };
    const items: TransactItem[] = [
      {
        Update: {
          TableName: this.t.name,
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
          TableName: this.t.name,
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
    if (withAccount) items.push(this.account.acquireItem(runId, job.jobId, attempt, at, account));
    const { failed, oldItems } = await this.t.transactWithReasons(items);
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

  async recordCallSid(runId: string, jobId: string, attempt: number, callSid: string): Promise<void> {
    // Refused: already saved, or a later attempt: fine either way.
    await this.t.applies(
      new UpdateCommand({
        TableName: this.t.name,
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
      await this.t.doc.send(
        new UpdateCommand({
          TableName: this.t.name,
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
      await this.t.doc.send(
        new UpdateCommand({
          TableName: this.t.name,
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
    const accountSlot =
      release.accountSlot ?? (await this.runs.getRun(runId))?.holders[jobId]?.account === true;
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
          TableName: this.t.name,
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
          TableName: this.t.name,
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
    if (accountSlot) items.push(this.account.releaseItem(runId, jobId));
    let failed = await this.t.transact(items);
    // The account holder alone is missing (the account item was reset by hand): the run's slot must
    // still be freed, or it would leak.
    if (failed.length > 0 && failed.every((index) => index === 2))
      failed = await this.t.transact(items.slice(0, 2));
    if (failed.length === 0) return 'released';
    if (requeue && failed.includes(0)) {
      // Refused because the run was canceled meanwhile? Then the lead is canceled instead of queued.
      const run = await this.runs.getRun(runId);
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
}
