// (adapter) WorkQueue on SQS: lead chunks and "dispatch run X" messages on one queue, consumed by
// the dispatcher through an event source mapping with partial batch responses.

import {
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { DispatchRequest, LeadChunk, WorkMessage, WorkQueue } from '../core/ports.ts';
import { inPool } from './pool.ts';

/** SendMessageBatch takes at most 10 entries. */
const SQS_BATCH = 10;
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
      MessageBody: JSON.stringify({
        type: 'ingest',
        runId,
        chunk: chunk.chunk,
        jobs: chunk.jobs,
      } satisfies WorkMessage),
    }));
    const batches: SendMessageBatchRequestEntry[][] = [];
    for (let i = 0; i < entries.length; i += SQS_BATCH) batches.push(entries.slice(i, i + SQS_BATCH));
    await inPool(batches, PARALLEL_BATCHES, (batch) => this.sendBatch(batch));
  }

  async requestDispatch(runId: string, request: DispatchRequest = {}): Promise<void> {
    const { delaySeconds = 0, releasedAt, next } = request;
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify({
          type: 'dispatch',
          runId,
          ...(releasedAt ? { releasedAt } : {}),
          ...(next && next.length > 0 ? { next } : {}),
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
