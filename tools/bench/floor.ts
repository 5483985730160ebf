// (bench) The floor: the round trips a refill cannot avoid, measured one at a time against the very
// emulators and Twilio double the stack is using, from the same process, with the same clients: one
// TransactWriteItems of two items, one SQS send picked up by a waiting long poll, and one calls.create
// through the real Twilio adapter. The "path floor" is the refill path with no time spent between
// requests: the webhook's release transaction (its hint query runs alongside), the SQS hand-off, the
// dispatcher's acquire transaction, the create. A read of the run and a query are timed too: the long
// way (a cold dispatcher, a stale hint) adds them.

import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { TwilioTelephony } from '../../lambdas/adapters/twilio-telephony.ts';
import { TABLE_SCHEMA } from '../../lambdas/definitions/resources.ts';
import { LOCAL_AWS } from '../local/emulators.ts';
import type { LocalStack } from '../local/stack.ts';
import type { TwilioSimulator } from '../twilio-simulator/simulator.ts';
import type { Probe } from './probe.ts';
import { round, type Summary, summarize } from './stats.ts';

export interface FloorSamples {
  getItem: number[];
  transaction: number[];
  sqsSend: number[];
  /** From the start of SendMessage to a long poll already waiting returning the message. */
  sqsSendToReceive: number[];
  create: number[];
  query: number[];
}

export interface FloorResult {
  samples: number;
  ops: Record<keyof FloorSamples, Summary>;
  /** The floor: transaction + SQS send→receive + create (sum of medians), ms. */
  floorMs: number;
  /** Every round trip on the refill path, in sequence (sum of medians), ms. */
  pathFloorMs: number;
}

export function emptyFloorSamples(): FloorSamples {
  return { getItem: [], transaction: [], sqsSend: [], sqsSendToReceive: [], create: [], query: [] };
}

export function floorOf(samples: FloorSamples): FloorResult {
  const ops = Object.fromEntries(
    Object.entries(samples).map(([name, list]) => [name, summarize(list)]),
  ) as Record<keyof FloorSamples, Summary>;
  const floorMs = ops.transaction.p50 + ops.sqsSendToReceive.p50 + ops.create.p50;
  // Webhook: release (the hint query alongside) + send; SQS wake-up; dispatcher: acquire; create.
  const pathFloorMs = floorMs + ops.transaction.p50;
  return { samples: samples.getItem.length, ops, floorMs: round(floorMs), pathFloorMs: round(pathFloorMs) };
}

/** Takes `rounds` samples of each round trip, appending to `into`. Runs as the bench's own traffic. */
export async function measureFloor(
  bench: { stack: LocalStack; sim: TwilioSimulator; probe: Probe },
  rounds: number,
  into: FloorSamples,
): Promise<void> {
  const { stack, sim, probe } = bench;
  await probe.asBench(async () => {
    const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: stack.endpoints.dynamodb });
    const sqs = new SQSClient({ ...LOCAL_AWS, endpoint: stack.endpoints.sqs, useQueueUrlAsEndpoint: false });
    const sink = createServer((_req, res) => {
      res.writeHead(204).end();
    });
    sink.listen(0, '127.0.0.1');
    await once(sink, 'listening');
    const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/floor`;
    const telephony = new TwilioTelephony({
      credentials: { accountSid: sim.accountSid, authToken: sim.authToken },
      apiBaseUrl: sim.url,
      timeoutMs: 10_000,
    });
    try {
      const table = stack.tableName;
      const runKey = { pk: { S: 'BENCH#floor' }, sk: { S: 'RUN' } };
      const jobKey = { pk: { S: 'BENCH#floor' }, sk: { S: 'JOB#000000' } };
      const queuedRun = 'bench-floor';
      // Items about the size of a run and a job, so each round trip moves what the real one does.
      await dynamo.send(
        new PutItemCommand({
          TableName: table,
          Item: { ...runKey, active: { N: '0' }, pad: { S: 'r'.repeat(500) } },
        }),
      );
      await dynamo.send(
        new PutItemCommand({
          TableName: table,
          Item: { ...jobKey, status: { S: 'queued' }, pad: { S: 'j'.repeat(250) } },
        }),
      );
      for (let i = 0; i < 5; i++) {
        await dynamo.send(
          new PutItemCommand({
            TableName: table,
            Item: {
              pk: { S: 'BENCH#floor' },
              sk: { S: `JOB#q${i}` },
              phone: { S: `+1415200000${i}` },
              attempt: { N: '0' },
              [TABLE_SCHEMA.queuedIndex.partitionKey]: { S: queuedRun },
              [TABLE_SCHEMA.queuedIndex.sortKey]: { S: `000000000000000#q${i}` },
            },
          }),
        );
      }
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'bench-floor' }));
      const queueUrl = QueueUrl!;

      const time = async (list: number[], work: () => Promise<unknown>) => {
        const t0 = performance.now();
        await work();
        list.push(performance.now() - t0);
      };

      for (let i = 0; i < rounds; i++) {
        await time(into.getItem, () =>
          dynamo.send(new GetItemCommand({ TableName: table, Key: runKey, ConsistentRead: true })),
        );
        await time(into.transaction, () =>
          dynamo.send(
            new TransactWriteItemsCommand({
              TransactItems: [
                {
                  Update: {
                    TableName: table,
                    Key: runKey,
                    UpdateExpression: 'SET active = active + :one',
                    ConditionExpression: 'attribute_exists(pk)',
                    ExpressionAttributeValues: { ':one': { N: '1' } },
                  },
                },
                {
                  Update: {
                    TableName: table,
                    Key: jobKey,
                    UpdateExpression: 'SET #status = :s',
                    ConditionExpression: 'attribute_exists(pk)',
                    ExpressionAttributeNames: { '#status': 'status' },
                    ExpressionAttributeValues: { ':s': { S: i % 2 ? 'queued' : 'dialing' } },
                  },
                },
              ],
            }),
          ),
        );
        await time(into.query, () =>
          dynamo.send(
            new QueryCommand({
              TableName: table,
              IndexName: TABLE_SCHEMA.queuedIndex.name,
              KeyConditionExpression: '#run = :run',
              ExpressionAttributeNames: { '#run': TABLE_SCHEMA.queuedIndex.partitionKey },
              ExpressionAttributeValues: { ':run': { S: queuedRun } },
              Limit: 5,
            }),
          ),
        );

        // A long poll already waiting, as the event source's pollers are.
        const receive = sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 5 }),
        );
        await new Promise((resolve) => setTimeout(resolve, 20));
        const sentAt = performance.now();
        await sqs.send(
          new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: `{"type":"dispatch","n":${i}}` }),
        );
        into.sqsSend.push(performance.now() - sentAt);
        const { Messages = [] } = await receive;
        into.sqsSendToReceive.push(performance.now() - sentAt);
        for (const message of Messages) {
          await sqs.send(
            new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle! }),
          );
        }

        const createdAt = performance.now();
        const result = await telephony.createCall({
          to: `+1212${String(2_000_000 + (i % 1_000_000))}`,
          from: '+15005550006',
          statusCallbackUrl: `${sinkUrl}?run=bench-floor&job=${i}&attempt=1`,
          ringTimeoutSeconds: 30,
          timeLimitSeconds: 60,
          content: { twiml: '<Response><Hangup/></Response>' },
        });
        into.create.push(performance.now() - createdAt);
        if (result.kind === 'created') sim.hangUp(result.callSid);
      }
    } finally {
      sink.closeAllConnections();
      sink.close();
      dynamo.destroy();
      sqs.destroy();
    }
  });
}
