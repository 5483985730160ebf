// (adapter) The account item: the account-wide semaphore (live calls across every run, each held by
// a named holder) and pace (the next free calls.create time), and the runs waiting for an account
// slot. Its share of an acquire or a release is an item of the same transaction as the run's.

import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { AccountLimits } from '../../core/ports.ts';
import { keys } from '../../definitions/table-schema.ts';
import { type DynamoTable, isConditionalCheckFailed, type TransactItem } from './table.ts';

/** The account's holder name for a job: unique across runs. */
function accountHolder(runId: string, jobId: string): string {
  return `${runId}#${jobId}`;
}

export class DynamoAccount {
  private readonly key: { pk: string; sk: string };
  private ready: Promise<void> | undefined;

  /** `name`: the account item's sort key, one per deployment; tests use their own. */
  constructor(
    private readonly t: DynamoTable,
    name?: string,
  ) {
    this.key = keys.account(name);
  }

  /** The account's share of an acquire: its own slot under the account cap, and the CPS pace. */
  acquireItem(
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
        TableName: this.t.name,
        Key: this.key,
        UpdateExpression: update,
        ConditionExpression: conditions.join(' AND '),
        ExpressionAttributeNames: { '#holder': accountHolder(runId, jobId) },
        ExpressionAttributeValues: values,
        // Tells "account full" from "paced" when the condition fails.
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }

  /** The account's share of a release: its holder removed, only if it is there. */
  releaseItem(runId: string, jobId: string): TransactItem {
    return {
      Update: {
        TableName: this.t.name,
        Key: this.key,
        UpdateExpression: 'SET active = active - :one REMOVE holders.#holder',
        ConditionExpression: 'attribute_exists(holders.#holder)',
        ExpressionAttributeNames: { '#holder': accountHolder(runId, jobId) },
        ExpressionAttributeValues: { ':one': 1 },
      },
    };
  }

  /** The account item, made once: a nested holder cannot be set on an item that does not exist. */
  ensure(): Promise<void> {
    this.ready ??= this.t.doc
      .send(
        new PutCommand({
          TableName: this.t.name,
          Item: { ...this.key, entity: 'account', active: 0, holders: {}, nextCreateAt: 0 },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      )
      .then(
        () => undefined,
        (error) => {
          if (isConditionalCheckFailed(error)) return;
          this.ready = undefined;
          throw error;
        },
      );
    return this.ready;
  }

  async addWaitingRun(runId: string): Promise<void> {
    await this.ensure();
    await this.t.doc.send(
      new UpdateCommand({
        TableName: this.t.name,
        Key: this.key,
        UpdateExpression: 'ADD waiting :run',
        ExpressionAttributeValues: { ':run': new Set([runId]) },
      }),
    );
  }

  async takeWaitingRuns(): Promise<string[]> {
    try {
      // Read and cleared in one write: each waiting run is handed to exactly one releaser.
      const { Attributes } = await this.t.doc.send(
        new UpdateCommand({
          TableName: this.t.name,
          Key: this.key,
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
}
