// (handler) The webhook delivery queue → the endpoint. Each message is one event: signed and posted
// (all of a batch at once). A failed try sets the message's own wait before the next one (its
// visibility timeout, from the retry schedule) and is reported failed; after the last try the queue's
// redrive policy parks it in the dead-letter queue, which is alarmed.

import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { makeSqsClient } from '../adapters/aws-clients.ts';
import { DELIVERY_ID_ATTRIBUTE } from '../adapters/event-sinks.ts';
import { retryRecordIn } from '../adapters/sqs-retry.ts';
import { HttpWebhookSender, signingSecret } from '../adapters/webhook-sender.ts';
import { deliverEvent, type WebhookSender } from '../core/event-delivery.ts';
import { readEnv } from '../definitions/environment.ts';
import { EVENTS_DELIVERY, serviceName } from '../definitions/resources.ts';

const logger = new Logger({ serviceName: serviceName('delivery') });

interface Deps {
  sender: WebhookSender;
  retryScheduleSeconds: readonly number[];
  retryLater(record: SQSRecord, seconds: number): Promise<void>;
}

let deps: Deps | undefined;
function wire(): Deps {
  const env = readEnv([
    'EVENTS_QUEUE_URL',
    'EVENTS_WEBHOOK_URL',
    'EVENTS_WEBHOOK_SECRET',
    'EVENTS_WEBHOOK_SECRET_ID',
    'EVENTS_RETRY_SCHEDULE_SECONDS',
    'EVENTS_REQUEST_TIMEOUT_MS',
  ]);
  if (!env.EVENTS_WEBHOOK_URL || !env.EVENTS_QUEUE_URL) {
    throw new Error('Invalid configuration: EVENTS_WEBHOOK_URL and EVENTS_QUEUE_URL are required.');
  }
  const sqs = makeSqsClient();
  const queueUrl = env.EVENTS_QUEUE_URL;
  return {
    sender: new HttpWebhookSender({
      url: env.EVENTS_WEBHOOK_URL,
      secret: signingSecret(env),
      timeoutMs: env.EVENTS_REQUEST_TIMEOUT_MS,
    }),
    retryScheduleSeconds:
      env.EVENTS_RETRY_SCHEDULE_SECONDS.length > 0
        ? env.EVENTS_RETRY_SCHEDULE_SECONDS
        : EVENTS_DELIVERY.retryScheduleSeconds,
    retryLater: (record, seconds) => retryRecordIn(sqs, queueUrl, record, seconds),
  };
}

async function deliver(d: Deps, record: SQSRecord): Promise<boolean> {
  const id = record.messageAttributes[DELIVERY_ID_ATTRIBUTE]?.stringValue;
  // Without its id the message cannot be signed as the event it is: fail it until it is parked.
  if (!id) {
    logger.error('delivery without a webhook-id', { messageId: record.messageId });
    return false;
  }
  const outcome = await deliverEvent(
    { sender: d.sender, log: logger, retryScheduleSeconds: d.retryScheduleSeconds },
    { id, body: record.body },
    Number(record.attributes.ApproximateReceiveCount),
  );
  if (outcome.kind === 'delivered') return true;
  // The last try fails at once: the next receive moves the message to the dead-letter queue.
  await d.retryLater(record, outcome.kind === 'retry' ? outcome.retryInSeconds : 0).catch((error) =>
    // The queue's own visibility timeout applies instead: a retry still comes, only sooner or later.
    logger.warn('could not set the retry wait', { id, error }),
  );
  return false;
}

export const handler = middy(async (event: SQSEvent): Promise<SQSBatchResponse> => {
  deps ??= wire();
  const d = deps;
  const failures: SQSBatchItemFailure[] = [];
  await Promise.all(
    event.Records.map(async (record) => {
      const ok = await deliver(d, record).catch((error: unknown) => {
        logger.error('delivery failed', { messageId: record.messageId, error });
        return false;
      });
      if (!ok) failures.push({ itemIdentifier: record.messageId });
    }),
  );
  return { batchItemFailures: failures };
}).use(injectLambdaContext(logger));
