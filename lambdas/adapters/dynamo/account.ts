// (adapter) Account-wide limits, as small items of their own: the cap on live calls split over shard
// counters (lambdas/core/account-shards.ts), each in its own partition; the calls-per-second pace on
// one item; and the runs waiting for an account slot on another. Their share of an acquire or a
// release is an item of the same transaction as the run's; who holds an account slot is recorded on
// the job (`accountShard`), not on any counter. Which shards the account cap is on (its layout) is
// recorded on one more item, read once per container, and changed only by a deploy that changes the
// cap: that deploy fences the layout before it (account-shards.ts).

import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  ACCOUNT_SHARD_SIZE,
  accountShardCaps,
  FENCE,
  LAYOUT_SPAN,
  layoutRange,
  type ShardRange,
  shardsToRead,
  UNRECORDED_LAYOUT,
} from '../../core/account-shards.ts';
import type { AccountLimits } from '../../core/ports.ts';
import { keys } from '../../definitions/table-schema.ts';
import { inPool } from '../pool.ts';
import type { DynamoTable, TransactItem } from './table.ts';

/** Reads of the waiting set one release makes while other releasers take the runs it chose. */
const TAKE_WAITING_TRIES = 3;

/**
 * How long a container keeps its count of the calls still live on fenced layouts before reading it
 * again (only while there are any). A count kept longer is only too high: caps too low, never the
 * account cap passed.
 */
const DRAINING_REREAD_MS = 2000;

/**
 * How long a container whose account cap is not the recorded one (a container of the deploy before,
 * still finishing its work) waits before it reads the record again. It acquires nothing meanwhile.
 */
const OTHER_LAYOUT_REREAD_MS = 5000;

/**
 * Shards a fill reads for their room, at least: one read request, room for four full waves (more
 * for a fill of more slots).
 */
const ROOM_SAMPLE = 20;

/** Counters fenced in one transaction (DynamoDB's most items a transaction). */
const FENCES_A_TRANSACTION = 100;

/** Fences written at once when they are written one by one. */
const FENCE_CONCURRENCY = 25;

/**
 * Where this container's acquires take account slots: shard `base + i` under `caps[i]`. Every cap is
 * 0 when the recorded account cap is another (this container is of the deploy before).
 */
export interface AccountLayout {
  base: number;
  caps: number[];
}

/** The recorded layout as this container holds it. */
interface HeldLayout {
  /** Whether the recorded cap is this container's: else it acquires nothing. */
  current: boolean;
  gen: number;
  draining: ShardRange[];
  /** Calls still live on `draining` as last read, and when (ms). */
  drainingCalls: number;
  checkedAt: number;
}

/** The layout record's attributes. */
interface LayoutRecord {
  gen: number;
  max: number;
  shardSize: number;
  draining: ShardRange[];
}

export class DynamoAccount {
  /** Per account cap: the layout held, or being read (one read for a container's concurrent acquires). */
  private readonly layouts = new Map<number, Promise<HeldLayout>>();

  /** `name`: one per deployment; tests use their own. */
  constructor(
    private readonly t: DynamoTable,
    private readonly name?: string,
  ) {}

  /**
   * The layout this container acquires on under an account cap of `max`. The first call reads the
   * record; if the recorded cap is another (or none is recorded), this container's deploy changed it:
   * it fences the recorded layout and records its own. Later calls never start a layout: a container
   * of the deploy before, still running, would otherwise fence the new one in its turn. (A container
   * of the deploy before that first starts after the new layout is recorded would fence it; Lambda
   * starts none once a configuration update has completed, and the new one's first only after that.)
   */
  async layoutFor(max: number): Promise<AccountLayout> {
    let pending = this.layouts.get(max);
    if (!pending) {
      pending = this.resolve(max, true);
      this.layouts.set(max, pending);
    }
    let held = await pending;
    const age = this.t.now() - held.checkedAt;
    const stale = held.current
      ? held.drainingCalls > 0 && age > DRAINING_REREAD_MS
      : age > OTHER_LAYOUT_REREAD_MS;
    if (stale && this.layouts.get(max) === pending) {
      const next = held.current ? this.countDraining(held) : this.resolve(max, false);
      this.layouts.set(max, next);
      held = await next;
    }
    // A container whose cap is not the recorded one has no room on any shard: as if `max` calls drained.
    const caps = accountShardCaps(max, held.current ? held.drainingCalls : max);
    return { base: layoutRange(held.gen, max).base, caps };
  }

  /**
   * A shard of this container's layout was found fenced: a container of another deploy recorded its
   * layout since. The record is read again before the next acquire, without starting a layout.
   */
  layoutFenced(max: number): void {
    this.layouts.set(max, this.resolve(max, false));
  }

  private async resolve(max: number, mayStart: boolean): Promise<HeldLayout> {
    for (let round = 0; round < 3; round++) {
      const record = await this.readLayout();
      if (record && record.max === max && record.shardSize === ACCOUNT_SHARD_SIZE)
        return this.countDraining({ current: true, gen: record.gen, draining: record.draining });
      if (!mayStart) break;
      // The recorded layout is fenced before this one is recorded: once the record names this one, no
      // acquire on the one before can succeed, whichever code makes it. With no record, the layout
      // from before layouts were recorded, unless this version made the table.
      const previous = record
        ? { base: record.gen * LAYOUT_SPAN, count: Math.ceil(record.max / record.shardSize) }
        : (await this.madeRecording())
          ? undefined
          : UNRECORDED_LAYOUT;
      if (previous) await this.fence(previous);
      const next: LayoutRecord = {
        gen: (record?.gen ?? 0) + 1,
        max,
        shardSize: ACCOUNT_SHARD_SIZE,
        draining: [...(record?.draining ?? []), ...(previous ? [previous] : [])],
      };
      const recorded = await this.t.applies(
        new PutCommand({
          TableName: this.t.name,
          Item: { ...keys.accountLayout(this.name), ...next, entity: 'account-layout' },
          ConditionExpression: record ? 'gen = :gen' : 'attribute_not_exists(pk)',
          ...(record ? { ExpressionAttributeValues: { ':gen': record.gen } } : {}),
        }),
      );
      if (recorded) return this.countDraining({ current: true, gen: next.gen, draining: next.draining });
      // Another container recorded a layout first: read it again (the same cap is then used as it is).
    }
    return { current: false, gen: 0, draining: [], drainingCalls: 0, checkedAt: this.t.now() };
  }

  /** Whether a version that records layouts made the table (keys.tableOrigin). */
  private async madeRecording(): Promise<boolean> {
    const { Item } = await this.t.doc.send(
      new GetCommand({ TableName: this.t.name, Key: keys.tableOrigin(), ConsistentRead: true }),
    );
    return Item?.accountLayoutsRecorded === true;
  }

  private async readLayout(): Promise<LayoutRecord | undefined> {
    const { Item } = await this.t.doc.send(
      new GetCommand({ TableName: this.t.name, Key: keys.accountLayout(this.name), ConsistentRead: true }),
    );
    if (!Item) return undefined;
    return {
      gen: Number(Item.gen),
      max: Number(Item.max),
      shardSize: Number(Item.shardSize),
      draining: ((Item.draining ?? []) as ShardRange[]).map(({ base, count }) => ({
        base: Number(base),
        count: Number(count),
      })),
    };
  }

  /**
   * Adds FENCE to each counter of `range` once (a counter no acquire has reached is made fenced): in
   * transactions of 100 counters, 2 for the 200 shards of the unrecorded layout. A transaction refused
   * because a counter of it is fenced already (by another container of this deploy) is done again one
   * counter at a time, each written only if still unfenced.
   */
  private async fence(range: ShardRange): Promise<void> {
    const fenceOf = (shard: number) => ({
      Update: {
        TableName: this.t.name,
        Key: keys.accountShard(this.name, shard),
        UpdateExpression:
          'SET active = if_not_exists(active, :zero) + :fence, fence = :fence, entity = :entity',
        ConditionExpression: 'attribute_not_exists(fence)',
        ExpressionAttributeValues: { ':zero': 0, ':fence': FENCE, ':entity': 'account-shard' },
      },
    });
    const shards = Array.from({ length: range.count }, (_, i) => range.base + i);
    for (let start = 0; start < shards.length; start += FENCES_A_TRANSACTION) {
      const chunk = shards.slice(start, start + FENCES_A_TRANSACTION);
      const failed = await this.t.transact(chunk.map(fenceOf));
      if (failed.length > 0)
        await inPool(chunk, FENCE_CONCURRENCY, async (shard) => {
          await this.t.applies(new UpdateCommand(fenceOf(shard).Update));
        });
    }
  }

  /**
   * The calls still live on the fenced layouts, read now. A fenced layout found empty stays empty (no
   * acquire fits there, its holders have all released), so it is dropped from the record.
   */
  private async countDraining(held: Pick<HeldLayout, 'current' | 'gen' | 'draining'>): Promise<HeldLayout> {
    const checkedAt = this.t.now();
    if (held.draining.length === 0) return { ...held, drainingCalls: 0, checkedAt };
    const shardKeys = held.draining.flatMap(({ base, count }) =>
      Array.from({ length: count }, (_, i) => keys.accountShard(this.name, base + i)),
    );
    const items = await this.t.batchGet(shardKeys, { consistent: true, projection: 'pk, active, fence' });
    const live = new Map(
      items.map((item) => [String(item.pk), Number(item.active ?? 0) - Number(item.fence ?? 0)]),
    );
    const callsOn = ({ base, count }: ShardRange) =>
      Array.from({ length: count }, (_, i) =>
        Math.max(0, live.get(keys.accountShard(this.name, base + i).pk) ?? 0),
      ).reduce((sum, n) => sum + n, 0);
    const draining = held.draining.filter((range) => callsOn(range) > 0);
    if (draining.length < held.draining.length) {
      // Only while the record is the one read: a layout recorded since keeps its own list.
      await this.t.applies(
        new UpdateCommand({
          TableName: this.t.name,
          Key: keys.accountLayout(this.name),
          UpdateExpression: 'SET draining = :draining',
          ConditionExpression: 'gen = :gen',
          ExpressionAttributeValues: { ':draining': draining, ':gen': held.gen },
        }),
      );
    }
    return {
      ...held,
      draining,
      drainingCalls: draining.reduce((sum, range) => sum + callsOn(range), 0),
      checkedAt,
    };
  }

  /**
   * A shard's share of an acquire: `slots` slots (one, or a wave's jobs on this shard) under its own
   * cap. The counter is made by the first acquire that reaches it (no setup step); a missing counter
   * is zero. A fenced counter (another layout recorded since) has no room.
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
   * Room on the layout's shards (a shard's cap less its `active`; a shard no acquire has reached yet
   * is empty), read together and strongly consistent: all of them up to 20 (or twice the shards that
   * `wanted` slots would fill), else that many with a cap, from a place of this reader's own (the
   * others are given no room): the read grows with the slots asked for, not with the account cap.
   * Read before an acquire reaches for shards, so that it writes only to shards with room: near a
   * full account, probing shards by writing costs a refused transaction (2 write units an item) per
   * full shard, and overlapping probes cancel each other; a read costs a fraction of that and
   * overlaps nothing. A fenced shard has no room.
   */
  async shardRoom(max: number, layout: AccountLayout, wanted = 1): Promise<number[]> {
    const sample = Math.max(ROOM_SAMPLE, 2 * Math.ceil(wanted / ACCOUNT_SHARD_SIZE));
    const room = layout.caps.map(() => 0);
    await this.readRoom(
      max,
      layout,
      shardsToRead(layout.caps, sample, Math.floor(this.t.random() * layout.caps.length)),
      room,
    );
    return room;
  }

  /**
   * Reads again the shards `room` still gives room on, and sets their room to what they hold now
   * (`room` is changed in place). For an acquirer whose wave was refused on a shard another acquirer
   * filled since its read: the first fills of several runs under one account cap read the same empty
   * shards, so the others it read with room are likely filled too. Without this it would learn them
   * one refused wave at a time (2 write units for each of the wave's items, up to 44 for a wave of
   * ten with the recipient checks); the read costs a read unit a shard, and overlaps nothing.
   */
  async rereadRoom(max: number, layout: AccountLayout, room: number[]): Promise<void> {
    const open = room.flatMap((free, shard) => (free > 0 ? [shard] : []));
    if (open.length > 0) await this.readRoom(max, layout, open, room);
  }

  /** Sets `room[shard]` for each of `shards` (indexes in the layout) to its cap less its `active`, read now. */
  private async readRoom(
    max: number,
    layout: AccountLayout,
    shards: number[],
    room: number[],
  ): Promise<void> {
    const items = await this.t.batchGet(
      shards.map((shard) => keys.accountShard(this.name, layout.base + shard)),
      { consistent: true, projection: 'pk, active, fence' },
    );
    if (items.some((item) => item.fence !== undefined)) this.layoutFenced(max);
    const active = new Map(items.map((item) => [String(item.pk), Number(item.active ?? 0)]));
    for (const shard of shards)
      room[shard] = Math.max(
        0,
        layout.caps[shard]! - (active.get(keys.accountShard(this.name, layout.base + shard).pk) ?? 0),
      );
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

  /** The runs waiting for an account slot, read consistently. */
  private async waitingRuns(): Promise<string[]> {
    const { Item } = await this.t.doc.send(
      new GetCommand({
        TableName: this.t.name,
        Key: keys.account(this.name),
        ConsistentRead: true,
        ProjectionExpression: 'waiting',
      }),
    );
    return Item?.waiting instanceof Set ? [...Item.waiting].map(String) : [];
  }

  async hasWaitingRun(except: string): Promise<boolean> {
    return (await this.waitingRuns()).some((runId) => runId !== except);
  }

  async takeWaitingRun(except: string): Promise<string | undefined> {
    for (let round = 0; round < TAKE_WAITING_TRIES; round++) {
      const others = (await this.waitingRuns()).filter((runId) => runId !== except);
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
