// (adapter) The table as the DynamoDB store's parts share it: the document clients, the table's name,
// and the plumbing of conditional writes. A failed condition is an answer (cap reached, already
// released), not an error; a transaction cancelled by another one on the same item (which AWS does,
// and DynamoDB Local never does) or by throttling is retried with jittered backoff.

import { type DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  PutCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  type UpdateCommand,
} from '@aws-sdk/lib-dynamodb';

export type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/** Conflicting transactions on the run item are retried this often before the caller sees an error. */
export const MAX_CONFLICT_RETRIES = 8;
/** Cancellation reasons that say "not now" rather than "no": another transaction, or throttling. */
const RETRYABLE_REASONS = new Set([
  'TransactionConflict',
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
  'RequestLimitExceeded',
]);

interface TableOptions {
  tableName: string;
  /** Backoff between retries of a transaction cancelled by a conflict; injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** The client batch writes go through (default: the table's own client). */
  batchWriter?: DynamoDBClient;
  /** Wall clock, ms since the epoch. Tests move it. */
  now?: () => number;
}

export class DynamoTable {
  readonly doc: DynamoDBDocumentClient;
  readonly batchDoc: DynamoDBDocumentClient;
  readonly name: string;
  readonly sleep: (ms: number) => Promise<void>;
  readonly random: () => number;
  readonly now: () => number;

  constructor(client: DynamoDBClient, options: TableOptions) {
    const translate = { marshallOptions: { removeUndefinedValues: true } };
    this.doc = DynamoDBDocumentClient.from(client, translate);
    this.batchDoc = options.batchWriter
      ? DynamoDBDocumentClient.from(options.batchWriter, translate)
      : this.doc;
    this.name = options.tableName;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
  }

  /** Sends a conditional write: true if it applied, false if its condition failed (an answer). */
  async applies(command: PutCommand | UpdateCommand): Promise<boolean> {
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
  async transact(items: TransactItem[]): Promise<number[]> {
    return (await this.transactWithReasons(items)).failed;
  }

  /** `transact`, plus each failed item's old image (raw attribute values) when it asked for one. */
  async transactWithReasons(
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

export function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}
