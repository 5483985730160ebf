// (adapter) Account-wide limits, as small items of their own: the cap on live calls split over shard
// counters (lambdas/core/account-shards.ts), each in its own partition; the calls-per-second pace on
// one item; and the runs waiting for an account slot on another. Their share of an acquire or a
// release is an item of the same transaction as the run's; who holds an account slot is recorded on
// the job (`accountShard`), not on any counter.

import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { AccountLimits } from '../../core/ports.ts';
import { keys } from '../../definitions/table-schema.ts';
import type { DynamoTable, TransactItem } from './table.ts';

/** Reads of the waiting set one release makes while other releasers take the runs it chose. */
const TAKE_WAITING_TRIES = 3;

export class DynamoAccount {
  /** `name`: one per deployment; tests use their own. */
  constructor(
    private readonly t: DynamoTable,
    private readonly name?: string,
  ) {}

  /**
   * A shard's share of an acquire: `slots` slots (one, or a wave's jobs on this shard) under its own cap. The counter is made by the first
   * acquire that reaches it (no setup step); a missing counter is zero.
   */
  acquireShardItem(shard: number, cap: number, slots = 1): TransactItem {
    return {
      Update: {
        TableName: this.t.name,
        Key: keys.accountShard(this.name, shard),
        UpdateExpression: 'SET active = if_not_exists(active, :zero) + :n, entity = :entity',
        // `slots` more must fit under the shard's cap (slots ≤ cap: a wave never asks for more).
        ConditionExpression: 'attribute_not_exists(active) OR active <= :room',
        ExpressionAttributeValues: {
          ':zero': 0,
          ':n': slots,
          ':room': cap - slots,
          ':entity': 'account-shard',
        },
        // What the shard holds, when full: the acquirer learns its room without reading it.
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }

  /**
   * Room on every shard (its cap less its `active`; a shard no acquire has reached yet is empty), read
   * together and strongly consistent. Read before an acquire reaches for shards, so that it writes only
   * to shards with room: near a full account, probing shards by writing costs a refused transaction (2
   * write units an item) per full shard, and overlapping probes cancel each other; a read costs a
   * fraction of that and overlaps nothing.
   */
  async shardRoom(caps: readonly number[]): Promise<number[]> {
    const items = await this.t.batchGet(
      caps.map((_, shard) => keys.accountShard(this.name, shard)),
      { consistent: true, projection: 'pk, active' },
    );
    const active = new Map(items.map((item) => [String(item.pk), Number(item.active ?? 0)]));
    return caps.map((cap, shard) => cap - (active.get(keys.accountShard(this.name, shard).pk) ?? 0));
  }

  /** The pace's share of an acquire: one create per 1/cps seconds across the account. */
  acquirePaceItem(account: AccountLimits & { callsPerSecond: number }): TransactItem {
    return {
      Update: {
        TableName: this.t.name,
        Key: keys.accountPace(this.name),
        UpdateExpression: 'SET nextCreateAt = :next, entity = :entity',
        ConditionExpression: 'attribute_not_exists(nextCreateAt) OR nextCreateAt <= :now',
        ExpressionAttributeValues: {
          ':now': account.nowMs,
          ':next': account.nowMs + 1000 / account.callsPerSecond,
          ':entity': 'account-pace',
        },
      },
    };
  }

  /**
   * The shard's share of a release. Not a bare decrement: it is part of the transaction whose job
   * item is conditioned on this holder and attempt, and the counter never goes below zero.
   */
  releaseShardItem(shard: number): TransactItem {
    return {
      Update: {
        TableName: this.t.name,
        Key: keys.accountShard(this.name, shard),
        UpdateExpression: 'SET active = active - :one',
        ConditionExpression: 'active > :zero',
        ExpressionAttributeValues: { ':one': 1, ':zero': 0 },
      },
    };
  }

  async addWaitingRun(runId: string): Promise<void> {
    // Its own item, not a counter's: it grows with the runs waiting, never with the calls live.
    await this.t.doc.send(
      new UpdateCommand({
        TableName: this.t.name,
        Key: keys.account(this.name),
        UpdateExpression: 'ADD waiting :run SET entity = :entity',
        ExpressionAttributeValues: { ':run': new Set([runId]), ':entity': 'account-waiting' },
      }),
    );
  }

  async takeWaitingRun(except: string): Promise<string | undefined> {
    for (let round = 0; round < TAKE_WAITING_TRIES; round++) {
      const { Item } = await this.t.doc.send(
        new GetCommand({
          TableName: this.t.name,
          Key: keys.account(this.name),
          ConsistentRead: true,
          ProjectionExpression: 'waiting',
        }),
      );
      const waiting = Item?.waiting instanceof Set ? [...Item.waiting].map(String) : [];
      const others = waiting.filter((runId) => runId !== except);
      if (others.length === 0) return undefined;
      // Any one of them: over many releases, each waiting run's turn comes.
      const chosen = others[Math.floor(this.t.random() * others.length)]!;
      // Taken by exactly one releaser: the condition fails if another took it first.
      const taken = await this.t.applies(
        new UpdateCommand({
          TableName: this.t.name,
          Key: keys.account(this.name),
          UpdateExpression: 'DELETE waiting :run',
          ConditionExpression: 'contains(waiting, :id)',
          ExpressionAttributeValues: { ':run': new Set([chosen]), ':id': chosen },
        }),
      );
      if (taken) return chosen;
    }
    return undefined;
  }
}
