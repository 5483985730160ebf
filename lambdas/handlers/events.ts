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
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { makeSqsClient } from '../adapters/aws-clients.ts';
import { changeOf, changeTime, runWithSlotCounters } from '../adapters/dynamo/stream-change.ts';
import { EventBridgeSink, SqsDeliverySink } from '../adapters/event-sinks.ts';
import { type ChangeEvents, type EventSink, publishChanges } from '../core/event-delivery.ts';
import {
  type DialgateEvent,
  eventsForChange,
  eventsForSlotChange,
  slotChangeMayEndRun,
  withCountersOf,
} from '../core/events.ts';
import type { RunReader } from '../core/ports.ts';
import { readEnv } from '../definitions/environment.ts';
import { serviceName } from '../definitions/resources.ts';
import { runStore } from './wiring.ts';

const logger = new Logger({ serviceName: serviceName('events') });

let wired: { sinks: EventSink[]; runs: RunReader } | undefined;
function wire(): { sinks: EventSink[]; runs: RunReader } {
  const env = readEnv(['EVENT_BUS_NAME', 'EVENTS_QUEUE_URL', 'TABLE_NAME']);
  const sinks: EventSink[] = [];
  // Locally there is no bus: events reach the webhook only.
  if (env.EVENT_BUS_NAME) sinks.push(new EventBridgeSink(new EventBridgeClient({}), env.EVENT_BUS_NAME));
  if (env.EVENTS_QUEUE_URL) sinks.push(new SqsDeliverySink(makeSqsClient(), env.EVENTS_QUEUE_URL));
  if (sinks.length === 0) logger.warn('no bus and no webhook configured: events are derived and dropped');
  return { sinks, runs: runStore(env) };
}

/**
 * A record's events. A run whose cap is split over slot counters is its item and its counters (they
 * count its live calls and most of its final leads): a change of either is seen with the other as
 * read now.
 */
async function eventsOf(runs: RunReader, record: DynamoDBRecord): Promise<DialgateEvent[]> {
  const change = changeOf(record);
  if (!change) return [];
  const at = changeTime(record);
  if (change.entity === 'slots') {
    // Read only when it can matter: a lead made final on a counter with no call left on it.
    if (!slotChangeMayEndRun(change)) return [];
    const run = await runs.getRunRecord(change.runId);
    return run ? eventsForSlotChange(change, run, at) : [];
  }
  const runId = runWithSlotCounters(record);
  if (change.entity === 'run' && runId)
    return eventsForChange(withCountersOf(change, await runs.slotCounts(runId)), at);
  return eventsForChange(change, at);
}

export const handler = middy(async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
  wired ??= wire();
  const changes: ChangeEvents[] = [];
  for (const record of event.Records) {
    changes.push({ key: record.dynamodb?.SequenceNumber ?? '', events: await eventsOf(wired.runs, record) });
  }
  const failed = await publishChanges({ sinks: wired.sinks, log: logger }, changes);
  return { batchItemFailures: failed === undefined ? [] : [{ itemIdentifier: failed }] };
}).use(injectLambdaContext(logger));
