// (stateful) The data dialgate must not lose: the table (and its stream), the work queue with its
// dead-letter queue, the event bus consumers attach their rules to, and the webhook delivery queue
// with its dead-letter queue (events not delivered yet).
// Kept apart from the functions so that replacing one of these is a visible, deliberate change.
// Built from the same definitions as the local stack (tools/local/emulators.ts).

import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import {
  AttributeType,
  BillingMode,
  ProjectionType,
  StreamViewType,
  Table,
  TableEncryption,
} from 'aws-cdk-lib/aws-dynamodb';
import { EventBus } from 'aws-cdk-lib/aws-events';
import { Queue, QueueEncryption, RedrivePermission } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { EVENTS_DELIVERY, TABLE_SCHEMA, WORK_QUEUE } from '../lambdas/definitions/resources.ts';
import type { IndexSchema } from '../lambdas/definitions/table-schema.ts';

export interface StatefulStackProps extends StackProps {
  /** Production keeps the table (and refuses to delete it) when the stack is destroyed. */
  readonly retainData: boolean;
}

export class StatefulStack extends Stack {
  readonly table: Table;
  readonly workQueue: Queue;
  readonly deadLetterQueue: Queue;
  /** Where every event is put (source `dialgate`); consumers attach rules and targets to it. */
  readonly eventBus: EventBus;
  readonly eventsQueue: Queue;
  readonly eventsDeadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, props);
    const { partitionKey, sortKey, indexes } = TABLE_SCHEMA;

    this.table = new Table(this, 'Table', {
      partitionKey: { name: partitionKey, type: AttributeType.STRING },
      sortKey: { name: sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST, // runs come in bursts; nothing to provision between them
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED, // at rest under the account's aws/dynamodb KMS key
      removalPolicy: props.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      timeToLiveAttribute: TABLE_SCHEMA.timeToLiveAttribute, // idempotency keys expire on their own
      deletionProtection: props.retainData,
      // Each item before and after every write: the events function derives what to tell the world.
      // Enabling (or changing) a stream updates the table in place; it is not a replacement.
      stream: StreamViewType[TABLE_SCHEMA.streamViewType],
    });
    for (const index of indexes) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
        ...projectionOf(index),
      });
    }

    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(WORK_QUEUE.dlqRetentionDays),
      // Declared a dead-letter queue (SQS's default permission, said explicitly): nothing consumes it,
      // so it has no dead-letter queue of its own (Control Tower's CT.SQS.PR.1 asks one of the two).
      redriveAllowPolicy: { redrivePermission: RedrivePermission.ALLOW_ALL },
    });
    this.workQueue = new Queue(this, 'WorkQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(WORK_QUEUE.visibilityTimeoutSeconds),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: WORK_QUEUE.maxReceiveCount },
    });

    this.eventBus = new EventBus(this, 'EventBus', { description: 'dialgate events (source dialgate)' });
    this.eventsDeadLetterQueue = new Queue(this, 'EventsDeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(EVENTS_DELIVERY.dlqRetentionDays),
      // Declared a dead-letter queue (any queue may redrive to it): nothing consumes it, it is redriven.
      redriveAllowPolicy: { redrivePermission: RedrivePermission.ALLOW_ALL },
    });
    this.eventsQueue = new Queue(this, 'EventsQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(EVENTS_DELIVERY.visibilityTimeoutSeconds),
      retentionPeriod: Duration.days(EVENTS_DELIVERY.retentionDays), // outlives the retry schedule
      deadLetterQueue: {
        queue: this.eventsDeadLetterQueue,
        maxReceiveCount: EVENTS_DELIVERY.maxReceiveCount,
      },
    });

    new CfnOutput(this, 'TableName', { value: this.table.tableName });
    new CfnOutput(this, 'EventBusName', { value: this.eventBus.eventBusName });
    new CfnOutput(this, 'EventBusArn', { value: this.eventBus.eventBusArn });
    new CfnOutput(this, 'EventsDeadLetterQueueUrl', { value: this.eventsDeadLetterQueue.queueUrl });
    new CfnOutput(this, 'QueueUrl', { value: this.workQueue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.deadLetterQueue.queueUrl });
  }
}

function projectionOf(index: IndexSchema) {
  if (index.projection === 'ALL') return { projectionType: ProjectionType.ALL };
  if (index.projection.length === 0) return { projectionType: ProjectionType.KEYS_ONLY };
  return { projectionType: ProjectionType.INCLUDE, nonKeyAttributes: [...index.projection] };
}
