// (handler) The table's stream → events. Each record (an item before and after one write) is mapped
// to the model, the core derives the events it means, and they are put on the EventBridge bus and,
// when a webhook is configured, on its delivery queue. Off the refill path: nothing here is waited
// for by a call. A record whose events were not all taken is reported failed, and Lambda reads the
// shard on from it (records before it are done); ids are stable, so a re-read sends duplicates, never
// different events.

import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import middy from '@middy/core';
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { makeSqsClient } from '../adapters/aws-clients.ts';
import { changeOf, changeTime } from '../adapters/dynamo/stream-change.ts';
import { EventBridgeSink, SqsDeliverySink } from '../adapters/event-sinks.ts';
import { type ChangeEvents, type EventSink, publishChanges } from '../core/event-delivery.ts';
import { eventsForChange } from '../core/events.ts';
import { readEnv } from '../definitions/environment.ts';
import { serviceName } from '../definitions/resources.ts';

const logger = new Logger({ serviceName: serviceName('events') });

let sinks: EventSink[] | undefined;
function wire(): EventSink[] {
  const env = readEnv(['EVENT_BUS_NAME', 'EVENTS_QUEUE_URL']);
  const wired: EventSink[] = [];
  // Locally there is no bus: events reach the webhook only.
  if (env.EVENT_BUS_NAME) wired.push(new EventBridgeSink(new EventBridgeClient({}), env.EVENT_BUS_NAME));
  if (env.EVENTS_QUEUE_URL) wired.push(new SqsDeliverySink(makeSqsClient(), env.EVENTS_QUEUE_URL));
  if (wired.length === 0) logger.warn('no bus and no webhook configured: events are derived and dropped');
  return wired;
}

export const handler = middy(async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
  sinks ??= wire();
  const changes: ChangeEvents[] = [];
  for (const record of event.Records) {
    const change = changeOf(record);
    const events = change ? eventsForChange(change, changeTime(record)) : [];
    changes.push({ key: record.dynamodb?.SequenceNumber ?? '', events });
  }
  const failed = await publishChanges({ sinks, log: logger }, changes);
  return { batchItemFailures: failed === undefined ? [] : [{ itemIdentifier: failed }] };
}).use(injectLambdaContext(logger));
