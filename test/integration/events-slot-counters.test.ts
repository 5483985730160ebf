// The events function on a run whose cap is split over slot counters (more than 25 slots): the run
// item the stream carries does not say how many calls are live or how many leads ended on the
// counters (the counters do), so a status change is judged with them, read from the table. Through
// the real handler, DynamoDB Local and the SQS emulator: a stream record of a pause, and of the
// release that ends a run's last call on a counter, and the events they put on the delivery queue.

import { randomBytes, randomUUID } from 'node:crypto';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
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

  /** A run of cap 30 (two counters of 15) with `leads` leads, every one of them live on a counter. */
  async function liveOnCounters(leads: number, firstNumber: number) {
    const store = new DynamoRunStore(aws.dynamo, { tableName: aws.tableName });
    const runId = randomUUID();
    await store.createRun({ runId, createdAt: AT, concurrency: 30, totalLeads: leads });
    const jobs = Array.from({ length: leads }, (_, i) => ({
      jobId: jobIdFor(i),
      phone: `+1206555${String(firstNumber + i)}`,
      attributes: {},
    }));
    await store.ingestChunk(runId, 0, jobs, AT);
    const wave = await store.acquireSlots(
      runId,
      30,
      jobs.map((job) => ({ ...job, attempt: 0 })),
      AT,
    );
    expect(wave.acquired).toHaveLength(leads);
    return { store, runId, wave };
  }

  async function eventsFunction() {
    Object.assign(process.env, handlerEnvironment(aws), { EVENTS_QUEUE_URL: queues.eventsQueueUrl });
    return loadFunction<DynamoDBStreamEvent, DynamoDBBatchResponse>('dialgate-events', {
      entry: 'lambdas/handlers/events.ts',
      timeoutSeconds: 30,
      memoryMb: 256,
    });
  }

  async function receiveEvents() {
    const { Messages = [] } = await aws.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queues.eventsQueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 2,
      }),
    );
    await Promise.all(
      Messages.map((message) =>
        aws.sqs.send(
          new DeleteMessageCommand({
            QueueUrl: queues.eventsQueueUrl,
            ReceiptHandle: message.ReceiptHandle!,
          }),
        ),
      ),
    );
    return Messages.map(
      (message) => JSON.parse(message.Body!) as { type: string; data: Record<string, unknown> },
    );
  }

  it('completes a run whose last call ends on a counter, the run item unwritten: the counter says so', async () => {
    const { store, runId, wave } = await liveOnCounters(3, 2000);
    const rawItem = async (key: { pk: string; sk: string }) =>
      (
        await aws.dynamo.send(
          new GetItemCommand({ TableName: aws.tableName, Key: { pk: { S: key.pk }, sk: { S: key.sk } } }),
        )
      ).Item!;
    const runBefore = await rawItem(keys.run(runId));
    const records: DynamoDBStreamEvent['Records'] = [];
    for (const [i, job] of wave.acquired.entries()) {
      const counter = keys.runSlots(runId, job.slotShard!);
      const before = await rawItem(counter);
      const released = await store.releaseSlot({
        runId,
        jobId: job.jobId,
        attempt: 1,
        from: 'dialing',
        to: i === 0 ? 'failed' : 'completed',
        outcome: i === 0 ? 'busy' : 'completed',
        accountShard: null,
        slotShard: job.slotShard!,
        at: AT,
      });
      expect(released).toBe('released');
      records.push({
        eventName: 'MODIFY',
        dynamodb: {
          SequenceNumber: String(10 + i),
          ApproximateCreationDateTime: Date.parse(AT) / 1000,
          Keys: { pk: { S: counter.pk }, sk: { S: counter.sk } } as never,
          OldImage: before as never,
          NewImage: (await rawItem(counter)) as never,
        },
      });
    }
    // The releases counted the leads on the counters; the run item was not written.
    expect(await rawItem(keys.run(runId))).toEqual(runBefore);
    const view = await store.getRunRecord(runId);
    expect(view).toMatchObject({ queued: 0, active: 0, completed: 2, failed: 1 });
    expect(view!.outcomes).toMatchObject({ completed: 2, busy: 1 });

    const fn = await eventsFunction();
    expect(await fn.invoke({ Records: records })).toEqual({ batchItemFailures: [] });
    const events = (await receiveEvents()).filter((event) => event.type === 'run.status_changed');
    // One status change for three records: only the release that left its counter empty can end
    // the run, and it did.
    expect(events).toEqual([
      expect.objectContaining({
        data: expect.objectContaining({
          run_id: runId,
          status: 'completed',
          previous_status: 'running',
          counts: expect.objectContaining({
            queued: 0,
            in_progress: 0,
            completed: 2,
            failed: 1,
            total_leads: 3,
          }),
        }),
      }),
    ]);
    // A replay of the same records says the same, under the same id.
    expect(await fn.invoke({ Records: records })).toEqual({ batchItemFailures: [] });
    const again = (await receiveEvents()).filter((event) => event.type === 'run.status_changed');
    expect(again).toEqual(events);

    // Over, as the run item and its counters say together: closed, and no control or append taken.
    expect(await store.closeRun(runId)).toBe('closed');
    expect((await store.setControl(runId, { to: 'paused', from: ['running'], at: AT })).kind).toBe('refused');
    expect(await store.reserveLeads(runId, { leads: 1, chunks: 1, maxLeads: 100 })).toMatchObject({
      kind: 'refused',
    });
  });

  it('keeps a run open while a lead is live on a counter, whatever its other counters say', async () => {
    const { store, runId, wave } = await liveOnCounters(2, 3000);
    const [first] = wave.acquired;
    await store.releaseSlot({
      runId,
      jobId: first!.jobId,
      attempt: 1,
      from: 'dialing',
      to: 'completed',
      accountShard: null,
      slotShard: first!.slotShard!,
      at: AT,
    });
    expect(await store.getRunRecord(runId)).toMatchObject({ queued: 0, active: 1, completed: 1 });
    expect(await store.closeRun(runId)).toBe('still-open');
    expect((await store.setControl(runId, { to: 'paused', from: ['running'], at: AT })).kind).toBe('changed');
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

    const fn = await eventsFunction();
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
    expect(await receiveEvents()).toEqual([
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
