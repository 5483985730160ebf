// (handler) SQS → dispatcher. Each record is a lead chunk to ingest or a "dispatch run X"; either way
// the run's free slots are then filled. A failed record goes back to the queue (partial batch
// response) after its wait on WORK_QUEUE.retryScheduleSeconds and, after WORK_QUEUE.maxReceiveCount
// tries, to the dead-letter queue.

import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { makeSqsClient } from '../adapters/aws-clients.ts';
import { withItemTurns } from '../adapters/dynamo/item-turns.ts';
import { retryRecordIn } from '../adapters/sqs-retry.ts';
import { workMessageSchema } from '../adapters/work-message.ts';
import { type DispatchDeps, handleWorkMessage } from '../core/dispatch.ts';
import { systemClock } from '../core/ports.ts';
import { RecentRunOptions } from '../core/recent-run-options.ts';
import { readEnv } from '../definitions/environment.ts';
import { METRICS, serviceName, WORK_QUEUE } from '../definitions/resources.ts';
import { metricsFor, publishRecordedMetrics } from './metrics.ts';
import {
  accountLimits,
  callSettings,
  fillLease,
  recipientChecks,
  runStore,
  twilioTelephony,
  workQueue,
} from './wiring.ts';

const service = serviceName('dispatcher');
const logger = new Logger({ serviceName: service });
const metrics = metricsFor('dispatcher');

let deps: (DispatchDeps & { retryLater(record: SQSRecord, seconds: number): Promise<void> }) | undefined;
function wire(): NonNullable<typeof deps> {
  const env = readEnv([
    'TABLE_NAME',
    'QUEUE_URL',
    'WEBHOOK_URL',
    'TWILIO_SECRET_ID',
    'TWILIO_ACCOUNT_SID',
    'TWILIO_AUTH_TOKEN',
    'TWILIO_FROM_NUMBER',
    'TWILIO_API_BASE_URL',
    'TWILIO_REQUEST_TIMEOUT_MS',
    'TWIML_URL',
    'TWIML',
    'RING_TIMEOUT_SECONDS',
    'CALL_TIME_LIMIT_SECONDS',
    'ACCOUNT_MAX_CONCURRENT_CALLS',
    'ACCOUNT_CALLS_PER_SECOND',
    'SUPPRESSION_CHECK',
    'RECIPIENT_MAX_CALLS',
    'RECIPIENT_WINDOW_HOURS',
  ]);
  const telephony = twilioTelephony(env, { faults: true });
  const account = accountLimits(env);
  const sqs = makeSqsClient();
  return {
    // With faults (chaos tests only): crashes between steps, DynamoDB throttles.
    store: runStore(env, { faults: true }),
    queue: workQueue(env, { faults: true }),
    telephony,
    callControl: telephony, // cancel: Twilio-queued and ringing calls canceled, others hung up
    // Unset limits leave the account item out of the acquire transaction altogether.
    ...(account ? { account } : {}),
    fillLease: fillLease(env), // one filler per run at a time
    recentOptions: new RecentRunOptions(), // warm containers take a refill's hinted job before reading
    recipients: recipientChecks(env), // the suppression list and the frequency cap, in every acquire
    clock: systemClock,
    log: logger,
    calls: callSettings(env),
    retryLater: (record, seconds) => retryRecordIn(sqs, env.QUEUE_URL, record, seconds),
  };
}

async function processRecord(record: SQSRecord): Promise<void> {
  deps ??= wire();
  const d = deps;
  try {
    await processWorkMessage(d, record);
  } catch (error) {
    // The record's next try waits its turn of the schedule; the last try's wait is 0, so the next
    // receive parks it in the dead-letter queue at once.
    const tryNumber = Number(record.attributes.ApproximateReceiveCount);
    const wait = WORK_QUEUE.retryScheduleSeconds[tryNumber - 1] ?? 0;
    await d.retryLater(record, wait).catch((retryError: unknown) =>
      // The queue's own visibility timeout applies instead: the retry still comes, only later.
      logger.warn('could not set the retry wait', { messageId: record.messageId, error: retryError }),
    );
    throw error;
  }
}

async function processWorkMessage(d: DispatchDeps, record: SQSRecord): Promise<void> {
  // A malformed body throws here, fails its record every time and ends in the dead-letter queue.
  const message = workMessageSchema.parse(JSON.parse(record.body));
  const { placed } = await handleWorkMessage(d, message, record.messageId);
  if (placed > 0) {
    metrics.addMetric(METRICS.callsPlaced.name, MetricUnit.Count, placed);
    if (message.type === 'dispatch' && message.releasedAt) {
      // A slot was freed at `releasedAt`; this is how long it took to put the next call on it.
      metrics.addMetric(
        METRICS.refillLatencyMs.name,
        MetricUnit.Milliseconds,
        Date.now() - Date.parse(message.releasedAt),
      );
    }
  }
}

export const handler = middy(
  async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
    // A processor per invocation: it holds the batch's successes and failures, and the local stack
    // runs several invocations at once in one process, where one processor shared by the module would
    // mix their batches up and could report a failed record as done. The batch's records are worked
    // on side by side; their transactions on one item (an account shard, a run) take turns.
    withItemTurns(() =>
      processPartialResponse(event, processRecord, new BatchProcessor(EventType.SQS), { context }),
    ),
)
  .use(injectLambdaContext(logger))
  .use(publishRecordedMetrics(metrics));
