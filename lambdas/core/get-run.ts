// (core) GET /runs/{run_id}: the run's progress, answered from the run item alone.

import { NotFoundError } from './errors.ts';
import { type RunView, toRunView } from './model.ts';
import type { RunReader } from './ports.ts';

export async function getRunView(store: RunReader, runId: string): Promise<RunView> {
  const run = await store.getRun(runId);
  if (!run) throw new NotFoundError(`No run with id "${runId}".`);
  return toRunView(run);
}
