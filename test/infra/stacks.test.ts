// The synthesized templates of the default app (stage dev, IAM-authenticated API), with the functions
// really bundled by the local esbuild: resources, settings, least privilege, no secret values.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FUNCTIONS,
  METRICS,
  RECONCILER_SCHEDULE_MINUTES,
  serviceName,
  TABLE_SCHEMA,
  WEBHOOK_RESERVED_CONCURRENCY,
  WORK_QUEUE,
} from '../../lambdas/definitions/resources.ts';
import {
  actionsOf,
  type Cfn,
  functionsOf,
  type Statement,
  type Synthesized,
  statementsOfRole,
  synthDialgate,
} from './synth.ts';

// If the app copied credentials from the environment into the template, these would show up in it.
const SENTINEL_TOKEN = 'sentinel-auth-token-0123456789abcdef';
const SENTINEL_SID = 'AC0123456789abcdef0123456789abcdef';

let synth: Synthesized;
let fns: ReturnType<typeof functionsOf>;
beforeAll(() => {
  process.env.TWILIO_AUTH_TOKEN = SENTINEL_TOKEN;
  process.env.TWILIO_ACCOUNT_SID = SENTINEL_SID;
  try {
    synth = synthDialgate({}, { bundle: true });
  } finally {
    delete process.env.TWILIO_AUTH_TOKEN;
    delete process.env.TWILIO_ACCOUNT_SID;
  }
  fns = functionsOf(synth.stateless);
  // Four esbuild bundles, cdk-nag and the Control Tower rules: seconds on an idle machine, minutes on a loaded
  // 2-core one, so the hook takes the emulated project's hook timeout rather than a tighter one.
});

const resourceOf = (template: Synthesized['stateful'], type: string) => {
  const found = Object.entries(template.findResources(type));
  expect(found, type).toHaveLength(1);
  return found[0]! as [string, Cfn];
};

describe('stateful stack', () => {
  it('has the table from TABLE_SCHEMA: on demand, PITR, encrypted, with its sparse indexes', () => {
    const { partitionKey, sortKey, indexes } = TABLE_SCHEMA;
    const projection = (p: readonly string[] | 'ALL') =>
      p === 'ALL'
        ? { ProjectionType: 'ALL' }
        : p.length === 0
          ? { ProjectionType: 'KEYS_ONLY' }
          : { ProjectionType: 'INCLUDE', NonKeyAttributes: [...p] };
    synth.stateful.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
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
        Projection: projection(index.projection),
      })),
    });
    expect(indexes.map((i) => i.name)).toContain(TABLE_SCHEMA.queuedIndex.name);
  });

  it('does not retain the table outside production', () => {
    const [, table] = resourceOf(synth.stateful, 'AWS::DynamoDB::Table');
    expect(table.DeletionPolicy).toBe('Delete');
    expect(table.Properties.DeletionProtectionEnabled).toBe(false);
  });

  /** The work queue, found by its construct id (the events' queues are test/infra/events.test.ts's). */
  const workQueue = () =>
    Object.entries(synth.stateful.findResources('AWS::SQS::Queue')).find(([id]) =>
      id.startsWith('WorkQueue'),
    )![1];

  it('has a work queue and a dead-letter queue, both encrypted, redriving after ≥ 5 receives', () => {
    const queues = synth.stateful.findResources('AWS::SQS::Queue');
    // The work queue and its DLQ, the events delivery queue and its DLQ.
    expect(Object.keys(queues)).toHaveLength(4);
    for (const queue of Object.values(queues)) expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
    const work = workQueue();
    expect(work!.Properties.RedrivePolicy.maxReceiveCount).toBeGreaterThanOrEqual(5);
    expect(work!.Properties.RedrivePolicy.maxReceiveCount).toBe(WORK_QUEUE.maxReceiveCount);
    const dlqId = work!.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0];
    expect(queues[dlqId]!.Properties.MessageRetentionPeriod).toBe(WORK_QUEUE.dlqRetentionDays * 86_400);
  });

  it('refuses any request to either queue that is not over TLS', () => {
    const policies = Object.values(synth.stateful.findResources('AWS::SQS::QueuePolicy'));
    const guarded = policies.flatMap((p) =>
      p.Properties.PolicyDocument.Statement.some(
        (s: Statement) =>
          s.Effect === 'Deny' &&
          s.Action === 'sqs:*' &&
          JSON.stringify(s.Condition) === JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } }),
      )
        ? p.Properties.Queues.map((q: { Ref: string }) => q.Ref)
        : [],
    );
    expect(guarded.sort()).toEqual(Object.keys(synth.stateful.findResources('AWS::SQS::Queue')).sort());
  });

  it("gives the work queue a visibility timeout ≥ 6 × the dispatcher's timeout (read from the templates)", () => {
    const work = workQueue();
    expect(work!.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(6 * fns.dispatcher!.props.Timeout);
  });

  it('retries a failed work message within seconds, then at the visibility timeout, for ≥ 12 minutes before parking it', () => {
    const work = workQueue();
    const schedule = WORK_QUEUE.retryScheduleSeconds;
    expect(schedule[0]).toBeLessThanOrEqual(2);
    expect(Math.max(...schedule)).toBeLessThanOrEqual(work!.Properties.VisibilityTimeout);
    expect(schedule.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(12 * 60);
    // One receive for the first try and one after each wait: the last try's failure parks the message.
    expect(work!.Properties.RedrivePolicy.maxReceiveCount).toBe(schedule.length + 1);
  });

  it('outputs the table name, both queue URLs, the event bus and the undelivered events queue', () => {
    const outputs = Object.keys(synth.stateful.toJSON().Outputs).filter(
      (o) => !o.startsWith('ExportsOutput'),
    );
    expect(outputs.sort()).toEqual([
      'DeadLetterQueueUrl',
      'EventBusArn',
      'EventBusName',
      'EventsDeadLetterQueueUrl',
      'QueueUrl',
      'TableName',
    ]);
  });
});

describe('functions', () => {
  it('are exactly api, dispatcher, webhook, reconciler, events and delivery (no helper functions)', () => {
    expect(Object.keys(fns).sort()).toEqual([
      'api',
      'delivery',
      'dispatcher',
      'events',
      'reconciler',
      'webhook',
    ]);
  });

  it.each(Object.keys(FUNCTIONS))(
    '%s: nodejs24.x on arm64, traced, own log group, timeout and memory from FUNCTIONS',
    (name) => {
      const { props } = fns[name]!;
      const spec = FUNCTIONS[name as keyof typeof FUNCTIONS];
      expect(props.Runtime).toBe('nodejs24.x');
      expect(props.Architectures).toEqual(['arm64']);
      expect(props.TracingConfig).toEqual({ Mode: 'Active' });
      expect(props.Timeout).toBe(spec.timeoutSeconds);
      expect(props.MemorySize).toBe(spec.memoryMb);
      expect(props.Handler).toBe('index.handler');
      expect(props.Environment.Variables).toMatchObject({
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: serviceName(name as keyof typeof FUNCTIONS),
        POWERTOOLS_METRICS_NAMESPACE: METRICS.namespace,
      });
      const logGroupId = props.LoggingConfig.LogGroup.Ref;
      const logGroup = synth.stateless.findResources('AWS::Logs::LogGroup')[logGroupId]!;
      expect(logGroup.Properties.RetentionInDays).toBe(30);
      expect(logGroup.DeletionPolicy).toBe('Delete');
    },
  );

  it('each gets exactly the variables its handler reads, and never a Twilio credential', () => {
    const names = (fn: string) => Object.keys(fns[fn]!.props.Environment.Variables).sort();
    const common = ['NODE_OPTIONS', 'POWERTOOLS_METRICS_NAMESPACE', 'POWERTOOLS_SERVICE_NAME'];
    const expected = {
      api: [
        'TABLE_NAME',
        'QUEUE_URL',
        'DEFAULT_CONCURRENCY',
        'MAX_CONCURRENCY',
        'MAX_LEADS_PER_RUN',
        'TWILIO_FROM_NUMBER', // a run's `from` may be the deployment's own caller id
        'MAX_TWIML_BYTES',
      ],
      dispatcher: [
        'TABLE_NAME',
        'QUEUE_URL',
        'WEBHOOK_URL',
        'TWILIO_SECRET_ID',
        'TWILIO_FROM_NUMBER',
        'RING_TIMEOUT_SECONDS',
        'CALL_TIME_LIMIT_SECONDS',
        'SUPPRESSION_CHECK', // the frequency cap's two are set only with -c recipientMaxCalls
      ],
      webhook: ['TABLE_NAME', 'QUEUE_URL', 'TWILIO_SECRET_ID'],
      // No webhook configured here: the events go to the bus only (test/infra/events.test.ts has one).
      events: ['EVENT_BUS_NAME', 'TABLE_NAME'],
      delivery: ['EVENTS_QUEUE_URL', 'EVENTS_WEBHOOK_SECRET_ID'],
      reconciler: [
        'TABLE_NAME',
        'QUEUE_URL',
        'TWILIO_SECRET_ID',
        'RING_TIMEOUT_SECONDS',
        'CALL_TIME_LIMIT_SECONDS',
      ],
    };
    for (const [fn, vars] of Object.entries(expected))
      expect(names(fn), fn).toEqual([...vars, ...common].sort());
    const dispatcherEnv = fns.dispatcher!.props.Environment.Variables;
    expect(dispatcherEnv.TWILIO_SECRET_ID).toBe('dialgate/dev/twilio');
    expect(dispatcherEnv.WEBHOOK_URL).toEqual({ 'Fn::GetAtt': [expect.any(String), 'FunctionUrl'] });
    expect(fns.reconciler!.props.Environment.Variables.RING_TIMEOUT_SECONDS).toBe(
      dispatcherEnv.RING_TIMEOUT_SECONDS,
    );
  });

  it('bundles each function as ESM that Node 24 loads, with a handler export', async () => {
    const assets = synth.app.synth().directory;
    for (const [name, fn] of Object.entries(fns)) {
      const resource = synth.stateless.findResources('AWS::Lambda::Function')[fn.logicalId]!;
      const bundle = join(assets, resource.Metadata['aws:asset:path'], 'index.mjs');
      expect(readFileSync(bundle, 'utf8').startsWith('import { createRequire'), name).toBe(true);
      const module = await import(pathToFileURL(bundle).href);
      expect(typeof module.handler, name).toBe('function');
    }
  });
});

describe('triggers', () => {
  it('feeds the dispatcher from the work queue with partial batch responses', () => {
    synth.stateless.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: fns.dispatcher!.logicalId },
      BatchSize: WORK_QUEUE.batchSize,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    // With the events' two (the table's stream, the delivery queue): test/infra/events.test.ts.
    expect(Object.keys(synth.stateless.findResources('AWS::Lambda::EventSourceMapping'))).toHaveLength(3);
  });

  it('exposes the webhook on a Function URL with auth NONE and caps its concurrency', () => {
    synth.stateless.hasResourceProperties('AWS::Lambda::Url', {
      AuthType: 'NONE',
      TargetFunctionArn: { 'Fn::GetAtt': [fns.webhook!.logicalId, 'Arn'] },
    });
    expect(Object.keys(synth.stateless.findResources('AWS::Lambda::Url'))).toHaveLength(1);
    expect(fns.webhook!.props.ReservedConcurrentExecutions).toBe(WEBHOOK_RESERVED_CONCURRENCY);
  });

  it('runs the reconciler on an EventBridge schedule, one pass at a time', () => {
    synth.stateless.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: `rate(${RECONCILER_SCHEDULE_MINUTES} minute${RECONCILER_SCHEDULE_MINUTES === 1 ? '' : 's'})`,
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [fns.reconciler!.logicalId, 'Arn'] } })],
    });
    expect(fns.reconciler!.props.ReservedConcurrentExecutions).toBe(1);
  });

  it('lets API Gateway invoke only the api function, and only for its methods', () => {
    const permissions = Object.values(synth.stateless.findResources('AWS::Lambda::Permission'));
    const byApiGateway = permissions.filter((p) => p.Properties.Principal === 'apigateway.amazonaws.com');
    expect(byApiGateway).toHaveLength(14); // one per method (see REST API below); no test-invoke
    for (const p of byApiGateway) expect(p.Properties.FunctionName['Fn::GetAtt'][0]).toBe(fns.api!.logicalId);
  });
});

describe('REST API', () => {
  const method = (httpMethod: string) =>
    Object.values(synth.stateless.findResources('AWS::ApiGateway::Method')).find(
      (m) => m.Properties.HttpMethod === httpMethod,
    )!.Properties;

  const isOpenApi = (m: Record<string, unknown>) => {
    const [id] = Object.entries(synth.stateless.findResources('AWS::ApiGateway::Resource')).find(
      ([, r]) => r.Properties.PathPart === 'openapi.json',
    )!;
    return (m.Properties as { ResourceId: { Ref?: string } }).ResourceId.Ref === id;
  };
  const openApiMethod = () =>
    Object.values(synth.stateless.findResources('AWS::ApiGateway::Method')).find(isOpenApi)!.Properties;

  it('serves the OpenAPI document without credentials: GET /openapi.json, to the api function', () => {
    expect(openApiMethod()).toMatchObject({
      HttpMethod: 'GET',
      AuthorizationType: 'NONE',
      ApiKeyRequired: false,
      Integration: { Type: 'AWS_PROXY' },
    });
  });

  it('has the runs API (create, list, get, pause/resume/cancel, append leads, calls) and the suppression list, all IAM-authenticated and validated', () => {
    const methods = Object.values(synth.stateless.findResources('AWS::ApiGateway::Method'))
      .filter((m) => !isOpenApi(m))
      .map((m) => m.Properties);
    expect(methods).toHaveLength(13);
    expect(methods.map((m) => m.HttpMethod).sort()).toEqual([
      'DELETE',
      'GET',
      'GET',
      'GET',
      'GET',
      'GET',
      'POST',
      'POST',
      'POST',
      'POST',
      'POST',
      'POST',
      'PUT',
    ]);
    // The six under /runs/{run_id} all require the id; the three under /suppressions/{phone} the number.
    const perRun = methods.filter((m) => m.RequestParameters?.['method.request.path.run_id'] !== undefined);
    expect(perRun).toHaveLength(6);
    for (const m of perRun) expect(m.RequestParameters).toEqual({ 'method.request.path.run_id': true });
    const perPhone = methods.filter((m) => m.RequestParameters?.['method.request.path.phone'] !== undefined);
    expect(perPhone.map((m) => m.HttpMethod).sort()).toEqual(['DELETE', 'GET', 'PUT']);
    for (const m of perPhone) expect(m.RequestParameters).toEqual({ 'method.request.path.phone': true });
    for (const m of methods) {
      expect(m.AuthorizationType).toBe('AWS_IAM');
      expect(m.RequestValidatorId).toBeDefined();
      expect(m.Integration.Type).toBe('AWS_PROXY');
    }
    synth.stateless.hasResourceProperties('AWS::ApiGateway::RequestValidator', {
      ValidateRequestBody: true,
      ValidateRequestParameters: true,
    });
  });

  it('checks only the shape of a run request (an object with a leads array or from_run), leaving rows to the function', () => {
    const model = Object.values(synth.stateless.findResources('AWS::ApiGateway::Model'))[0]!.Properties;
    expect(method('POST').RequestModels).toEqual({ 'application/json': expect.anything() });
    expect(model.Schema).toMatchObject({
      type: 'object',
      anyOf: [{ required: ['leads'] }, { required: ['from_run'] }],
      properties: { leads: { type: 'array' }, from_run: { type: 'object' } },
    });
    expect(JSON.stringify(model.Schema)).not.toMatch(/"items"|"pattern"/);
  });

  it('throttles, logs access, logs errors without bodies, and traces', () => {
    synth.stateless.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'dev',
      TracingEnabled: true,
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
      MethodSettings: [
        Match.objectLike({
          HttpMethod: '*',
          ResourcePath: '/*',
          LoggingLevel: 'ERROR',
          DataTraceEnabled: false,
          ThrottlingRateLimit: Match.anyValue(),
          ThrottlingBurstLimit: Match.anyValue(),
        }),
      ],
    });
    synth.stateless.resourceCountIs('AWS::ApiGateway::ApiKey', 0);
  });

  it('is regional', () => {
    synth.stateless.hasResourceProperties('AWS::ApiGateway::RestApi', {
      EndpointConfiguration: { Types: ['REGIONAL'] },
    });
  });
});

describe('least privilege', () => {
  const XRAY = ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'];
  const LOGS = ['logs:CreateLogStream', 'logs:PutLogEvents'];
  const TABLE_READ = [
    'dynamodb:BatchGetItem',
    'dynamodb:ConditionCheckItem',
    'dynamodb:GetItem',
    'dynamodb:Query',
  ];
  const TABLE_RW = [
    'dynamodb:BatchGetItem',
    'dynamodb:BatchWriteItem',
    'dynamodb:ConditionCheckItem',
    'dynamodb:DeleteItem',
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:Query',
    'dynamodb:UpdateItem',
  ];
  const SEND = ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'];
  const CONSUME = ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:ReceiveMessage'];
  const SECRET = ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'];
  const STREAM = [
    'dynamodb:DescribeStream',
    'dynamodb:GetRecords',
    'dynamodb:GetShardIterator',
    'dynamodb:ListStreams',
  ];
  const expected: Record<string, string[]> = {
    api: [...XRAY, ...LOGS, ...TABLE_RW, ...SEND],
    dispatcher: [...XRAY, ...LOGS, ...TABLE_RW, ...SEND, ...CONSUME, ...SECRET],
    webhook: [...XRAY, ...LOGS, ...TABLE_RW, ...SEND, ...SECRET],
    reconciler: [...XRAY, ...LOGS, ...TABLE_RW, ...SEND, ...SECRET],
    // The stream, the bus, and reads of the table (a run split over slot counters: its live counts).
    events: [...XRAY, ...LOGS, ...STREAM, ...TABLE_READ, 'events:PutEvents'],
    delivery: [...XRAY, ...LOGS, ...CONSUME, 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', ...SECRET],
  };
  const roleOf = (fn: string) => fns[fn]!.props.Role['Fn::GetAtt'][0] as string;

  it.each(Object.keys(expected))('%s gets exactly its actions, and nothing more', (fn) => {
    expect(actionsOf(statementsOfRole(synth.stateless, roleOf(fn)))).toEqual([...expected[fn]!].sort());
  });

  it('each function has its own role, assumable by Lambda only, with no managed policies', () => {
    const roles = Object.keys(fns).map(roleOf);
    expect(new Set(roles).size).toBe(roles.length);
    for (const role of roles) {
      const props = synth.stateless.findResources('AWS::IAM::Role')[role]!.Properties;
      expect(props.ManagedPolicyArns ?? []).toEqual([]);
      expect(props.AssumeRolePolicyDocument.Statement).toEqual([
        { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
      ]);
    }
  });

  it('uses "*" only for X-Ray and dynamodb:ListStreams, which have no resource-level permissions', () => {
    for (const fn of Object.keys(fns)) {
      for (const s of statementsOfRole(synth.stateless, roleOf(fn))) {
        expect(s.Effect).toBe('Allow');
        const actions = Array.isArray(s.Action) ? s.Action : [s.Action];
        for (const action of actions) expect(action).not.toContain('*');
        if (s.Resource === '*' || JSON.stringify(s.Resource).includes('*'))
          // CDK merges statements on the same resource: the events function's ListStreams joins X-Ray's.
          expect(actions.sort(), fn).toEqual(fn === 'events' ? ['dynamodb:ListStreams', ...XRAY] : XRAY);
      }
    }
  });

  it('scopes table access to the table, and Query to its indexes by name', () => {
    for (const fn of ['api', 'dispatcher', 'webhook', 'reconciler']) {
      const statements = statementsOfRole(synth.stateless, roleOf(fn)).filter((s) =>
        actionsOf([s]).some((a) => a.startsWith('dynamodb:')),
      );
      expect(statements, fn).toHaveLength(2);
      const indexStatement = statements.find((s) => JSON.stringify(s.Resource).includes('/index/'))!;
      const tableStatement = statements.find((s) => s !== indexStatement)!;
      expect(JSON.stringify(tableStatement.Resource)).toMatch(/^\{"Fn::ImportValue":"[^"]*Table[^"]*"\}$/);
      const indexArns = (indexStatement.Resource as unknown[]).map((r) => JSON.stringify(r));
      expect(indexArns.map((arn) => /\/index\/([^"]+)"/.exec(arn)?.[1]).sort()).toEqual(
        TABLE_SCHEMA.indexes.map((i) => i.name).sort(),
      );
      expect(actionsOf([indexStatement])).toEqual(['dynamodb:Query']);
    }
  });

  it('grants the Twilio secret by its name only, to the functions that call Twilio', () => {
    for (const fn of ['dispatcher', 'webhook', 'reconciler']) {
      const secret = statementsOfRole(synth.stateless, roleOf(fn)).filter((s) =>
        actionsOf([s]).some((a) => a.startsWith('secretsmanager:')),
      );
      expect(secret).toHaveLength(1);
      expect(JSON.stringify(secret[0]!.Resource)).toContain(':secret:dialgate/dev/twilio-??????');
    }
  });
});

describe('secrets', () => {
  it('creates no secret and references the Twilio secret by name', () => {
    synth.stateless.resourceCountIs('AWS::SecretsManager::Secret', 0);
    synth.stateful.resourceCountIs('AWS::SecretsManager::Secret', 0);
  });

  it('has no secret value anywhere in either template', () => {
    for (const template of [synth.stateful, synth.stateless]) {
      const text = JSON.stringify(template.toJSON());
      expect(text).not.toContain(SENTINEL_TOKEN);
      expect(text).not.toContain(SENTINEL_SID);
      expect(text).not.toMatch(/authToken|accountSid|TWILIO_AUTH_TOKEN|TWILIO_ACCOUNT_SID|SecretString/i);
      expect(text).not.toMatch(/\bAC[0-9a-f]{32}\b/);
    }
  });
});

describe('alarms and dashboard', () => {
  const alarms = () =>
    Object.values(synth.stateless.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);
  const topicRef = () => ({ Ref: resourceOf(synth.stateless, 'AWS::SNS::Topic')[0] });

  it('every alarm fires on any datapoint above its threshold (zero but for iterator age) and notifies the topic', () => {
    // Both DLQs, reaped, mismatch, unknown calls, signatures, webhook throttles, the events' iterator
    // age; errors of each function
    expect(alarms().length).toBe(8 + Object.keys(fns).length);
    for (const alarm of alarms()) {
      expect(alarm).toMatchObject({
        Threshold: alarm.MetricName === 'IteratorAge' ? 300_000 : 0,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
        AlarmActions: [topicRef()],
      });
    }
  });

  it('alarms on dead letters', () => {
    const dlq = alarms().find((a) => a.MetricName === 'ApproximateNumberOfMessagesVisible');
    expect(dlq).toMatchObject({ Namespace: 'AWS/SQS', Statistic: 'Maximum' });
    expect(JSON.stringify(dlq!.Dimensions)).toMatch(/DeadLetterQueue/);
  });

  it("alarms on each function's errors", () => {
    const errors = alarms().filter((a) => a.Namespace === 'AWS/Lambda' && a.MetricName === 'Errors');
    expect(errors.map((a) => a.Dimensions[0].Value.Ref).sort()).toEqual(
      Object.values(fns)
        .map((f) => f.logicalId)
        .sort(),
    );
  });

  it.each([
    [METRICS.slotsReaped, 'dialgate-reconciler'],
    [METRICS.slotMismatch, 'dialgate-reconciler'],
    [METRICS.unknownCalls, 'dialgate-reconciler'],
    [METRICS.webhookSignatureRejected, 'dialgate-webhook'],
  ])('alarms on %o from its emitter', (metric, service) => {
    expect(alarms().find((a) => a.MetricName === metric.name)).toMatchObject({
      Namespace: 'dialgate',
      Statistic: 'Sum',
      Dimensions: [{ Name: 'service', Value: service }],
    });
  });

  it("alarms on the webhook's throttles (it runs under reserved concurrency)", () => {
    expect(fns.webhook!.props.ReservedConcurrentExecutions).toBeGreaterThan(0);
    const throttles = alarms().filter((a) => a.MetricName === 'Throttles');
    expect(throttles).toHaveLength(1);
    expect(throttles[0]).toMatchObject({
      Namespace: 'AWS/Lambda',
      Statistic: 'Sum',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: fns.webhook!.logicalId } }],
    });
  });

  it('reads only metrics that are emitted: AWS’s own, or one a handler records under its service', () => {
    const read = metricsRead(synth.stateless);
    expect(read.length).toBeGreaterThan(10);
    const recorded = recordedMetrics();
    const unemitted = read.filter(
      (m) => !m.namespace.startsWith('AWS/') && !recorded.has(`${m.namespace} ${m.name} ${m.service}`),
    );
    expect(unemitted, `recorded: ${[...recorded].join(', ')}`).toEqual([]);
  });

  it('encrypts the alarm topic with a rotated key CloudWatch may use, and only over TLS', () => {
    const [, topic] = resourceOf(synth.stateless, 'AWS::SNS::Topic');
    const keyId = topic.Properties.KmsMasterKeyId['Fn::GetAtt'][0];
    const key = synth.stateless.findResources('AWS::KMS::Key')[keyId]!; // the topic's own (logs have theirs)
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.Properties.KeyPolicy.Statement).toContainEqual(
      expect.objectContaining({ Principal: { Service: 'cloudwatch.amazonaws.com' } }),
    );
    synth.stateless.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    synth.stateless.resourceCountIs('AWS::SNS::Subscription', 0); // no alarmEmail given
  });

  it('has a dashboard with live calls, calls placed, refill latency p50/p95, dead letters and errors', () => {
    const [, dashboard] = resourceOf(synth.stateless, 'AWS::CloudWatch::Dashboard');
    expect(dashboard.Properties.DashboardName).toBe('dialgate-dev');
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    for (const needle of [
      METRICS.liveCalls.name,
      METRICS.callsPlaced.name,
      METRICS.refillLatencyMs.name,
      '\\"stat\\":\\"p50\\"',
      '\\"stat\\":\\"p95\\"',
      'ApproximateNumberOfMessagesVisible',
      '\\"Errors\\"',
    ]) {
      expect(body).toContain(needle);
    }
  });
});

it('outputs what the operator needs', () => {
  expect(Object.keys(synth.stateless.toJSON().Outputs).sort()).toEqual([
    'AlarmTopicArn',
    'ApiUrl',
    'DashboardName',
    'EventsWebhookSecretName',
    'TwilioSecretName',
    'WebhookUrl',
  ]);
});

interface MetricRead {
  namespace: string;
  name: string;
  /** The `service` dimension's value (custom metrics), if any. */
  service: string | undefined;
  where: string;
}

/** Every metric the template's alarms and dashboards read. */
function metricsRead(template: Synthesized['stateless']): MetricRead[] {
  const read: MetricRead[] = [];
  for (const [id, alarm] of Object.entries(template.findResources('AWS::CloudWatch::Alarm'))) {
    const p = alarm.Properties;
    const service = (p.Dimensions ?? []).find((d: Cfn) => d.Name === METRICS.dimension)?.Value;
    read.push({ namespace: p.Namespace, name: p.MetricName, service, where: `alarm ${id}` });
  }
  for (const [id, dashboard] of Object.entries(template.findResources('AWS::CloudWatch::Dashboard'))) {
    // The body is a JSON text joined with references (queue names, function names): each reference
    // becomes a placeholder inside its string, and the text is JSON again.
    const body = dashboard.Properties.DashboardBody;
    const parts: unknown[] = typeof body === 'string' ? [body] : body['Fn::Join'][1];
    const text = parts.map((part) => (typeof part === 'string' ? part : 'ref')).join('');
    const widgets = (JSON.parse(text) as { widgets: { properties: { metrics?: unknown[][] } }[] }).widgets;
    for (const widget of widgets) {
      for (const metric of widget.properties.metrics ?? []) {
        const [namespace, name, ...rest] = metric.filter((v): v is string => typeof v === 'string');
        const at = rest.indexOf(METRICS.dimension);
        const service = at >= 0 ? rest[at + 1] : undefined;
        read.push({ namespace: namespace!, name: name!, service, where: `dashboard ${id}` });
      }
    }
  }
  return read;
}

/**
 * `namespace name service` of each custom metric a handler records: `metrics.addMetric(METRICS.x.name,
 * …)` in the handler of a function whose metrics are made by `metricsFor('<that function>')`.
 */
function recordedMetrics(): Set<string> {
  const recorded = new Set<string>();
  for (const [fn, spec] of Object.entries(FUNCTIONS) as [keyof typeof FUNCTIONS, { entry: string }][]) {
    const source = readFileSync(new URL(`../../${spec.entry}`, import.meta.url), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '') // code only: a commented-out call records nothing
      .replace(/\/\/.*$/gm, '');
    if (!source.includes(`metricsFor('${fn}')`)) continue;
    for (const [, key] of source.matchAll(/addMetric\(\s*METRICS\.(\w+)\.name/g)) {
      const metric = METRICS[key as keyof typeof METRICS];
      if (typeof metric === 'object') recorded.add(`${METRICS.namespace} ${metric.name} ${serviceName(fn)}`);
    }
  }
  return recorded;
}
