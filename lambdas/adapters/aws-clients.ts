// (adapter) The AWS SDK clients, built once per cold start. Endpoints come from the SDK's own
// environment variables (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS), which is how the local
// stack points them at DynamoDB Local and the SQS emulator without any code knowing.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';

/**
 * Attempts per DynamoDB request (the SDK's default is 3). Every slot change is a transaction on one
 * hot item, the run; riding out a burst of throttling here is cheaper than failing the invocation.
 */
export const DYNAMO_MAX_ATTEMPTS = 6;

export function makeDynamoClient(): DynamoDBClient {
  return new DynamoDBClient({ maxAttempts: DYNAMO_MAX_ATTEMPTS });
}

export function makeSqsClient(): SQSClient {
  // Route by the configured endpoint, not the queue URL's host: emulators hand out queue URLs whose
  // host does not resolve, and in AWS the two are the same regional endpoint anyway.
  return new SQSClient({ useQueueUrlAsEndpoint: false });
}
