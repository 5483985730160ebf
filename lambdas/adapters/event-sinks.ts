// (adapter) Where events go: the stack's EventBridge bus (source `dialgate`, detail-type the event's
// type, detail the event with its id) and the webhook delivery queue (the exact body a webhook
// receives, with its id as a message attribute). Both take batches of ten; an entry refused is
// reported back by id, so that the change it came from is read again.

import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { asciiJson } from '../core/ascii-json.ts';
import type { EventSink } from '../core/event-delivery.ts';
import { type DialgateEvent, EVENT_SOURCE, webhookBody } from '../core/events.ts';
import { inPool } from './pool.ts';

/** PutEvents and SendMessageBatch both take at most ten entries. */
const BATCH = 10;
/** Batches in flight at once. */
const PARALLEL = 4;

/** The message attribute carrying a delivery's `webhook-id`. */
export const DELIVERY_ID_ATTRIBUTE = 'webhook-id';

function batches<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += BATCH) out.push(items.slice(i, i + BATCH));
  return out;
}

export class EventBridgeSink implements EventSink {
  readonly name = 'eventbridge';
  constructor(
    private readonly client: EventBridgeClient,
    private readonly busName: string,
  ) {}

  async publish(events: readonly DialgateEvent[]): Promise<ReadonlySet<string>> {
    const failed = new Set<string>();
    await inPool(batches(events), PARALLEL, async (batch) => {
      const { FailedEntryCount = 0, Entries = [] } = await this.client.send(
        new PutEventsCommand({
          Entries: batch.map((event) => ({
            EventBusName: this.busName,
            Source: EVENT_SOURCE,
            DetailType: event.type,
            Time: new Date(event.timestamp),
            Detail: asciiJson(event),
          })),
        }),
      );
      if (FailedEntryCount === 0) return;
      // Result entries come in request order; a failed one carries an ErrorCode.
      batch.forEach((event, i) => {
        if (Entries[i]?.ErrorCode) failed.add(event.id);
      });
    });
    return failed;
  }
}

export class SqsDeliverySink implements EventSink {
  readonly name = 'webhook-queue';
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async publish(events: readonly DialgateEvent[]): Promise<ReadonlySet<string>> {
    const failed = new Set<string>();
    await inPool(batches(events), PARALLEL, async (batch) => {
      const { Failed = [] } = await this.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: batch.map((event, i) => ({
            Id: String(i),
            MessageBody: webhookBody(event),
            MessageAttributes: {
              [DELIVERY_ID_ATTRIBUTE]: { DataType: 'String', StringValue: event.id },
            },
          })),
        }),
      );
      for (const entry of Failed) {
        const event = batch[Number(entry.Id)];
        if (event) failed.add(event.id);
      }
    });
    return failed;
  }
}
