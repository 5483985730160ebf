// (core) The failure breaker (`pause_when`): a run whose recent calls keep failing pauses itself,
// so that a broken carrier route or a bad list does not burn through every lead. Each ended attempt
// is counted once, after its release succeeded (a release happens once per attempt), in a window of
// the run's last `min_calls` attempts kept on an item of its own (never on the run item, which every
// acquire and release writes). The window starts afresh at every control change (a pause, a resume),
// so a resumed run is judged on calls made after the resume.

import type { RunRecord } from './model.ts';
import type { BreakerStore, Clock, Log, RunControlStore } from './ports.ts';

export interface BreakerDeps {
  store: BreakerStore & RunControlStore;
  clock: Clock;
  log: Log;
}

/** Outcomes the breaker counts as failures: Twilio's `failed`, and a number Twilio refused at create. */
export const BREAKER_FAILURES: readonly string[] = ['failed', 'rejected'];

/** The reason a run paused by the breaker shows (`pause_reason`, and its `run.status_changed` event). */
export function breakerReason(failed: number, minCalls: number, failedRatio: number): string {
  return `pause_when: ${failed} of the last ${minCalls} calls failed (more than failed_ratio ${failedRatio})`;
}

/** Counts an attempt that ended with `outcome` and pauses the run when the breaker trips. */
export async function countEndedAttempt(deps: BreakerDeps, run: RunRecord, outcome: string): Promise<void> {
  const rule = run.options.pauseWhen;
  if (!rule) return;
  try {
    const epoch = run.controlAt ?? run.createdAt;
    const failed = BREAKER_FAILURES.includes(outcome);
    const window = await deps.store.countEndedAttempt(run.runId, epoch, failed, rule.minCalls);
    if (!window || window.ended < rule.minCalls) return;
    // A share compared by division: 57 of 100 is not more than 0.57 (0.57 * 100 is 56.99…).
    if (!(window.failed / rule.minCalls > rule.failedRatio)) return;
    const reason = breakerReason(window.failed, rule.minCalls, rule.failedRatio);
    const result = await deps.store.setControl(run.runId, {
      to: 'paused',
      from: ['running'],
      at: deps.clock.now().toISOString(),
      reason,
      // Only the run this window belongs to: one resumed since is judged on its own calls.
      ifControlAt: run.controlAt ?? null,
    });
    if (result.kind === 'changed')
      deps.log.warn('run paused by its failure breaker', { runId: run.runId, reason });
  } catch (error) {
    // The breaker is a safeguard on top of a release that already succeeded: never fail the release.
    deps.log.error('failure breaker could not count an attempt', { runId: run.runId, error });
  }
}
