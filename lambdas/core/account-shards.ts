// (core) How the account-wide cap is split over shard counters. One counter item for the whole
// account would take a write from every acquire and release across every run: at a few hundred live
// calls it passes DynamoDB's per-partition write rate. Split over shards whose caps add up to the
// account cap, each counter takes a fraction of those writes, and the sum of the shards' `active`
// can never pass the cap because no shard's can pass its own.

/** Live calls per shard counter (the last shards may hold one fewer). */
const ACCOUNT_SHARD_SIZE = 50;

/** The cap of each shard: `max` split as evenly as whole calls allow, summing to exactly `max`. */
export function accountShardCaps(max: number): number[] {
  const count = Math.max(1, Math.ceil(max / ACCOUNT_SHARD_SIZE));
  const base = Math.floor(max / count);
  const extra = max - base * count;
  return Array.from({ length: count }, (_, i) => base + (i < extra ? 1 : 0));
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
