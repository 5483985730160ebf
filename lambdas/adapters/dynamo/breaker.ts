// (adapter) The failure breaker's window: one item per run and epoch (its last control change), never
// the run item. An attempt is counted in two single-item writes, neither of which can be lost to a
// concurrent one: an atomic counter gives the attempt its number n, then slot n mod size of a small
// map takes n (and whether it failed) unless a later attempt is already there. The second write's
// answer is the window as it left it: the attempts numbered within the last `size` that failed.
// Each count moves the item's TTL on, so that a window nobody counts in any more (an epoch a control
// change ended, a finished run's) is deleted by DynamoDB instead of kept for ever.

import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { BreakerStore, BreakerWindow } from '../../core/ports.ts';
import { keys, TABLE_SCHEMA } from '../../definitions/table-schema.ts';
import { type DynamoTable, isConditionalCheckFailed } from './table.ts';

/**
 * A window kept this long after its last count: far longer than any pause a run resumes from (a
 * resume starts a new epoch anyway), short enough that dead windows do not pile up.
 */
export const BREAKER_TTL_SECONDS = 30 * 24 * 3600;

export class DynamoBreaker implements BreakerStore {
  constructor(private readonly t: DynamoTable) {}

  async countEndedAttempt(
    runId: string,
    epoch: string,
    failed: boolean,
    size: number,
  ): Promise<BreakerWindow | undefined> {
    const key = keys.breaker(runId, epoch);
    const { Attributes: numbered } = await this.t.doc.send(
      new UpdateCommand({
        TableName: this.t.name,
        Key: key,
        UpdateExpression:
          'SET entity = :entity, slots = if_not_exists(slots, :empty), #ttl = :ttl ADD ended :one',
        ExpressionAttributeNames: { '#ttl': TABLE_SCHEMA.timeToLiveAttribute },
        ExpressionAttributeValues: {
          ':entity': 'breaker',
          ':empty': {},
          ':one': 1,
          ':ttl': Math.floor(this.t.now() / 1000) + BREAKER_TTL_SECONDS,
        },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    const n = Number(numbered?.ended);
    // Each slot holds 2n + 1 for a failed attempt n, 2n for one that did not fail: one number, ordered by n.
    const entry = 2 * n + (failed ? 1 : 0);
    try {
      const { Attributes } = await this.t.doc.send(
        new UpdateCommand({
          TableName: this.t.name,
          Key: key,
          UpdateExpression: 'SET slots.#slot = :entry',
          ConditionExpression: 'attribute_not_exists(slots.#slot) OR slots.#slot < :entry',
          ExpressionAttributeNames: { '#slot': String(n % size) },
          ExpressionAttributeValues: { ':entry': entry },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return windowOf(Attributes ?? {}, size);
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined; // a later attempt holds the slot already
      throw error;
    }
  }
}

/** The window from the item: every attempt counted so far, and the failures among the last `size`. */
export function windowOf(item: Record<string, unknown>, size: number): BreakerWindow {
  const ended = Number(item.ended ?? 0);
  const slots = Object.values((item.slots ?? {}) as Record<string, number>);
  const failed = slots.filter((entry) => entry % 2 === 1 && Math.floor(entry / 2) > ended - size).length;
  return { ended, failed };
}
