// (adapter) Run controls: one conditional write of the run's `control`, which every acquire reads; the
// start of a scheduled run; and the sweeps that end a canceled run's queued jobs canceled and an
// expired run's `expired`, 99 jobs and the run a transaction.

import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ControlChange, ControlResult, QueueStore, RunControlStore } from '../../core/ports.ts';
import { keys, TABLE_SCHEMA } from '../../definitions/table-schema.ts';
import type { DynamoRuns } from './runs.ts';
import { type DynamoTable, isConditionalCheckFailed, type TransactItem } from './table.ts';

/** Jobs per cancel transaction: 99 jobs and the run item make DynamoDB's 100 items. */
const CANCEL_BATCH = 99;

export class DynamoControls implements RunControlStore {
  constructor(
    private readonly t: DynamoTable,
    private readonly runs: DynamoRuns,
    private readonly queue: QueueStore,
  ) {}

  async setControl(runId: string, change: ControlChange): Promise<ControlResult> {
    const from = Object.fromEntries(change.from.map((control, i) => [`:from${i}`, control]));
    // The reason is the change's own: a change without one (a person's pause, a resume) clears it.
    const reason = change.reason === undefined ? ' REMOVE pauseReason' : ', pauseReason = :reason';
    const sameControl =
      change.ifControlAt === undefined
        ? ''
        : change.ifControlAt === null
          ? ' AND attribute_not_exists(controlAt)'
          : ' AND controlAt = :ifControlAt';
    const update = {
      TableName: this.t.name,
      Key: keys.run(runId),
      UpdateExpression: `SET #control = :to, controlAt = :at${change.hangup ? ', hangup = :true' : ''}${reason}`,
      // Not on a completed run: every lead final means queued = 0 (with slot counters: the leads
      // made final on them, run-slots.ts), active = 0 and all ingested.
      ConditionExpression:
        `attribute_exists(pk) AND #control IN (${Object.keys(from).join(', ')}) ` +
        `AND (queued > :countersFinal OR active > :zero OR ingestedLeads < totalLeads)${sameControl}`,
      ExpressionAttributeNames: { '#control': 'control' },
      ExpressionAttributeValues: {
        ':to': change.to,
        ':at': change.at,
        ':zero': 0,
        ':countersFinal': await this.runs.countersFinal(runId),
        ...from,
        ...(change.hangup ? { ':true': true } : {}),
        ...(change.reason === undefined ? {} : { ':reason': change.reason }),
        ...(typeof change.ifControlAt === 'string' ? { ':ifControlAt': change.ifControlAt } : {}),
      },
    };
    const shards = await this.runs.slotShardsOf(runId);
    if (shards.length > 0) {
      // The run's counters take the control in the same transaction: once it returns, no counter
      // hands out a slot the control forbids.
      const failed = await this.t.transact([
        { Update: update },
        ...shards.map((shard) =>
          this.copyToCounter(runId, shard.shard, 'SET #control = :to', { ':to': change.to }),
        ),
      ]);
      if (failed.length === 0) {
        const run = await this.runs.getRun(runId);
        if (run) return { kind: 'changed', run };
      }
      const run = await this.runs.getRun(runId);
      return run ? { kind: 'refused', run } : { kind: 'not-found' };
    }
    try {
      const { Attributes } = await this.t.doc.send(new UpdateCommand({ ...update, ReturnValues: 'ALL_NEW' }));
      return { kind: 'changed', run: await this.runs.runWithHolders(Attributes ?? {}) };
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      const run = await this.runs.getRun(runId);
      return run ? { kind: 'refused', run } : { kind: 'not-found' };
    }
  }

  async startScheduledRun(runId: string, nowMs: number): Promise<boolean> {
    const start = {
      TableName: this.t.name,
      Key: keys.run(runId),
      UpdateExpression: 'REMOVE scheduledFor',
      ConditionExpression: 'scheduledFor <= :now',
      ExpressionAttributeValues: { ':now': nowMs },
    };
    const shards = await this.runs.slotShardsOf(runId);
    if (shards.length === 0) return this.t.applies(new UpdateCommand(start));
    // The run and its counters start together.
    const failed = await this.t.transact([
      { Update: start },
      ...shards.map((shard) => this.copyToCounter(runId, shard.shard, 'REMOVE scheduledFor')),
    ]);
    return failed.length === 0;
  }

  /** One of the run's slot counters takes a copy of what an acquire's condition reads on the run. */
  private copyToCounter(
    runId: string,
    shard: number,
    update: string,
    values?: Record<string, unknown>,
  ): TransactItem {
    return {
      Update: {
        TableName: this.t.name,
        Key: keys.runSlots(runId, shard),
        UpdateExpression: update,
        ...(values
          ? { ExpressionAttributeNames: { '#control': 'control' }, ExpressionAttributeValues: values }
          : {}),
      },
    };
  }

  async cancelQueuedJobs(runId: string, limit: number, at: string): Promise<number> {
    return this.endQueuedJobs(runId, limit, at, {
      state: 'canceled',
      outcome: 'canceled',
      condition: '#control = :canceled',
      values: { ':canceled': 'canceled' },
    });
  }

  async expireQueuedJobs(runId: string, limit: number, at: string, nowMs: number): Promise<number> {
    return this.endQueuedJobs(runId, limit, at, {
      state: 'failed',
      outcome: 'expired',
      condition: '#control <> :canceled AND expiresAtMs <= :now',
      values: { ':canceled': 'canceled', ':now': nowMs },
    });
  }

  /** Queued jobs made final without a call, counted on the run, only while the run's `condition` holds. */
  private async endQueuedJobs(
    runId: string,
    limit: number,
    at: string,
    end: {
      state: 'canceled' | 'failed';
      outcome: string;
      condition: string;
      values: Record<string, unknown>;
    },
  ): Promise<number> {
    let ended = 0;
    // The index is eventually consistent: a job it still lists may be gone. Each is tried once here.
    const tried = new Set<string>();
    while (ended < limit) {
      const listed = await this.queue.nextQueuedJobs(
        runId,
        Math.min(CANCEL_BATCH, limit - ended) + tried.size,
      );
      let batch = listed.filter((job) => !tried.has(job.jobId)).slice(0, CANCEL_BATCH);
      if (batch.length === 0) break;
      for (const job of batch) tried.add(job.jobId);
      while (batch.length > 0) {
        const failed = await this.t.transact([
          {
            Update: {
              TableName: this.t.name,
              Key: keys.run(runId),
              UpdateExpression:
                'SET queued = queued - :n, #state = #state + :n, ' +
                'outcomes.#outcome = if_not_exists(outcomes.#outcome, :zero) + :n',
              ConditionExpression: end.condition,
              ExpressionAttributeNames: {
                '#control': 'control',
                '#state': end.state,
                '#outcome': end.outcome,
              },
              ExpressionAttributeValues: { ':n': batch.length, ':zero': 0, ...end.values },
            },
          },
          ...batch.map(
            (job): TransactItem => ({
              Update: {
                TableName: this.t.name,
                Key: keys.job(runId, job.jobId),
                UpdateExpression:
                  'SET #status = :state, outcome = :outcome, endedAt = :at REMOVE #qrun, #qkey, notBefore',
                // Counted only if it moves now: a job canceled before, or taken, fails and is left out.
                ConditionExpression: '#status = :queued AND attempt = :attempt',
                ExpressionAttributeNames: {
                  '#status': 'status',
                  '#qrun': TABLE_SCHEMA.queuedIndex.partitionKey,
                  '#qkey': TABLE_SCHEMA.queuedIndex.sortKey,
                },
                ExpressionAttributeValues: {
                  ':state': end.state,
                  ':outcome': end.outcome,
                  ':queued': 'queued',
                  ':attempt': job.attempt,
                  ':at': at,
                },
              },
            }),
          ),
        ]);
        if (failed.length === 0) {
          ended += batch.length;
          break;
        }
        if (failed.includes(0)) return ended; // the run's condition does not hold (any more)
        const stale = new Set(failed.map((index) => index - 1));
        batch = batch.filter((_, index) => !stale.has(index));
      }
    }
    return ended;
  }
}
