// (adapter) WorkQueue on SQS: lead chunks and "dispatch run X" messages on one queue, consumed by
// the dispatcher through an event source mapping with partial batch responses.

import {
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { asciiJson } from '../core/ascii-json.ts';
import { LeadsNotQueuedError } from '../core/errors.ts';
import type { DispatchRequest, LeadChunk, WorkMessage, WorkQueue } from '../core/ports.ts';
import { inPool } from './pool.ts';

/** SendMessageBatch takes at most 10 entries... */
const SQS_BATCH = 10;
/** ...and 256 KiB of bodies in all (a body is ASCII, so its length is its size). */
const SQS_BATCH_BYTES = 256 * 1024;
/** Batches in flight at once while putting a large run on the queue. */
const PARALLEL_BATCHES = 8;
/** A batch entry SQS failed to take is sent again this often before the request fails. */
const MAX_ENTRY_RETRIES = 3;

export class SqsWorkQueue implements WorkQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async sendLeadChunks(runId: string, chunks: LeadChunk[]): Promise<void> {
    const entries: SendMessageBatchRequestEntry[] = chunks.map((chunk) => ({
      Id: String(chunk.chunk),
      MessageBody: asciiJson({
        type: 'ingest',
        runId,
        chunk: chunk.chunk,
        jobs: chunk.jobs,
      } satisfies WorkMessage),
    }));
    const batches: SendMessageBatchRequestEntry[][] = [];
    let bytes = 0;
    for (const entry of entries) {
      const size = entry.MessageBody!.length;
      const last = batches.at(-1);
      if (last && last.length < SQS_BATCH && bytes + size <= SQS_BATCH_BYTES) {
        last.push(entry);
        bytes += size;
      } else {
        batches.push([entry]);
        bytes = size;
      }
    }
    const leadsIn = new Map(chunks.map((chunk) => [String(chunk.chunk), chunk.jobs.length]));
    let queued = 0;
    try {
      await inPool(batches, PARALLEL_BATCHES, async (batch) => {
        await this.sendBatch(batch);
        for (const entry of batch) queued += leadsIn.get(entry.Id!) ?? 0;
      });
    } catch (error) {
      // inPool awaits every batch in flight before it throws, so `queued` is complete (a batch whose
      // answer was lost may have been queued too: the count is a floor).
      throw new LeadsNotQueuedError(queued, { cause: error });
    }
  }

  async requestDispatch(runId: string, request: DispatchRequest = {}): Promise<void> {
    const { delaySeconds = 0, releasedAt, next, handedShard, carried } = request;
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: asciiJson({
          type: 'dispatch',
          runId,
          ...(releasedAt ? { releasedAt } : {}),
          ...(next ? { next } : {}),
          ...(handedShard === undefined ? {} : { handedShard }),
          ...(carried ? { carried } : {}),
        } satisfies WorkMessage),
        ...(delaySeconds > 0 ? { DelaySeconds: Math.min(900, Math.ceil(delaySeconds)) } : {}),
      }),
    );
  }

  private async sendBatch(entries: SendMessageBatchRequestEntry[]): Promise<void> {
    let pending = entries;
    for (let retry = 0; pending.length > 0; retry++) {
      const { Failed = [] } = await this.sqs.send(
        new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: pending }),
      );
      if (Failed.length === 0) return;
      if (retry >= MAX_ENTRY_RETRIES) {
        throw new Error(`SQS refused ${Failed.length} message(s): ${Failed.map((f) => f.Code).join(', ')}`);
      }
      const failedIds = new Set(Failed.map((f) => f.Id));
      pending = pending.filter((entry) => failedIds.has(entry.Id));
    }
  }
}
