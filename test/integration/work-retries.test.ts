// A work message that fails comes back on the dispatcher's own schedule (WORK_QUEUE.retryScheduleSeconds:
// 1 s, 2 s, 5 s, …), set on the message before the record is reported failed, rather than after the
// queue's three-minute visibility timeout. On the local stack with its default settings, as on AWS.

import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WORK_QUEUE } from '../../lambdas/definitions/resources.ts';
import { LOCAL_AWS } from '../../tools/local/emulators.ts';
import { type LocalStack, startLocalStack } from '../../tools/local/stack.ts';

let stack: LocalStack;
let sqs: SQSClient;
/** When each dispatcher invocation ended, and whether it failed. */
const invocations: { at: number; ok: boolean }[] = [];

beforeAll(async () => {
  stack = await startLocalStack({
    port: 0,
    functionEnv: { POWERTOOLS_LOG_LEVEL: 'CRITICAL' },
    onReport: (report) => {
      if (report.functionName.includes('dispatcher')) invocations.push({ at: Date.now(), ok: report.ok });
    },
    onError: () => {},
  });
  sqs = new SQSClient({ ...LOCAL_AWS, endpoint: stack.endpoints.sqs, useQueueUrlAsEndpoint: false });
});

afterAll(async () => {
  sqs?.destroy();
  await stack?.stop();
});

it('a failed record is retried after 1 s, 2 s and 5 s, not after the queue’s visibility timeout', async () => {
  const schedule = WORK_QUEUE.retryScheduleSeconds;
  // A body no dispatcher can read fails every try.
  await sqs.send(new SendMessageCommand({ QueueUrl: stack.queueUrl, MessageBody: '{"type":"unheard-of"}' }));
  const deadline = Date.now() + 30_000;
  while (invocations.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));

  const tries = invocations.slice(0, 4);
  expect(tries).toHaveLength(4);
  expect(tries.every((i) => !i.ok)).toBe(true);
  const gaps = tries.slice(1).map((t, i) => (t.at - tries[i]!.at) / 1000);
  for (const [i, gap] of gaps.entries()) {
    // Never sooner than its wait (less the emulator's whole-second rounding), and not much later.
    expect(gap).toBeGreaterThanOrEqual(schedule[i]! - 0.5);
    expect(gap).toBeLessThan(schedule[i]! + 5);
  }
  expect(stack.eventSource().failedRecords).toBeGreaterThanOrEqual(4);
}, 60_000);
