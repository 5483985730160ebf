// (core) How the account-wide cap is split over shard counters. One counter item for the whole
// account would take a write from every acquire and release across every run: at a few hundred live
// calls it passes DynamoDB's per-partition write rate. Split over shards whose caps add up to the
// account cap, each counter takes a fraction of those writes, and the sum of the shards' `active`
// can never pass the cap because no shard's can pass its own.

/** Live calls per shard counter (the last shards may hold one fewer). */
const ACCOUNT_SHARD_SIZE = 50;

/** Shards tried by one acquire before it reports the account full: its own, then the next ones. */
const ACCOUNT_SHARD_PROBES = 4;

/** The cap of each shard: `max` split as evenly as whole calls allow, summing to exactly `max`. */
export function accountShardCaps(max: number): number[] {
  const count = Math.max(1, Math.ceil(max / ACCOUNT_SHARD_SIZE));
  const base = Math.floor(max / count);
  const extra = max - base * count;
  return Array.from({ length: count }, (_, i) => base + (i < extra ? 1 : 0));
}

/**
 * The shards an acquire tries, in order: one picked by the job's own hash (so that a run's
 * acquires spread over all shards), then the ones after it.
 */
export function accountShardProbes(runId: string, jobId: string, shardCount: number): number[] {
  let hash = 2166136261;
  for (const char of `${runId}#${jobId}`) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619) >>> 0;
  const first = hash % shardCount;
  return Array.from(
    { length: Math.min(shardCount, ACCOUNT_SHARD_PROBES) },
    (_, i) => (first + i) % shardCount,
  );
}
