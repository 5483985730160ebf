// (core) How the account-wide cap is split over shard counters. One counter item for the whole
// account would take a write from every acquire and release across every run: at a few hundred live
// calls it passes DynamoDB's per-partition write rate. Split over shards whose caps add up to the
// account cap, each counter takes a fraction of those writes, and the sum of the shards' `active`
// can never pass the cap because no shard's can pass its own.
//
// The shards of one account cap are a *layout*. A deploy that changes the cap (or, once, the shard
// size: 50 before 2026-12-01) starts a new layout under shard numbers of its own, and first *fences*
// the one before: it adds FENCE to each of that layout's counters, so that no acquire, by code of
// either version, fits there again, while its holders' releases still count it down. The calls still
// live on fenced layouts (`draining`) are taken off the new layout's caps, from its last shard down,
// until they have ended: the account cap holds through the change.

/** Live calls per shard counter (the last shard may hold fewer). */
export const ACCOUNT_SHARD_SIZE = 10;

/** What a fence adds to a counter's `active`: far past any cap, so that no acquire fits under it. */
export const FENCE = 1_000_000;

/**
 * Shard numbers a layout may use: layout `gen` numbers its shards from `gen × LAYOUT_SPAN` (at most
 * 10,000 / 10 = 1,000 shards). Generation 0 is the layout before layouts were recorded.
 */
export const LAYOUT_SPAN = 1000;

/** A run of shard numbers: a layout's counters, `count` of them from `base`. */
export interface ShardRange {
  base: number;
  count: number;
}

/**
 * The layout before layouts were recorded: shards of 50, numbered from 0, under an account cap of at
 * most 10,000. Which of them were in use is not recorded, so all 200 are fenced.
 */
export const UNRECORDED_LAYOUT: ShardRange = { base: 0, count: 10_000 / 50 };

/** The shard numbers of layout `gen` under an account cap of `max`. */
export function layoutRange(gen: number, max: number): ShardRange {
  return { base: gen * LAYOUT_SPAN, count: Math.max(1, Math.ceil(max / ACCOUNT_SHARD_SIZE)) };
}

/**
 * The cap of each shard of a layout for `max`, with `draining` calls still live on fenced layouts:
 * shard i may hold min(10, max − draining − 10 i), at least 0. The caps sum to max − draining (the
 * account's room beside the old calls), and none of them grows with `draining`, which only falls once
 * its layouts are fenced: a count read some time ago gives caps too low, never too high.
 */
export function accountShardCaps(max: number, draining = 0): number[] {
  const count = Math.max(1, Math.ceil(max / ACCOUNT_SHARD_SIZE));
  return Array.from({ length: count }, (_, i) =>
    Math.min(ACCOUNT_SHARD_SIZE, Math.max(0, max - draining - ACCOUNT_SHARD_SIZE * i)),
  );
}

/**
 * The shards with room (each shard's cap less its live calls, as last read), in the order an acquirer
 * tries them: from `start` on, so that acquirers starting at places of their own reach for different
 * shards.
 */
export function shardsWithRoom(room: readonly number[], start: number): number[] {
  const order: number[] = [];
  for (let i = 0; i < room.length; i++) {
    const shard = (start + i) % room.length;
    if (room[shard]! > 0) order.push(shard);
  }
  return order;
}

/**
 * A shard for each of `n` slots, packed onto as few shards with room as will hold them (from `start`
 * on): a wave's transaction then carries few shard items, each of them 2 write units. Slots past the
 * account's room get none: the list is shorter than `n`.
 */
export function packOnShards(room: readonly number[], n: number, start: number): number[] {
  const placed: number[] = [];
  for (const shard of shardsWithRoom(room, start)) {
    const take = Math.min(room[shard]!, n - placed.length);
    for (let i = 0; i < take; i++) placed.push(shard);
    if (placed.length === n) break;
  }
  return placed;
}

/**
 * Which shards (by index in the layout) a fill reads for their room: all of them up to `sample`,
 * else `sample` of those with a cap, from `start` on. At an account cap of 10,000 a layout has 1,000
 * shards; reading every one for each fill would cost more than the rest of the call's reads.
 */
export function shardsToRead(caps: readonly number[], sample: number, start: number): number[] {
  const open = caps.flatMap((cap, shard) => (cap > 0 ? [shard] : []));
  if (open.length <= sample) return open;
  return Array.from({ length: sample }, (_, i) => open[(start + i) % open.length]!);
}
