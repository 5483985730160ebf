// (adapter) A run's slot counters. A run whose cap fits one counter keeps its `active` and its counts
// on the run item, as it always has. A higher cap is split over counter items of their own
// (`RUN#<id>` / `SLOTS#<k>`), whose caps add up to the run's: an acquire takes its slot on one counter,
// and the release frees it there, and counts the lead there when it is final, so that the run item is
// in no acquire and no release of a busy run (DynamoDB cancels transactions that overlap on an item,
// and a cap-500 run of 30-second calls makes ~33 a second).
//
// What stays on the run item, and why the invariants hold:
// - The cap: no counter's `active` can pass its own cap, and the caps add up to the run's.
// - `queued` on the run item counts the leads queued, live on a counter, or made final on one: only
//   the run item's own writes (ingest, a cancel's or an expiry's queued leads, a refused number) move
//   it. Every lead is in one place at a time (queued; live on a counter; final on a counter or on the
//   run item), and each move is one write of one counter or of the run item, so the run is the run
//   item plus its counters (core/model.ts `withSlotCounts`). A counter's final counts only grow: read
//   in any order they never say more leads are final than are, and when the run item's `queued`
//   equals the counters' final leads, none is queued or live (closeRun's condition).
// - Each counter carries a copy of what an acquire's condition reads on the run item (the control, the
//   start and the expiry), written in the same transaction as the run item's own, so that a paused,
//   canceled, scheduled or expired run takes no slot on any counter.
// - Outcomes on a counter are top-level attributes `outcome:<name>` (created by the first lead with
//   that outcome), so that a counter made before they were counted there takes them as well.

import {
  addSlotCounts,
  NO_SLOT_COUNTS,
  type RunRecord,
  type SlotCounts,
  withSlotCounts,
} from '../../core/model.ts';
import type { NewRun } from '../../core/ports.ts';
import { keys } from '../../definitions/table-schema.ts';

/**
 * Caps up to this stay on the run item. A run of a few dozen calls fills and refills at its floor on
 * one item (the scale benchmark's caps 3 and 20), and its reads stay one item.
 */
export const RUN_SLOT_SPLIT_ABOVE = 25;

/**
 * Slots per counter of a higher cap. Small enough that a counter of 30-second calls takes about one
 * transaction every 1.5 s, so that the releases and refills of a release storm (the first 500 calls
 * of a cap-500 run end within seconds of each other) meet on 50 items rather than 20; large enough
 * that a cap-500 run is created with its counters in one transaction (DynamoDB's 100 items).
 */
export const RUN_SLOT_SHARD_SIZE = 10;

/** The caps of the run's slot counters; none (the run item's own `active`) when the cap is not split. */
export function runSlotCaps(
  concurrency: number,
  shardSize = RUN_SLOT_SHARD_SIZE,
  splitAbove = RUN_SLOT_SPLIT_ABOVE,
): number[] {
  if (concurrency <= Math.max(shardSize, splitAbove)) return [];
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
    completed: 0,
    failed: 0,
    canceled: 0,
    control: 'running',
    ...(run.options?.startAt ? { scheduledFor: Date.parse(run.options.startAt) } : {}),
    ...(run.options?.expiresAt ? { expiresAtMs: Date.parse(run.options.expiresAt) } : {}),
  }));
}

/** The prefix of a counter's outcome attributes. */
export const OUTCOME_ATTRIBUTE = 'outcome:';

/** A released job's `carriedSlot` mark for a slot on the run item's own `active` (else the counter's number). */
export const CARRIED_ON_RUN_ITEM = 'run';

/** One counter as last read: its cap, the slots held on it, the leads made final on it. */
export interface SlotShardState {
  shard: number;
  cap: number;
  active: number;
  counts: SlotCounts;
}

export function slotShardFromItem(item: Record<string, unknown>): SlotShardState {
  return {
    shard: Number(item.shard),
    cap: Number(item.cap),
    active: Number(item.active),
    counts: slotCountsOf(item),
  };
}

/** A counter item's counts (absent ones 0: a counter made before final leads were counted on it). */
export function slotCountsOf(item: Record<string, unknown>): SlotCounts {
  const outcomes: Record<string, number> = {};
  for (const [name, value] of Object.entries(item))
    if (name.startsWith(OUTCOME_ATTRIBUTE)) outcomes[name.slice(OUTCOME_ATTRIBUTE.length)] = Number(value);
  return {
    active: Number(item.active ?? 0),
    completed: Number(item.completed ?? 0),
    failed: Number(item.failed ?? 0),
    canceled: Number(item.canceled ?? 0),
    outcomes,
  };
}

/** What the counters hold between them. */
export function sumSlotCounts(shards: readonly SlotShardState[]): SlotCounts {
  let sum = NO_SLOT_COUNTS;
  for (const shard of shards) sum = addSlotCounts(sum, shard.counts);
  return sum;
}

/** The run as the core knows it: its item and its counters (core/model.ts `withSlotCounts`). */
export function withSlotShards(run: RunRecord, shards: readonly SlotShardState[]): RunRecord {
  return shards.length === 0 ? run : withSlotCounts(run, sumSlotCounts(shards));
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
      shards.map((shard) => ({ ...shard, counts: { ...shard.counts } })),
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
