// (adapter) A run's fill lease (core/fill-slots.ts `fillUnderLease`): one small item per run, written
// with conditional single-item writes, never in a slot transaction. `filler` holds it until `until`;
// `asked` says that another dispatch wanted a fill while it was held. The item outlives its use by
// an hour at most (the table's TTL).

import { DeleteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { FillLease } from '../../core/ports.ts';
import { keys, TABLE_SCHEMA } from '../../definitions/table-schema.ts';
import type { DynamoTable } from './table.ts';

/**
 * How long a lease holds without its holder: longer than a holder's passes (fill-slots.ts bounds them
 * at 10 s), short enough that a run whose filler died is filled again soon (its work message's retry,
 * which names the same filler, takes the lease over at once).
 */
export const FILL_LEASE_MS = 30_000;

/** Tries of take-or-ask while the lease is being freed and taken under it. */
const MAX_TAKE_TRIES = 5;

export class DynamoFillLease implements FillLease {
  constructor(private readonly t: DynamoTable) {}

  async take(runId: string, filler: string, nowMs: number): Promise<'taken' | 'asked'> {
    for (let tries = 0; tries < MAX_TAKE_TRIES; tries++) {
      const taken = await this.t.applies(
        new UpdateCommand({
          TableName: this.t.name,
          Key: keys.fillLease(runId),
          UpdateExpression: 'SET filler = :filler, #until = :until, asked = :no, #ttl = :ttl',
          // Free, past its time, or this filler's own (the retry of a dispatch that died holding it).
          ConditionExpression: 'attribute_not_exists(filler) OR #until < :now OR filler = :filler',
          ExpressionAttributeNames: { '#until': 'until', '#ttl': TABLE_SCHEMA.timeToLiveAttribute },
          ExpressionAttributeValues: {
            ':filler': filler,
            ':until': nowMs + FILL_LEASE_MS,
            ':now': nowMs,
            ':no': false,
            ':ttl': expiry(nowMs),
          },
        }),
      );
      if (taken) return 'taken';
      // Held: ask its holder for a pass, while it still holds it (freed meanwhile: take it again).
      const asked = await this.t.applies(
        new UpdateCommand({
          TableName: this.t.name,
          Key: keys.fillLease(runId),
          UpdateExpression: 'SET asked = :yes',
          ConditionExpression: 'attribute_exists(filler) AND #until >= :now',
          ExpressionAttributeNames: { '#until': 'until' },
          ExpressionAttributeValues: { ':yes': true, ':now': nowMs },
        }),
      );
      if (asked) return 'asked';
    }
    throw new Error(`the fill lease of run ${runId} kept changing hands`);
  }

  async give(runId: string, filler: string, nowMs: number): Promise<'given' | 'asked'> {
    const given = await this.t.applies(
      new DeleteCommand({
        TableName: this.t.name,
        Key: keys.fillLease(runId),
        ConditionExpression: 'filler = :filler AND asked = :no',
        ExpressionAttributeValues: { ':filler': filler, ':no': false },
      }),
    );
    if (given) return 'given';
    // Asked for meanwhile: keep it, clear the ask, fill again. Not this filler's any more (it ran past
    // its time and another took it): that one fills.
    const kept = await this.t.applies(
      new UpdateCommand({
        TableName: this.t.name,
        Key: keys.fillLease(runId),
        UpdateExpression: 'SET asked = :no, #until = :until, #ttl = :ttl',
        ConditionExpression: 'filler = :filler',
        ExpressionAttributeNames: { '#until': 'until', '#ttl': TABLE_SCHEMA.timeToLiveAttribute },
        ExpressionAttributeValues: {
          ':filler': filler,
          ':no': false,
          ':until': nowMs + FILL_LEASE_MS,
          ':ttl': expiry(nowMs),
        },
      }),
    );
    return kept ? 'asked' : 'given';
  }

  async drop(runId: string, filler: string): Promise<void> {
    // Refused: not this filler's any more, which is as good.
    await this.t.applies(
      new DeleteCommand({
        TableName: this.t.name,
        Key: keys.fillLease(runId),
        ConditionExpression: 'filler = :filler',
        ExpressionAttributeValues: { ':filler': filler },
      }),
    );
  }
}

/** The TTL attribute's value (epoch seconds): an hour past the lease's time. */
function expiry(nowMs: number): number {
  return Math.floor((nowMs + FILL_LEASE_MS) / 1000) + 3600;
}
