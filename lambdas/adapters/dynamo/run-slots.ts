// (adapter) A run's slot counters. A run whose cap fits one counter keeps its `active` on the run item,
// as it always has. A higher cap is split over counter items of their own (`RUN#<id>` / `SLOTS#<k>`),
// whose caps add up to the run's: an acquire takes its slot on one counter, and the release frees it
// there, so that no single item is in every acquire and release of a busy run (DynamoDB cancels
// transactions that overlap on an item, and a cap-500 run of 30-second calls makes ~33 a second).
//
// What stays on the run item, and why the invariants hold:
// - The cap: no counter's `active` can pass its own cap, and the caps add up to the run's.
// - `queued` on the run item counts the leads queued *or live on a counter*: a counter's acquire does
//   not touch the run item, and only a release that makes the lead final takes it off `queued` (with
//   the final counts, as before). So the run item alone still says whether every lead is final
//   (`queued = 0 AND active = 0 AND ingestedLeads = totalLeads`), and its status (completed, from its
//   final counts) and everything conditioned on it are as they were. The view subtracts the live ones.
// - Each counter carries a copy of what an acquire's condition reads on the run item (the control, the
//   start and the expiry), written in the same transaction as the run item's own, so that a paused,
//   canceled, scheduled or expired run takes no slot on any counter.

import type { RunRecord } from '../../core/model.ts';
import type { NewRun } from '../../core/ports.ts';
import { keys } from '../../definitions/table-schema.ts';

/**
 * Slots per counter. Small enough that a counter of 30-second calls takes about one transaction a
 * second, large enough that a fill takes a counter's slots in one wave (MAX_WAVE is 49).
 */
export const RUN_SLOT_SHARD_SIZE = 25;

/** The caps of the run's slot counters; none (the run item's own `active`) when one counter holds the cap. */
export function runSlotCaps(concurrency: number, shardSize = RUN_SLOT_SHARD_SIZE): number[] {
  if (concurrency <= shardSize) return [];
  const count = Math.ceil(concurrency / shardSize);
  const base = Math.floor(concurrency / count);
  const extra = concurrency - base * count;
  return Array.from({ length: count }, (_, i) => base + (i < extra ? 1 : 0));
}

/** A run's counter items as it is created: nothing held, its control and schedule copied. */
export function newSlotShardItems(run: NewRun, caps: number[]): Record<string, unknown>[] {
  return caps.map((cap, shard) => ({
    ...keys.runSlots(run.runId, shard),
    entity: 'run-slots',
    runId: run.runId,
    shard,
    cap,
    active: 0,
    control: 'running',
    ...(run.options?.startAt ? { scheduledFor: Date.parse(run.options.startAt) } : {}),
    ...(run.options?.expiresAt ? { expiresAtMs: Date.parse(run.options.expiresAt) } : {}),
  }));
}

/** One counter as last read: its cap and the slots held on it. */
export interface SlotShardState {
  shard: number;
  cap: number;
  active: number;
}

export function slotShardFromItem(item: Record<string, unknown>): SlotShardState {
  return { shard: Number(item.shard), cap: Number(item.cap), active: Number(item.active) };
}

/** The run as the core knows it: the counters' live slots added to `active` and taken off `queued`. */
export function withSlotShards(run: RunRecord, shards: readonly SlotShardState[]): RunRecord {
  if (shards.length === 0) return run;
  const live = shards.reduce((sum, shard) => sum + shard.active, 0);
  return { ...run, active: run.active + live, queued: run.queued - live };
}

/** Runs remembered per process: enough for every run a dispatcher or webhook serves at once. */
const REMEMBERED_RUNS = 5_000;

/**
 * What this process last read of each run's counters. Whether a run has counters never changes (its
 * cap is fixed at creation), so a run known to have none is never read for them again; the counters'
 * `active` is only a guess of where there is room, which the acquire's condition checks.
 */
export class SlotShardMemory {
  readonly #runs = new Map<string, SlotShardState[]>();

  remember(runId: string, shards: SlotShardState[]): void {
    if (this.#runs.size >= REMEMBERED_RUNS && !this.#runs.has(runId)) this.#runs.clear();
    this.#runs.set(
      runId,
      shards.map((shard) => ({ ...shard })),
    );
  }

  /** The run's counters as last read (empty: it has none); undefined when not read yet. */
  get(runId: string): SlotShardState[] | undefined {
    return this.#runs.get(runId);
  }

  /** What a counter's refused acquire learnt of it: the slots held on it (its old image). */
  note(runId: string, shard: number, active: number): void {
    const known = this.#runs.get(runId)?.find((entry) => entry.shard === shard);
    if (known && Number.isFinite(active)) known.active = active;
  }

  /** Slots this process took (`n` > 0) or freed (`n` < 0) on a counter. */
  add(runId: string, shard: number, n: number): void {
    const known = this.#runs.get(runId)?.find((entry) => entry.shard === shard);
    if (known) known.active = Math.min(known.cap, Math.max(0, known.active + n));
  }
}
