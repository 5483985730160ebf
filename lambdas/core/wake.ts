// (core) Waking runs up. A run is dispatched again when one of its slots frees (at once), when a
// lead's not-before time comes (a retry's delay, a calling window opening: a delayed message), and
// when an account-wide slot frees in another run (the runs that waited for one).

import type { CarriedSlot, QueuedJob, WakeStore, WorkQueue } from './ports.ts';

/** SQS holds a message back at most this long; a later wake-up is re-armed when this one arrives. */
export const MAX_DELAY_SECONDS = 900;

export interface WakeDeps {
  store: WakeStore;
  queue: WorkQueue;
}

/**
 * Asks for a dispatch of the run at `atMs` (or as close as SQS allows). One delayed message per
 * run and time: a run with a thousand leads waiting for 09:00 gets one wake-up, not a thousand.
 */
export async function armWake(deps: WakeDeps, runId: string, atMs: number, nowMs: number): Promise<void> {
  const delaySeconds = Math.min(MAX_DELAY_SECONDS, Math.max(1, Math.ceil((atMs - nowMs) / 1000)));
  const wakeAt = nowMs + delaySeconds * 1000;
  if (await deps.store.claimWake(runId, wakeAt, nowMs))
    await deps.queue.requestDispatch(runId, { delaySeconds });
}

/**
 * After a slot was released: the run may dial its next lead. If the slot was also an account slot
 * and runs are waiting for one, it goes to one of them instead, in turn: the releasing run, if it
 * would dial again, joins the waiting runs, and the run handed the slot tries the shard it was freed
 * on first. One acquirer per freed account slot; waking every waiting run would have them all reach
 * for the same shard, and all but one be refused. `accountShard`: the shard the slot was freed on.
 * `carried`: the release kept the account slot on its job (CarriedSlot); the dispatch it goes with
 * takes it, and one that nobody is sent is dropped here.
 */
export async function refillAfterRelease(
  deps: WakeDeps,
  runId: string,
  options: {
    dispatchRun: boolean;
    accountSlot: boolean;
    accountShard?: number | undefined;
    releasedAt?: string;
    next?: QueuedJob[];
    carried?: CarriedSlot;
  },
): Promise<void> {
  const { releasedAt, next, carried } = options;
  const waiting = options.accountSlot ? await deps.store.takeWaitingRun(runId) : undefined;
  if (waiting !== undefined) {
    // Its own run waits its turn, unless it has no lead left to dial (its hint came back empty).
    if (options.dispatchRun && (next === undefined || next.length > 0)) await deps.store.addWaitingRun(runId);
    await deps.queue.requestDispatch(waiting, {
      ...(releasedAt ? { releasedAt } : {}),
      handedShard: options.accountShard ?? null,
      ...(carried ? { carried } : {}),
    });
    return;
  }
  // A carried slot its own run has no lead for (its hint came back empty) goes back to its shard now.
  if (carried && (!options.dispatchRun || next?.length === 0)) await deps.store.dropCarry(carried);
  if (!options.dispatchRun) return;
  await deps.queue.requestDispatch(runId, {
    ...(releasedAt ? { releasedAt } : {}),
    // An empty hint says the releaser saw no lead due: the run's fill then reads without the lease.
    ...(next ? { next } : {}),
    ...(carried && next?.length !== 0 ? { carried } : {}),
  });
}

/**
 * A dispatch handed an account slot (refillAfterRelease) that could not use it (its run takes no
 * slot, or has no lead due): the slot goes to the next waiting run, so that it does not sit idle
 * while runs wait. Each hand-over takes a run off the waiting set, so the chain ends; a carried slot
 * that reaches its end is dropped (back on its shard).
 */
export async function passOnAccountSlot(
  deps: WakeDeps,
  runId: string,
  handedShard: number | null,
  carried?: CarriedSlot,
): Promise<void> {
  const waiting = await deps.store.takeWaitingRun(runId);
  if (waiting !== undefined)
    await deps.queue.requestDispatch(waiting, { handedShard, ...(carried ? { carried } : {}) });
  else if (carried) await deps.store.dropCarry(carried);
}
