// Starts DynamoDB Local and the SQS emulator once for the whole test run; each test file makes its
// own table and queues (unique names), so files stay independent while sharing the slow JVM start.

import type { TestProject } from 'vitest/node';
import { startDynamoDbLocal, startSqsEmulator } from '../../tools/local/emulators.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
    sqsEndpoint: string;
  }
}

export default async function setup(project: TestProject) {
  const [dynamo, sqs] = await Promise.all([startDynamoDbLocal(), startSqsEmulator()]);
  project.provide('dynamoEndpoint', dynamo.endpoint);
  project.provide('sqsEndpoint', sqs.endpoint);
  return async () => {
    await Promise.all([dynamo.stop(), sqs.stop()]);
  };
}
