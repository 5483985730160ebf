// The SQS work queue adapter on the SQS emulator: message bodies any lead can travel in, batches
// within SQS's size limits, and a send that fails part-way reporting exactly what reached the queue.

import { ReceiveMessageCommand, SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { SqsWorkQueue } from '../../lambdas/adapters/sqs-work-queue.ts';
import { workMessageSchema } from '../../lambdas/adapters/work-message.ts';
import { chunk, LEADS_PER_CHUNK } from '../../lambdas/core/create-run.ts';
import { LeadsNotQueuedError } from '../../lambdas/core/errors.ts';
import { type TestAws, testAws } from '../support/aws.ts';

let aws: TestAws;
beforeAll(async () => {
  aws = await testAws();
});

async function receiveAll(sqs: SQSClient, queueUrl: string) {
  const bodies: string[] = [];
  for (let empty = 0; empty < 2; ) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 300 }),
    );
    if (Messages.length === 0) empty++;
    bodies.push(...Messages.map((m) => m.Body!));
  }
  return bodies;
}

const jobs = (count: number, note: string) =>
  Array.from({ length: count }, (_, i) => ({
    jobId: String(i).padStart(6, '0'),
    phone: `+97252${String(3_000_000 + i)}`,
    attributes: { note, n: i },
  }));

describe('SqsWorkQueue', () => {
  it('queues leads holding any character and 2 KB of fields each, in messages and batches SQS takes', async () => {
    const note = `😀 ש \uffff\ufffe\u0001 ${'א'.repeat(900)}`;
    const all = jobs(300, note);
    const queue = new SqsWorkQueue(aws.sqs, aws.queues.queueUrl);
    await queue.sendLeadChunks('run-sizes', chunk(all, LEADS_PER_CHUNK));
    const bodies = await receiveAll(aws.sqs, aws.queues.queueUrl);
    const received = bodies
      .map((body) => workMessageSchema.parse(JSON.parse(body)))
      .flatMap((message) => (message.type === 'ingest' ? message.jobs : []));
    expect(received.sort((a, b) => a.jobId.localeCompare(b.jobId))).toEqual(all);
    expect(bodies.every((body) => /^[\x20-\x7e]*$/.test(body) && body.length < 256 * 1024)).toBe(true);
  });

  it('reports the leads that reached the queue when a batch is refused', async () => {
    let batches = 0;
    // SQS refusing the second batch outright (what a batch over its size limit gets).
    const sqs = new Proxy(aws.sqs, {
      get(target, name, receiver) {
        if (name !== 'send') return Reflect.get(target, name, receiver);
        return async (command: unknown) => {
          if (command instanceof SendMessageBatchCommand && ++batches === 2) {
            throw Object.assign(new Error('Batch requests cannot be longer than 262144 bytes.'), {
              name: 'BatchRequestTooLong',
            });
          }
          return target.send(command as SendMessageBatchCommand);
        };
      },
    });
    const queue = new SqsWorkQueue(sqs, aws.queues.queueUrl);
    // 25 chunks of 10 leads: three batches (10, 10, 5 messages), the second refused.
    const chunks = chunk(jobs(250, 'x'), 10);
    const error = await queue.sendLeadChunks('run-partial', chunks).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeadsNotQueuedError);
    expect((error as LeadsNotQueuedError).queuedLeads).toBe(
      (await receiveAll(aws.sqs, aws.queues.queueUrl)).length * 10,
    );
  });
});
