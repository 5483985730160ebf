// (handler) SQS → dispatcher. Each record is a lead chunk to ingest or a "dispatch run X"; either way
// the run's free slots are then filled. Failed records go back to the queue (partial batch response)
// and, after WORK_QUEUE.maxReceiveCount tries, to the dead-letter queue.

import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { makeDynamoClient, makeSqsClient } from '../adapters/aws-clients.ts';
import { DynamoRunStore } from '../adapters/dynamo-run-store.ts';
import { withInjectedCrashes, withInjectedDynamoFaults } from '../adapters/fault-injection.ts';
import { SqsWorkQueue } from '../adapters/sqs-work-queue.ts';
import { credentialSource } from '../adapters/twilio-credentials.ts';
import { TwilioTelephony } from '../adapters/twilio-telephony.ts';
import { workMessageSchema } from '../adapters/work-message.ts';
import { type DispatchDeps, handleWorkMessage, RecentRunOptions } from '../core/dispatch.ts';
import { systemClock } from '../core/ports.ts';
import { readEnv } from '../definitions/environment.ts';
import { METRICS, serviceName } from '../definitions/resources.ts';
import { metricsFor, publishRecordedMetrics } from './metrics.ts';

const service = serviceName('dispatcher');
const logger = new Logger({ serviceName: service });
const metrics = metricsFor('dispatcher');

let deps: DispatchDeps | undefined;
function wire(): DispatchDeps {
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
  ]);
  const telephony = withInjectedCrashes(
    new TwilioTelephony({
      credentials: credentialSource(env),
      apiBaseUrl: env.TWILIO_API_BASE_URL,
      timeoutMs: env.TWILIO_REQUEST_TIMEOUT_MS,
    }),
    'telephony',
  );
  const account = {
    ...(env.ACCOUNT_MAX_CONCURRENT_CALLS ? { maxConcurrentCalls: env.ACCOUNT_MAX_CONCURRENT_CALLS } : {}),
    ...(env.ACCOUNT_CALLS_PER_SECOND ? { callsPerSecond: env.ACCOUNT_CALLS_PER_SECOND } : {}),
  };
  return {
    // Inert unless DIALGATE_FAULTS is set (chaos tests): crashes between steps, DynamoDB throttles.
    store: withInjectedCrashes(
      new DynamoRunStore(withInjectedDynamoFaults(makeDynamoClient()), { tableName: env.TABLE_NAME }),
      'store',
    ),
    queue: withInjectedCrashes(new SqsWorkQueue(makeSqsClient(), env.QUEUE_URL), 'queue'),
    telephony,
    callControl: telephony, // cancel: Twilio-queued and ringing calls canceled, others hung up
    // Unset limits leave the account item out of the acquire transaction altogether.
    ...(Object.keys(account).length > 0 ? { account } : {}),
    recentOptions: new RecentRunOptions(), // warm containers take a refill's hinted job before reading
    clock: systemClock,
    log: logger,
    calls: {
      from: env.TWILIO_FROM_NUMBER,
      webhookUrl: env.WEBHOOK_URL,
      ringTimeoutSeconds: env.RING_TIMEOUT_SECONDS,
      timeLimitSeconds: env.CALL_TIME_LIMIT_SECONDS,
      content: env.TWIML_URL ? { twimlUrl: env.TWIML_URL } : { twiml: env.TWIML },
    },
  };
}

async function processRecord(record: SQSRecord): Promise<void> {
  deps ??= wire();
  // A malformed body throws here, fails its record every time and ends in the dead-letter queue.
  const message = workMessageSchema.parse(JSON.parse(record.body));
  const { placed } = await handleWorkMessage(deps, message);
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
    // runs several invocations at once in one process (a module-level one mixed their batches up and
    // reported a failed record as done, losing it).
    processPartialResponse(event, processRecord, new BatchProcessor(EventType.SQS), { context }),
)
  .use(injectLambdaContext(logger))
  .use(publishRecordedMetrics(metrics));
