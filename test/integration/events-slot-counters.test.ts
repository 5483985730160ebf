// The events function on a run whose cap is split over slot counters (more than 25 slots): the run
// item the stream carries does not say how many calls are live (the counters do), so a status
// event's counts are read from the table. Through the real handler, DynamoDB Local and the SQS
// emulator: a stream record of a pause, the event it puts on the delivery queue.

import { randomBytes, randomUUID } from 'node:crypto';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { runRecordFromItem } from '../../lambdas/adapters/dynamo/items.ts';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { runCounts } from '../../lambdas/core/events.ts';
import { jobIdFor } from '../../lambdas/core/model.ts';
import { keys } from '../../lambdas/definitions/table-schema.ts';
import { createEventsQueues, type EventsQueues } from '../../tools/local/events-pipeline.ts';
import { loadFunction } from '../../tools/local/lambda-runtime.ts';
import { handlerEnvironment, type TestAws, testAws } from '../support/aws.ts';

const AT = '2026-11-30T09:00:00.000Z';

describe('events of a run split over slot counters', () => {
  let aws: TestAws;
  let queues: EventsQueues;
  beforeAll(async () => {
    aws = await testAws();
    queues = await createEventsQueues(aws.sqsEndpoint, `dialgate-events-${randomBytes(4).toString('hex')}`);
  });

  it("counts the calls live on the run's counters in a status change's counts", async () => {
    const store = new DynamoRunStore(aws.dynamo, { tableName: aws.tableName });
    const runId = randomUUID();
    // Cap 30: two counters of 15 (the run item holds no slot).
    await store.createRun({ runId, createdAt: AT, concurrency: 30, totalLeads: 10 });
    const jobs = Array.from({ length: 10 }, (_, i) => ({
      jobId: jobIdFor(i),
      phone: `+1206555${String(1000 + i)}`,
      attributes: {},
    }));
    await store.ingestChunk(runId, 0, jobs, AT);
    const wave = await store.acquireSlots(
      runId,
      30,
      jobs.slice(0, 4).map((job) => ({ ...job, attempt: 0 })),
      AT,
    );
    expect(wave.acquired).toHaveLength(4);
    const rawRun = async () =>
      (await aws.dynamo.send(new GetItemCommand({ TableName: aws.tableName, Key: marshalled(runId) }))).Item!;
    const before = await rawRun();
    expect((await store.setControl(runId, { to: 'paused', from: ['running'], at: AT })).kind).toBe('changed');
    const after = await rawRun();
    // What the run item alone says: nothing live, the live calls counted as queued.
    expect(runCounts(runRecordFromItem(unmarshall(after)))).toMatchObject({ in_progress: 0, queued: 10 });

    Object.assign(process.env, handlerEnvironment(aws), { EVENTS_QUEUE_URL: queues.eventsQueueUrl });
    const fn = await loadFunction<DynamoDBStreamEvent, DynamoDBBatchResponse>('dialgate-events', {
      entry: 'lambdas/handlers/events.ts',
      timeoutSeconds: 30,
      memoryMb: 256,
    });
    const result = await fn.invoke({
      Records: [
        {
          eventName: 'MODIFY',
          dynamodb: {
            SequenceNumber: '1',
            ApproximateCreationDateTime: Date.parse(AT) / 1000,
            Keys: marshalled(runId) as never,
            OldImage: before as never,
            NewImage: after as never,
          },
        },
      ],
    });
    expect(result).toEqual({ batchItemFailures: [] });
    const { Messages = [] } = await aws.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queues.eventsQueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 2,
      }),
    );
    const bodies = Messages.map((message) => JSON.parse(message.Body!));
    expect(bodies).toEqual([
      expect.objectContaining({
        type: 'run.status_changed',
        data: expect.objectContaining({
          run_id: runId,
          status: 'paused',
          previous_status: 'running',
          counts: expect.objectContaining({ in_progress: 4, queued: 6, total_leads: 10 }),
        }),
      }),
    ]);
  });
});

function marshalled(runId: string) {
  const { pk, sk } = keys.run(runId);
  return { pk: { S: pk }, sk: { S: sk } };
}
