// The one place every dialgate function gets its defaults: runtime, architecture, bundling, logs,
// tracing, timeout and memory. The stacks only say which resources a function binds; each bind grants
// exactly its access and sets the variable naming the resource, so the two cannot drift apart.

import { fileURLToPath } from 'node:url';
import { Duration, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import { type IRole, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  Architecture,
  type FunctionOptions,
  Runtime,
  StartingPosition,
  Tracing,
} from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import type { EnvName } from '../../lambdas/definitions/environment.ts';
import {
  FUNCTIONS,
  type FunctionName,
  METRICS,
  serviceName,
  TABLE_SCHEMA,
} from '../../lambdas/definitions/resources.ts';
import { acknowledgeControl } from '../control-tower.ts';
import { type LogSettings, stageLogGroup } from './logs.ts';

/** The repository root, from which FUNCTIONS' entries are relative. */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * CommonJS dependencies (twilio and its own dependencies) call `require` on Node built-ins, which an
 * ESM bundle does not define.
 */
const REQUIRE_SHIM =
  "import { createRequire as __dialgateCreateRequire } from 'node:module'; " +
  'const require = __dialgateCreateRequire(import.meta.url);';

export interface DialgateFunctionProps
  extends Pick<FunctionOptions, 'reservedConcurrentExecutions' | 'retryAttempts' | 'description'> {
  /** Which of FUNCTIONS this is: its entry, timeout, memory and service name. */
  readonly fn: FunctionName;
  /** The stage's retention, removal policy and key for the function's log group. */
  readonly logs: LogSettings;
}

export type TableAccess = 'read' | 'readWrite';
export type QueueAccess = 'send' | 'consume';

export class DialgateFunction extends NodejsFunction {
  /** The execution role: its own, so it holds only what the binds grant (no managed policies). */
  override readonly role: IRole;

  constructor(scope: Construct, id: string, props: DialgateFunctionProps) {
    const spec = FUNCTIONS[props.fn];
    // Made before the function (a subclass cannot add children before super), as siblings named after it.
    const logGroup = stageLogGroup(scope, `${id}Logs`, props.logs);
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `dialgate ${props.fn} function`,
    });
    super(scope, id, {
      entry: `${REPO_ROOT}${spec.entry}`,
      projectRoot: REPO_ROOT,
      depsLockFilePath: `${REPO_ROOT}package-lock.json`,
      handler: 'handler',
      runtime: Runtime.NODEJS_24_X, // the Node the repository pins (package.json "node"), so tests run what Lambda runs
      architecture: Architecture.ARM_64, // cheaper per GB-second, and nothing here is x86-only
      timeout: Duration.seconds(spec.timeoutSeconds),
      memorySize: spec.memoryMb,
      role,
      logGroup,
      tracing: Tracing.ACTIVE,
      description: props.description ?? `dialgate ${props.fn}`,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      retryAttempts: props.retryAttempts,
      environment: {
        NODE_OPTIONS: '--enable-source-maps', // stack traces point at the TypeScript, not the bundle
        POWERTOOLS_SERVICE_NAME: serviceName(props.fn),
        POWERTOOLS_METRICS_NAMESPACE: METRICS.namespace,
      },
      bundling: {
        format: OutputFormat.ESM, // the repository is ESM ("type": "module"); so is the bundle
        target: 'node24',
        mainFields: ['module', 'main'], // prefer dependencies' ESM builds: they tree-shake
        banner: REQUIRE_SHIM,
        bundleAwsSDK: true, // the SDK version the tests ran against, not whichever the runtime ships
        minify: true,
        sourceMap: true,
        sourcesContent: false, // mappings are enough for stack traces; the sources only add weight
        logLevel: LogLevel.WARNING, // keeps `cdk synth --quiet` quiet unless something is wrong
        forceDockerBundling: false, // the local esbuild (a devDependency): synth needs no Docker
      },
    });
    this.role = role;
    logGroup.grantWrite(role);
    // Lambda's active tracing adds xray:PutTraceSegments and xray:PutTelemetryRecords on "*".
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray trace and telemetry writes (added by active tracing) have no resource-level permissions; ' +
        'the infra tests check that they are the only actions on "*".',
    });
    acknowledgeControl(
      this,
      'CT.LAMBDA.PR.3',
      'No VPC: nothing the function reaches is private. DynamoDB, SQS, Secrets Manager and CloudWatch are ' +
        'reached at their public endpoints over TLS with IAM-signed requests, and Twilio is on the internet ' +
        '(a VPC would add a NAT gateway for it and protect nothing).',
    );
  }

  /** Sets variables the handlers read, checked at compile time against lambdas/definitions/environment.ts. */
  setEnv(vars: Partial<Record<EnvName, string>>): this {
    for (const [name, value] of Object.entries(vars)) {
      if (value !== undefined) this.addEnvironment(name, value);
    }
    return this;
  }

  /**
   * TABLE_NAME, with item reads (and writes) on the table and Query on its indexes by name. Not the
   * CDK's grantReadData/grantReadWriteData: those add Scan and `<table>/index/*`, and nothing here
   * needs either. Transactions need no action of their own: each item in one is authorised as the
   * Put, Update, Delete or ConditionCheck it is.
   */
  bindTable(table: ITable, access: TableAccess): this {
    const actions = access === 'read' ? TABLE_READ : [...TABLE_READ, ...TABLE_WRITE];
    this.addToRolePolicy(
      new PolicyStatement({ actions: actions.map(dynamodb), resources: [table.tableArn] }),
    );
    this.addToRolePolicy(
      new PolicyStatement({
        actions: [dynamodb('Query')],
        resources: TABLE_SCHEMA.indexes.map((index) => `${table.tableArn}/index/${index.name}`),
      }),
    );
    return this.setEnv({ TABLE_NAME: table.tableName });
  }

  /** QUEUE_URL, with send access or consume access (receive, delete, change visibility). */
  bindQueue(queue: IQueue, access: QueueAccess): this {
    if (access === 'send') queue.grantSendMessages(this);
    else queue.grantConsumeMessages(this);
    return this.setEnv({ QUEUE_URL: queue.queueUrl });
  }

  /** EVENTS_QUEUE_URL (the webhook delivery queue), with send access or consume access. */
  bindEventsQueue(queue: IQueue, access: QueueAccess): this {
    if (access === 'send') queue.grantSendMessages(this);
    else queue.grantConsumeMessages(this);
    return this.setEnv({ EVENTS_QUEUE_URL: queue.queueUrl });
  }

  /** EVENT_BUS_NAME, with events:PutEvents on that bus only. */
  bindEventBus(bus: IEventBus): this {
    bus.grantPutEventsTo(this);
    return this.setEnv({ EVENT_BUS_NAME: bus.eventBusName });
  }

  /** EVENTS_WEBHOOK_SECRET_ID (the name, never the value), with read access to that one secret. */
  bindEventsWebhookSecret(secret: ISecret): this {
    secret.grantRead(this);
    return this.setEnv({ EVENTS_WEBHOOK_SECRET_ID: secret.secretName });
  }

  /**
   * The table's stream as this function's trigger, read from its oldest record (nothing written while
   * the mapping is created is skipped), one batch per shard at a time (a key's changes in order).
   * A failed record is retried, and what follows it, until it succeeds or leaves the stream (24 h):
   * bisecting isolates it, the partial batch response keeps what succeeded before it.
   */
  bindTableStream(table: ITable, batchSize: number): this {
    this.addEventSource(
      new DynamoEventSource(table, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize,
        bisectBatchOnError: true,
        reportBatchItemFailures: true,
        parallelizationFactor: 1,
      }),
    );
    // Lambda's stream poller lists the table's streams: dynamodb:ListStreams has no resource-level
    // permissions (the other stream actions are granted on this stream's ARN only).
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray trace and telemetry writes (added by active tracing), and dynamodb:ListStreams for the ' +
        'stream event source, have no resource-level permissions; the infra tests check that these are ' +
        'the only actions on "*".',
    });
    return this;
  }

  /** TWILIO_SECRET_ID (the secret's name, never its value), with read access to that one secret. */
  bindTwilioSecret(secret: ISecret): this {
    secret.grantRead(this); // GetSecretValue and DescribeSecret on this secret's ARN (name + random suffix)
    return this.setEnv({ TWILIO_SECRET_ID: secret.secretName });
  }
}

const TABLE_READ = ['GetItem', 'BatchGetItem', 'Query', 'ConditionCheckItem'] as const;
const TABLE_WRITE = ['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem'] as const;
const dynamodb = (action: string) => `dynamodb:${action}`;
