// The local stand-in for Lambda's SQS event source mapping with ReportBatchItemFailures: a few
// concurrent pollers (Lambda's concurrency), each long-polling for a batch, invoking the function with
// an SQSEvent, deleting what succeeded and leaving the rest to come back — the redrive policy on the
// queue moves a message that keeps failing to the DLQ, exactly as in AWS.

import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import type { LocalFunction } from './lambda-runtime.ts';

export interface SqsEventSourceOptions {
  fn: LocalFunction<SQSEvent, SQSBatchResponse | undefined>;
  /** Must route by its endpoint, not the queue URL's host (`useQueueUrlAsEndpoint: false`). */
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  region: string;
  batchSize: number;
  /** Concurrent pollers, each invoking one batch at a time: the function's concurrency. */
  pollers: number;
  /**
   * Seconds a failed record stays invisible before it is retried. AWS waits out the queue's whole
   * visibility timeout (minutes); locally a short wait keeps retries quick to observe. Unset: a failed
   * record is left as it is, as AWS does (a function that sets its own retry wait needs this).
   */
  retryVisibilitySeconds?: number | undefined;
  /**
   * Long-poll wait. A message wakes a waiting poll at once whatever this is, so it costs no latency;
   * it only bounds how long stop() waits for the pollers to come back.
   */
  waitTimeSeconds?: number;
  onError?: (error: unknown, where: string) => void;
}

export interface EventSourceStats {
  invocations: number;
  records: number;
  /** Records reported failed (or whose batch failed), left for a retry or the DLQ. */
  failedRecords: number;
  /** Invocations that threw or timed out: their whole batch failed. */
  failedInvocations: number;
  /** The most invocations that were running at the same moment (Lambda's concurrency, observed). */
  maxConcurrentInvocations: number;
}

export interface RunningEventSource {
  stats(): EventSourceStats;
  stop(): Promise<void>;
}

export function toSqsRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const system = message.Attributes ?? {};
  return {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: system.ApproximateReceiveCount ?? '1',
      SentTimestamp: system.SentTimestamp ?? String(Date.now()),
      SenderId: system.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: system.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      ...(system.AWSTraceHeader ? { AWSTraceHeader: system.AWSTraceHeader } : {}),
    },
    messageAttributes: toLambdaAttributes(message.MessageAttributes ?? {}),
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

/** The SDK's attribute shape → the camel-cased one Lambda delivers, binaries base64-encoded. */
function toLambdaAttributes(attributes: Record<string, MessageAttributeValue>): SQSMessageAttributes {
  const out: SQSMessageAttributes = {};
  const b64 = (value: Uint8Array) => Buffer.from(value).toString('base64');
  for (const [name, value] of Object.entries(attributes)) {
    out[name] = {
      dataType: value.DataType ?? 'String',
      stringListValues: value.StringListValues ?? [],
      binaryListValues: (value.BinaryListValues ?? []).map(b64),
      ...(value.StringValue === undefined ? {} : { stringValue: value.StringValue }),
      ...(value.BinaryValue === undefined ? {} : { binaryValue: b64(value.BinaryValue) }),
    };
  }
  return out;
}

/**
 * Which records failed, read as Lambda reads a partial batch response: nothing (or an empty list)
 * means all succeeded; a malformed response, or one naming a record not in the batch, fails them all.
 */
export function failedRecordIds(result: unknown, batch: SQSRecord[]): Set<string> {
  const all = new Set(batch.map((record) => record.messageId));
  if (result === undefined || result === null || result === '') return new Set();
  if (typeof result !== 'object') return all;
  const failures = (result as Partial<SQSBatchResponse>).batchItemFailures;
  if (failures === undefined || failures === null) return new Set();
  if (!Array.isArray(failures)) return all;
  const failed = new Set<string>();
  for (const failure of failures) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || !all.has(id)) return all;
    failed.add(id);
  }
  return failed;
}

export function startSqsEventSource(options: SqsEventSourceOptions): RunningEventSource {
  const stats: EventSourceStats = {
    invocations: 0,
    records: 0,
    failedRecords: 0,
    failedInvocations: 0,
    maxConcurrentInvocations: 0,
  };
  let running = 0;
  const waitTimeSeconds = options.waitTimeSeconds ?? 1;
  let stopping = false;
  const report = (error: unknown, where: string) => options.onError?.(error, where);

  async function invokeBatch(messages: Message[]): Promise<void> {
    const records = messages.map((message) => toSqsRecord(message, options.queueArn, options.region));
    stats.invocations += 1;
    stats.records += records.length;
    let failed: Set<string>;
    running += 1;
    stats.maxConcurrentInvocations = Math.max(stats.maxConcurrentInvocations, running);
    try {
      failed = failedRecordIds(await options.fn.invoke({ Records: records }), records);
    } catch (error) {
      stats.failedInvocations += 1;
      report(error, `${options.fn.name} invocation`);
      failed = new Set(records.map((record) => record.messageId));
    } finally {
      running -= 1;
    }
    stats.failedRecords += failed.size;

    const done = records.filter((record) => !failed.has(record.messageId));
    const retry = records.filter((record) => failed.has(record.messageId));
    const entries = (list: SQSRecord[]) =>
      list.map((record, i) => ({ Id: String(i), ReceiptHandle: record.receiptHandle }));
    try {
      if (done.length > 0) {
        await options.sqs.send(
          new DeleteMessageBatchCommand({ QueueUrl: options.queueUrl, Entries: entries(done) }),
        );
      }
      const retryWait = options.retryVisibilitySeconds;
      if (retry.length > 0 && retryWait !== undefined) {
        await options.sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: options.queueUrl,
            Entries: entries(retry).map((entry) => ({
              ...entry,
              VisibilityTimeout: retryWait,
            })),
          }),
        );
      }
    } catch (error) {
      // The records come back after the visibility timeout and are processed again: at-least-once.
      report(error, 'acknowledging a batch');
    }
  }

  async function poll(): Promise<void> {
    while (!stopping) {
      let messages: Message[];
      try {
        const received = await options.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: options.queueUrl,
            MaxNumberOfMessages: options.batchSize,
            WaitTimeSeconds: waitTimeSeconds,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
          }),
        );
        messages = received.Messages ?? [];
      } catch (error) {
        if (stopping) return;
        report(error, 'receiving from the queue');
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        continue;
      }
      // A batch received while stopping is still processed: dropping it would hide it for the full
      // visibility timeout.
      if (messages.length > 0) await invokeBatch(messages);
    }
  }

  const pollers = Array.from({ length: options.pollers }, () => poll());
  return {
    stats: () => ({ ...stats }),
    async stop() {
      stopping = true;
      await Promise.all(pollers);
    },
  };
}
