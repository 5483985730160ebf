// (adapter) The table as the DynamoDB store's parts share it: the document clients, the table's name,
// and the plumbing of conditional writes. A failed condition is an answer (cap reached, already
// released), not an error; a transaction cancelled by another one on the same item (which AWS does,
// and DynamoDB Local never does) or by throttling is retried with jittered backoff. Every logical
// transaction carries one ClientRequestToken, reused by each of its retries: when an answer is lost
// after the transaction succeeded (a timeout, a dropped connection), the retry is recognised by
// DynamoDB as the same request (for 10 minutes) and answered with success, not applied again.

import { randomUUID } from 'node:crypto';
import { type DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  PutCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  type UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { inTurn } from './item-turns.ts';

export type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/** Retries of a request whose answer was lost, or of a batch that left keys unprocessed. */
export const MAX_CONFLICT_RETRIES = 8;

/** Keys BatchGetItem takes in one request. */
const BATCH_GET_MAX = 100;
/**
 * A write that another transaction keeps out (TransactionConflict) or that is throttled is retried
 * until this much backoff has been slept: a burst of releases on one run item (a hundred calls that
 * end together) drains one transaction at a time, and the webhook must not give up and lose a final
 * callback meanwhile. Within the webhook's 10 s timeout and Twilio's 15 s callback timeout.
 */
export const CONTENDED_RETRY_BUDGET_MS = 6_000;
/** Longest single backoff of a contended write: short enough to take the item when it is free. */
const CONTENDED_BACKOFF_CAP_MS = 250;

/**
 * The jittered backoff before retry `retry` (0-based) of a contended write, or undefined once
 * `spent` (time spent on the write so far) has used the budget.
 */
export function contendedBackoff(retry: number, spent: number, random: () => number): number | undefined {
  if (spent >= CONTENDED_RETRY_BUDGET_MS || retry >= 200) return undefined;
  return random() * Math.min(CONTENDED_BACKOFF_CAP_MS, 10 * 2 ** retry);
}
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
    retryTransactionConflicts(client, options.sleep);
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

  /**
   * Reads the items of `keys`, any number of them (BatchGetItem takes 100 a request), asking again
   * after a jittered backoff for the keys DynamoDB left unprocessed. Items come in no given order;
   * absent ones are left out.
   */
  async batchGet(
    keys: readonly Record<string, unknown>[],
    read: { consistent?: boolean; projection?: string; names?: Record<string, string> } = {},
  ): Promise<Record<string, unknown>[]> {
    const found: Record<string, unknown>[] = [];
    for (let start = 0; start < keys.length; start += BATCH_GET_MAX) {
      let pending = keys.slice(start, start + BATCH_GET_MAX);
      for (let round = 0; pending.length > 0; round++) {
        const { Responses, UnprocessedKeys } = await this.doc.send(
          new BatchGetCommand({
            RequestItems: {
              [this.name]: {
                Keys: [...pending],
                ...(read.consistent ? { ConsistentRead: true } : {}),
                ...(read.projection ? { ProjectionExpression: read.projection } : {}),
                ...(read.names ? { ExpressionAttributeNames: read.names } : {}),
              },
            },
          }),
        );
        found.push(...(Responses?.[this.name] ?? []));
        pending = (UnprocessedKeys?.[this.name]?.Keys ?? []) as Record<string, unknown>[];
        if (pending.length > 0) {
          if (round >= MAX_CONFLICT_RETRIES) throw new Error('BatchGetItem kept leaving keys unprocessed');
          await this.sleep(this.random() * Math.min(1000, 10 * 2 ** round));
        }
      }
    }
    return found;
  }

  /** Sends a conditional write: true if it applied, false if its condition failed (an answer). */
  async applies(command: PutCommand | UpdateCommand | DeleteCommand): Promise<boolean> {
    try {
      // Three calls, not one: `send` is overloaded per command type.
      await (command instanceof PutCommand
        ? this.doc.send(command)
        : command instanceof DeleteCommand
          ? this.doc.send(command)
          : this.doc.send(command));
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

  /**
   * `transact`, plus each failed item's old image (raw attribute values) when it asked for one.
   * `yieldOn`: items another transaction may be taking (a queued job several acquirers reach for): a
   * conflict on one of them is not retried but answered at once as `contended`, so that the caller
   * moves on to another job instead of waiting to be refused.
   */
  async transactWithReasons(
    items: TransactItem[],
    yieldOn?: (index: number) => boolean,
  ): Promise<{
    failed: number[];
    oldItems: (Record<string, { N?: string; S?: string }> | undefined)[];
    contended?: number[];
  }> {
    // One token for the logical transaction, whatever the number of tries (the SDK's own retries
    // resend the same serialized request, so they reuse it too).
    const token = randomUUID();
    const itemsOf = items.map(itemOf);
    const started = this.now();
    let slept = 0;
    for (let retry = 0; ; retry++) {
      try {
        // After this invocation's own transactions on these items: sent together, one would cancel the other.
        await inTurn(itemsOf, () =>
          this.doc.send(new TransactWriteCommand({ TransactItems: items, ClientRequestToken: token })),
        );
        return { failed: [], oldItems: [] };
      } catch (error) {
        if (isLostAnswer(error) && retry < MAX_CONFLICT_RETRIES) {
          // It may have succeeded: the same token makes the retry answer for it rather than redo it.
          await this.sleep(this.random() * Math.min(1000, 10 * 2 ** retry));
          continue;
        }
        if (!(error instanceof TransactionCanceledException)) throw error;
        const reasons = error.CancellationReasons ?? [];
        const failed = reasons.flatMap((reason, index) =>
          reason.Code === 'ConditionalCheckFailed' ? [index] : [],
        );
        if (failed.length > 0) {
          return { failed, oldItems: reasons.map((reason) => reason.Item as Record<string, { N?: string }>) };
        }
        if (yieldOn) {
          const contended = reasons.flatMap((reason, index) =>
            reason.Code === 'TransactionConflict' && yieldOn(index) ? [index] : [],
          );
          if (contended.length > 0) return { failed: [], oldItems: [], contended };
        }
        const retryable = reasons.some((reason) => RETRYABLE_REASONS.has(reason.Code ?? ''));
        // Slept time bounds the retries whatever the clock; the clock bounds slow attempts too.
        const spent = Math.max(slept, this.now() - started);
        const backoff = retryable ? contendedBackoff(retry, spent, this.random) : undefined;
        if (backoff === undefined) throw error;
        slept += backoff;
        await this.sleep(backoff);
      }
    }
  }
}

/** The item a transaction's part writes or checks, as one string. */
function itemOf(part: TransactItem): string {
  const key = (part.Update?.Key ?? part.Delete?.Key ?? part.ConditionCheck?.Key ?? part.Put?.Item) as
    | Record<string, unknown>
    | undefined;
  return `${String(key?.pk)}\u0000${String(key?.sk)}`;
}

/**
 * A single-item write on an item that a transaction is writing at the same moment is refused by AWS
 * with TransactionConflictException (nothing applied), which the SDK does not retry: it is retried
 * here, with jittered backoff, for every request of the client.
 */
function retryTransactionConflicts(client: DynamoDBClient, sleep?: (ms: number) => Promise<void>): void {
  const name = 'dialgateRetryTransactionConflicts';
  if (client.middlewareStack.identify().some((entry) => entry.startsWith(name))) return;
  const wait = sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  client.middlewareStack.add(
    (next) => async (args) => {
      const started = Date.now();
      let slept = 0;
      for (let retry = 0; ; retry++) {
        try {
          return await next(args);
        } catch (error) {
          if (!(error instanceof Error) || error.name !== 'TransactionConflictException') throw error;
          const backoff = contendedBackoff(retry, Math.max(slept, Date.now() - started), Math.random);
          if (backoff === undefined) throw error;
          slept += backoff;
          await wait(backoff);
        }
      }
    },
    { step: 'initialize', name },
  );
}

/**
 * An error after which the request may or may not have been applied: the network, a timeout, a
 * 5xx. (Throttling and conflicts are answers that nothing was applied, handled apart.)
 */
export function isLostAnswer(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return true;
  const code = (error as { code?: string }).code;
  return (
    ['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'NetworkingError', 'AbortError'].includes(
      error.name,
    ) || ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'].includes(code ?? '')
  );
}

export function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}
