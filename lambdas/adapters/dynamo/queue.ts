// (adapter) A run's queued jobs, through the sparse `queued` index (only queued jobs carry its keys,
// so finding the next lead stays O(1) as a run grows), and the run's delayed wake-ups.

import { QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { QueuedJob, QueueStore } from '../../core/ports.ts';
import { keys, TABLE_SCHEMA } from '../../definitions/table-schema.ts';
import { queuedJobFromItem } from './items.ts';
import type { DynamoTable } from './table.ts';

export class DynamoQueue implements QueueStore {
  constructor(private readonly t: DynamoTable) {}

  async nextQueuedJobs(runId: string, limit: number, dueBy?: number): Promise<QueuedJob[]> {
    const { Items = [] } = await this.t.doc.send(
      new QueryCommand({
        TableName: this.t.name,
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
    await this.t.applies(
      new UpdateCommand({
        TableName: this.t.name,
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

  async endQueuedJob(runId: string, job: QueuedJob, outcome: string, at: string): Promise<'ended' | 'stale'> {
    const failed = await this.t.transact([
      {
        Update: {
          TableName: this.t.name,
          Key: keys.run(runId),
          UpdateExpression:
            'SET queued = queued - :one, failed = failed + :one, ' +
            'outcomes.#outcome = if_not_exists(outcomes.#outcome, :zero) + :one',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#outcome': outcome },
          ExpressionAttributeValues: { ':one': 1, ':zero': 0 },
        },
      },
      {
        Update: {
          TableName: this.t.name,
          Key: keys.job(runId, job.jobId),
          // Out of the queued index, final without a call: the attempt count stays (no call was made).
          UpdateExpression:
            'SET #status = :failed, outcome = :outcome, endedAt = :at REMOVE #qrun, #qkey, notBefore',
          // Still queued at the attempt seen: a job taken, canceled or ended meanwhile stays as it is.
          ConditionExpression: '#status = :queued AND attempt = :attempt',
          ExpressionAttributeNames: {
            '#status': 'status',
            '#qrun': TABLE_SCHEMA.queuedIndex.partitionKey,
            '#qkey': TABLE_SCHEMA.queuedIndex.sortKey,
          },
          ExpressionAttributeValues: {
            ':failed': 'failed',
            ':queued': 'queued',
            ':outcome': outcome,
            ':attempt': job.attempt,
            ':at': at,
          },
        },
      },
    ]);
    return failed.length === 0 ? 'ended' : 'stale';
  }

  async claimWake(runId: string, atMs: number, nowMs: number): Promise<boolean> {
    return this.t.applies(
      new UpdateCommand({
        TableName: this.t.name,
        Key: keys.run(runId),
        UpdateExpression: 'SET wakeAt = :at',
        // A wake-up already armed for this time or earlier (and not yet past) covers this one.
        ConditionExpression:
          'attribute_exists(pk) AND (attribute_not_exists(wakeAt) OR wakeAt < :now OR wakeAt > :at)',
        ExpressionAttributeValues: { ':at': atMs, ':now': nowMs },
      }),
    );
  }
}
