// (core) The options of the runs a dispatcher has read lately, kept for the life of a warm container.

import type { RunRecord } from './model.ts';
import type { RunOptions } from './run-options.ts';

/**
 * A run's options never change once it is created, so a warm dispatcher may place a call with the
 * options it read earlier; everything that does change (control, free slots) is checked by the
 * acquire transaction itself.
 */
export class RecentRunOptions {
  private readonly byRun = new Map<string, Pick<RunRecord, 'options' | 'concurrency'>>();
  constructor(private readonly capacity = 1_000) {}

  get(runId: string): RunOptions | undefined {
    return this.byRun.get(runId)?.options;
  }

  /** The run's cap, which never changes either. */
  concurrencyOf(runId: string): number | undefined {
    return this.byRun.get(runId)?.concurrency;
  }

  remember(run: RunRecord): void {
    if (this.byRun.has(run.runId)) return;
    if (this.byRun.size >= this.capacity) this.byRun.delete(this.byRun.keys().next().value!);
    this.byRun.set(run.runId, { options: run.options, concurrency: run.concurrency });
  }
}
