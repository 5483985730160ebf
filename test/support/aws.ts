// Test helpers for the emulators: a fresh table and queue per test file, and clients pointed at them.

import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { inject } from 'vitest';
import { createTable, createWorkQueues, LOCAL_AWS, type WorkQueues } from '../../tools/local/emulators.ts';

export interface TestAws {
  tableName: string;
  queues: WorkQueues;
  dynamo: DynamoDBClient;
  sqs: SQSClient;
  dynamoEndpoint: string;
  sqsEndpoint: string;
}

export async function testAws(): Promise<TestAws> {
  const dynamoEndpoint = inject('dynamoEndpoint');
  const sqsEndpoint = inject('sqsEndpoint');
  const suffix = randomUUID().slice(0, 8);
  const tableName = `dialgate-test-${suffix}`;
  await createTable(dynamoEndpoint, tableName);
  const queues = await createWorkQueues(sqsEndpoint, `dialgate-work-${suffix}`);
  return {
    tableName,
    queues,
    dynamoEndpoint,
    sqsEndpoint,
    dynamo: new DynamoDBClient({ ...LOCAL_AWS, endpoint: dynamoEndpoint }),
    sqs: new SQSClient({ ...LOCAL_AWS, endpoint: sqsEndpoint, useQueueUrlAsEndpoint: false }),
  };
}

/**
 * The environment a handler imported by a test reads at its first invocation, pointed at this file's
 * table and queue (and local credentials, which the emulators accept).
 */
export function handlerEnvironment(aws: TestAws): Record<string, string> {
  return {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: aws.dynamoEndpoint,
    AWS_ENDPOINT_URL_SQS: aws.sqsEndpoint,
    TABLE_NAME: aws.tableName,
    QUEUE_URL: aws.queues.queueUrl,
  };
}
