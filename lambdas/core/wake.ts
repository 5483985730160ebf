// (core) Waking runs up. A run is dispatched again when one of its slots frees (at once), when a
// lead's not-before time comes (a retry's delay, a calling window opening: a delayed message), and
// when an account-wide slot frees in another run (the runs that waited for one).

import type { QueuedJob, WakeStore, WorkQueue } from './ports.ts';

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
 * After a slot was released: the run may dial its next lead, and if the slot was also an account
 * slot, every run that found the account full is woken (each is handed out once; see addWaitingRun).
 */
export async function refillAfterRelease(
  deps: WakeDeps,
  runId: string,
  options: { dispatchRun: boolean; accountSlot: boolean; releasedAt?: string; next?: QueuedJob[] },
): Promise<void> {
  const runs = new Set<string>(options.dispatchRun ? [runId] : []);
  if (options.accountSlot) for (const waiting of await deps.store.takeWaitingRuns()) runs.add(waiting);
  const { releasedAt, next } = options;
  await Promise.all(
    [...runs].map((id) =>
      deps.queue.requestDispatch(id, {
        ...(releasedAt ? { releasedAt } : {}),
        // The hint is this run's: a run woken for an account slot reads its own queue.
        ...(id === runId && next && next.length > 0 ? { next } : {}),
      }),
    ),
  );
}
