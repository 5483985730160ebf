// Events out, on the local stack: the same two functions as in AWS, on the same triggers' stand-ins.
// The table's stream on DynamoDB Local → the events function (as Lambda's stream event source would
// invoke it) → the webhook delivery queue on the SQS emulator → the delivery function (as Lambda's
// SQS event source would, leaving a failed message's retry wait to the function) → the webhook.
// There is no EventBridge locally: the events function is not given a bus, so it puts nothing there.

import { DescribeTableCommand, DynamoDBClient, UpdateTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBBatchResponse, DynamoDBStreamEvent, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { EVENTS_DELIVERY, EVENTS_STREAM, TABLE_SCHEMA } from '../../lambdas/definitions/resources.ts';
import { type RunningStreamSource, startDynamoDbStreamSource } from './dynamodb-stream-source.ts';
import { LOCAL_AWS } from './emulators.ts';
import type { LocalFunction } from './lambda-runtime.ts';
import { type RunningEventSource, startSqsEventSource } from './sqs-event-source.ts';

export interface EventsQueues {
  eventsQueueUrl: string;
  eventsQueueArn: string;
  eventsDlqUrl: string;
}

/** The delivery queue and its dead-letter queue, with the redrive the CDK app deploys. */
export async function createEventsQueues(endpoint: string, name: string): Promise<EventsQueues> {
  const sqs = new SQSClient({ ...LOCAL_AWS, endpoint });
  try {
    const dlq = await sqs.send(
      new CreateQueueCommand({
        QueueName: `${name}-dlq`,
        Attributes: { MessageRetentionPeriod: String(EVENTS_DELIVERY.dlqRetentionDays * 86_400) },
      }),
    );
    const arnOf = async (url: string) =>
      (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
        .Attributes!.QueueArn!;
    const queue = await sqs.send(
      new CreateQueueCommand({
        QueueName: name,
        Attributes: {
          VisibilityTimeout: String(EVENTS_DELIVERY.visibilityTimeoutSeconds),
          MessageRetentionPeriod: String(EVENTS_DELIVERY.retentionDays * 86_400),
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: await arnOf(dlq.QueueUrl!),
            maxReceiveCount: EVENTS_DELIVERY.maxReceiveCount,
          }),
        },
      }),
    );
    return {
      eventsQueueUrl: queue.QueueUrl!,
      eventsQueueArn: await arnOf(queue.QueueUrl!),
      eventsDlqUrl: dlq.QueueUrl!,
    };
  } finally {
    sqs.destroy();
  }
}

/** The table's stream ARN, turning the stream on first for a table kept from before (DATA_DIR). */
export async function tableStreamArn(endpoint: string, tableName: string): Promise<string> {
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint });
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.StreamSpecification?.StreamEnabled && Table.LatestStreamArn) return Table.LatestStreamArn;
    const { TableDescription } = await client.send(
      new UpdateTableCommand({
        TableName: tableName,
        StreamSpecification: { StreamEnabled: true, StreamViewType: TABLE_SCHEMA.streamViewType },
      }),
    );
    return TableDescription!.LatestStreamArn!;
  } finally {
    client.destroy();
  }
}

export interface EventsPipelineOptions {
  dynamoEndpoint: string;
  sqsEndpoint: string;
  tableName: string;
  queues: EventsQueues;
  events: LocalFunction<DynamoDBStreamEvent, DynamoDBBatchResponse | undefined>;
  delivery: LocalFunction<SQSEvent, SQSBatchResponse | undefined>;
  onError: (error: unknown, where: string) => void;
}

export interface EventsPipeline {
  stream: RunningStreamSource;
  deliveries: RunningEventSource;
  stop(): Promise<void>;
}

export async function startEventsPipeline(options: EventsPipelineOptions): Promise<EventsPipeline> {
  const stream = startDynamoDbStreamSource({
    fn: options.events,
    endpoint: options.dynamoEndpoint,
    streamArn: await tableStreamArn(options.dynamoEndpoint, options.tableName),
    batchSize: EVENTS_STREAM.batchSize,
    onError: options.onError,
  });
  const sqs = new SQSClient({ ...LOCAL_AWS, endpoint: options.sqsEndpoint, useQueueUrlAsEndpoint: false });
  const deliveries = startSqsEventSource({
    fn: options.delivery,
    sqs,
    queueUrl: options.queues.eventsQueueUrl,
    queueArn: options.queues.eventsQueueArn,
    region: LOCAL_AWS.region,
    batchSize: EVENTS_DELIVERY.batchSize,
    pollers: EVENTS_DELIVERY.maxConcurrency,
    // Unset: the delivery function sets a failed try's wait itself (its retry schedule), as in AWS.
    retryVisibilitySeconds: undefined,
    onError: options.onError,
  });
  return {
    stream,
    deliveries,
    async stop() {
      await Promise.all([stream.stop(), deliveries.stop()]);
      sqs.destroy();
    },
  };
}
