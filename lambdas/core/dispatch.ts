// (core) The dispatcher's one entry: a work message is a lead chunk to ingest (ingest-chunk.ts) or a
// "dispatch run X" (fill-slots.ts); either way the run's free slots are then filled.

import { type FillResult, fillSlots } from './fill-slots.ts';
import { type IngestChunkDeps, ingestChunk } from './ingest-chunk.ts';
import type { WorkMessage } from './ports.ts';

/** Everything the dispatcher's use cases need. */
export type DispatchDeps = IngestChunkDeps;

/** `filler`: the work message's id, which names its dispatch to the run's fill lease. */
export async function handleWorkMessage(
  deps: DispatchDeps,
  message: WorkMessage,
  filler?: string,
): Promise<FillResult> {
  if (message.type === 'ingest') return ingestChunk(deps, message, filler);
  return fillSlots(deps, message.runId, message.next, filler, message.handedShard, message.carried);
}
