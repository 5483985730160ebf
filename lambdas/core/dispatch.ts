// (core) The dispatcher's one entry: a work message is a lead chunk to ingest (ingest-chunk.ts) or a
// "dispatch run X" (fill-slots.ts); either way the run's free slots are then filled.

import { type FillResult, fillSlots } from './fill-slots.ts';
import { type IngestChunkDeps, ingestChunk } from './ingest-chunk.ts';
import type { WorkMessage } from './ports.ts';

/** Everything the dispatcher's use cases need. */
export type DispatchDeps = IngestChunkDeps;

export async function handleWorkMessage(deps: DispatchDeps, message: WorkMessage): Promise<FillResult> {
  if (message.type === 'ingest') return ingestChunk(deps, message);
  return fillSlots(deps, message.runId, message.next);
}
