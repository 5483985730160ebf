// The dispatcher handler, invoked as Lambda invokes it (a made-up SQS batch and context), works on its
// batch's records side by side inside one invocation's item turns: eight dispatches of eight runs, all
// reaching for the account's one shard at once, place their eight calls without a single transaction
// conflict under the limits model. Sent side by side without the turns, the same acquires conflict
// (test/integration/dynamo-limits.test.ts, "one invocation's transactions on an item take turns").
//
// The handler reads its environment at its first invocation, and the limits model is one per process:
// vitest runs each file in a process of its own (pool 'forks'), so neither reaches other files.

import { randomUUID } from 'node:crypto';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { limitsModelFromEnv } from '../../lambdas/adapters/dynamo-limits.ts';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { jobIdFor } from '../../lambdas/core/model.ts';
import { startTwilioSimulator, type TwilioSimulator } from '../../tools/twilio-simulator/simulator.ts';
import { handlerEnvironment, type TestAws, testAws } from '../support/aws.ts';

const AT = '2026-11-30T09:00:00.000Z';
const RUNS = 8;

let aws: TestAws;
let twilio: TwilioSimulator;

beforeAll(async () => {
  aws = await testAws();
  // Calls ring for a minute: every slot taken stays taken while the test looks.
  twilio = await startTwilioSimulator({ queuedMs: 0, ringMs: 60_000, talkMs: 1_000 });
  Object.assign(process.env, handlerEnvironment(aws), {
    DYNAMO_LIMITS_MODEL: '1',
    ACCOUNT_MAX_CONCURRENT_CALLS: '50', // one shard counter of 50
    TWILIO_ACCOUNT_SID: twilio.accountSid,
    TWILIO_AUTH_TOKEN: twilio.authToken,
    TWILIO_API_BASE_URL: twilio.url,
    TWILIO_FROM_NUMBER: '+15005550006',
    WEBHOOK_URL: 'http://127.0.0.1:9/', // callbacks go nowhere: this test reads the double instead
  });
});

afterAll(async () => {
  await twilio?.stop();
});

function record(body: unknown): SQSRecord {
  return {
    messageId: randomUUID(),
    receiptHandle: randomUUID(),
    body: JSON.stringify(body),
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(Date.now()),
      SenderId: 'local',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:dialgate-work',
    awsRegion: 'us-east-1',
  };
}

it("a batch's dispatches reaching for one account shard take turns: every call placed, no conflict", async () => {
  const store = new DynamoRunStore(aws.dynamo, { tableName: aws.tableName });
  const runIds = await Promise.all(
    Array.from({ length: RUNS }, async (_, r) => {
      const runId = randomUUID();
      await store.createRun({ runId, createdAt: AT, concurrency: 1, totalLeads: 1, chunkCount: 1 });
      // UK mobile numbers, one per run.
      await store.ingestChunk(
        runId,
        0,
        [{ jobId: jobIdFor(0), phone: `+4479111234${50 + r}`, attributes: {} }],
        AT,
      );
      return runId;
    }),
  );
  const { handler } = await import('../../lambdas/handlers/dispatcher.ts');
  const event: SQSEvent = {
    Records: runIds.map((runId) => record({ type: 'dispatch', runId })),
  };
  const context = {
    functionName: 'dialgate-dispatcher',
    awsRequestId: randomUUID(),
    getRemainingTimeInMillis: () => 60_000,
  } as unknown as Context;

  const response = await handler(event, context);

  expect(response.batchItemFailures).toEqual([]);
  expect(twilio.stats()).toMatchObject({ created: RUNS, live: RUNS });
  // The one shard took the eight acquires one after another, none cancelled by another.
  expect(limitsModelFromEnv()!.report.conflicts).toBe(0);
});
