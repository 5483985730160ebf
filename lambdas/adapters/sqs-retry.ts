// (adapter) A failed SQS record's own wait before its next try: its visibility timeout, set by the
// consumer before it reports the record failed (the event source mapping leaves it as set).

import { ChangeMessageVisibilityCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';

export async function retryRecordIn(
  sqs: SQSClient,
  queueUrl: string,
  record: SQSRecord,
  seconds: number,
): Promise<void> {
  await sqs.send(
    new ChangeMessageVisibilityCommand({
      QueueUrl: queueUrl,
      ReceiptHandle: record.receiptHandle,
      VisibilityTimeout: seconds,
    }),
  );
}
