// (stateless) Everything that can be replaced without losing data: the functions, the REST API, the
// webhook's Function URL, the reconciler's schedule, the events' stream consumer and webhook delivery,
// and the alarms and dashboard that watch them. The table, queues and bus arrive as typed props from
// the stateful stack.

import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  JsonSchemaType,
  JsonSchemaVersion,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  ResponseType,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  Metric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { type IEventBus, Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { ManagedPolicy, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { CfnPermission, FunctionUrlAuthType } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { OPENAPI_PATH } from '../lambdas/definitions/public-routes.ts';
import {
  EVENTS_DELIVERY,
  EVENTS_STREAM,
  type FunctionName,
  METRICS,
  RECONCILER_SCHEDULE_MINUTES,
  serviceName,
  WORK_QUEUE,
} from '../lambdas/definitions/resources.ts';
import type { DialgateConfig } from './config.ts';
import { ConsoleSite } from './constructs/console-site.ts';
import { DialgateFunction } from './constructs/dialgate-function.ts';
import { dialgateKey } from './constructs/keys.ts';
import { type LogSettings, logSettings, stageLogGroup } from './constructs/logs.ts';
import { acknowledgeControl } from './control-tower.ts';
import { managedPolicyFinding } from './nag-findings.ts';

export interface StatelessStackProps extends StackProps {
  readonly config: DialgateConfig;
  /** Production keeps its logs when the stack is destroyed. */
  readonly retainLogs: boolean;
  readonly table: ITable;
  readonly workQueue: IQueue;
  readonly deadLetterQueue: IQueue;
  readonly eventBus: IEventBus;
  readonly eventsQueue: IQueue;
  readonly eventsDeadLetterQueue: IQueue;
}

/** Per stage, for every client together; a run is one POST, so this bounds polling, not calling. */
const API_THROTTLE = { rateLimit: 50, burstLimit: 100 };

export class StatelessStack extends Stack {
  readonly functions: Partial<Record<FunctionName, DialgateFunction>> = {};
  readonly api: RestApi;
  readonly alarmTopic: Topic;
  readonly dashboard: Dashboard;
  private readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { config, table, workQueue } = props;
    const logs = logSettings(this, props.retainLogs);
    const fn = (
      name: FunctionName,
      extra: { reservedConcurrentExecutions?: number; retryAttempts?: number } = {},
    ) => {
      const made = new DialgateFunction(this, `${capitalize(name)}Function`, {
        fn: name,
        logs,
        ...extra,
      });
      this.functions[name] = made;
      return made;
    };
    // Referenced by name: the operator puts the value there; the template only ever holds the name.
    const twilioSecret: ISecret = Secret.fromSecretNameV2(this, 'TwilioSecret', config.twilioSecretName);
    const calls = {
      RING_TIMEOUT_SECONDS: String(config.ringTimeoutSeconds),
      CALL_TIME_LIMIT_SECONDS: String(config.callTimeLimitSeconds),
    };

    // Twilio status callbacks. Public on purpose: X-Twilio-Signature is the authentication, checked
    // before any write. Reserved concurrency bounds what a flood of forged callbacks can take.
    const webhook = fn('webhook', { reservedConcurrentExecutions: config.webhookReservedConcurrency })
      .bindTable(table, 'readWrite')
      .bindQueue(workQueue, 'send')
      .bindTwilioSecret(twilioSecret);
    const webhookUrl = webhook.addFunctionUrl({ authType: FunctionUrlAuthType.NONE });
    const twilioCannotSign =
      'Twilio cannot sign its status callbacks with SigV4 (AWS IAM), so the Function URL is public; the ' +
      'function authenticates each request by its X-Twilio-Signature before any write, and its reserved ' +
      'concurrency bounds what a flood of forged requests can take.';
    acknowledgeControl(webhookUrl, 'CT.LAMBDA.PR.5', twilioCannotSign);
    // The URL's two invoke permissions (InvokeFunctionUrl, and InvokeFunction via the URL only).
    acknowledgeControl(webhook, 'CT.LAMBDA.PR.2', twilioCannotSign);

    const api = fn('api')
      .bindTable(table, 'readWrite')
      .bindQueue(workQueue, 'send')
      .setEnv({
        DEFAULT_CONCURRENCY: String(config.defaultConcurrency),
        MAX_CONCURRENCY: String(config.maxConcurrency),
        MAX_LEADS_PER_RUN: String(config.maxLeadsPerRun),
        // Bounds on a run's own caller id and call content.
        TWILIO_FROM_NUMBER: config.twilioFromNumber,
        ALLOWED_FROM_NUMBERS: config.allowedFromNumbers.join(',') || undefined,
        TWIML_URL_ALLOWED_PREFIXES: config.twimlUrlAllowedPrefixes.join(',') || undefined,
        MAX_TWIML_BYTES: String(config.maxTwimlBytes),
        // How lead numbers are read: national ones as this country's; only these types.
        DEFAULT_COUNTRY: config.defaultCountry,
        ALLOWED_PHONE_TYPES: config.allowedPhoneTypes.join(',') || undefined,
      });

    const dispatcher = fn('dispatcher')
      .bindTable(table, 'readWrite')
      .bindQueue(workQueue, 'consume')
      .bindQueue(workQueue, 'send') // puts a run's "dispatch" message back when it must try again later
      .bindTwilioSecret(twilioSecret)
      .setEnv({
        WEBHOOK_URL: webhookUrl.url, // the status callback base, sent with every calls.create
        TWILIO_FROM_NUMBER: config.twilioFromNumber,
        TWIML_URL: config.twimlUrl,
        // Account-wide limits across all runs, taken in the same transaction as a run's slot.
        ACCOUNT_MAX_CONCURRENT_CALLS: config.accountMaxConcurrentCalls?.toString(),
        ACCOUNT_CALLS_PER_SECOND: config.accountCallsPerSecond?.toString(),
        // Per-number checks in the same transaction: the suppression list, the frequency cap.
        SUPPRESSION_CHECK: config.suppressionCheck,
        RECIPIENT_MAX_CALLS: config.recipientMaxCalls?.toString(),
        RECIPIENT_WINDOW_HOURS: config.recipientWindowHours?.toString(),
        ...calls,
      });
    dispatcher.addEventSource(
      new SqsEventSource(workQueue, {
        batchSize: WORK_QUEUE.batchSize,
        reportBatchItemFailures: true, // a failed record is retried alone, not with its whole batch
      }),
    );

    // Frees slots whose final callback never came, on Twilio's word; one pass per schedule tick.
    const reconciler = fn('reconciler', {
      reservedConcurrentExecutions: 1, // one pass at a time: a pass walks the open runs alone
      retryAttempts: 0, // the next scheduled pass is the retry
    })
      .bindTable(table, 'readWrite')
      .bindQueue(workQueue, 'send')
      .bindTwilioSecret(twilioSecret)
      .setEnv(calls);
    new Rule(this, 'ReconcileSchedule', {
      description: 'dialgate: free slots whose calls ended without a status callback',
      schedule: Schedule.rate(Duration.minutes(RECONCILER_SCHEDULE_MINUTES)),
      targets: [new LambdaFunction(reconciler, { retryAttempts: 0 })],
    });

    this.eventsOut(props, fn);

    this.api = this.restApi(config, api, logs);
    // The web console needs API-key mode: a browser cannot sign IAM (SigV4) requests on its own.
    if (config.apiAuth === 'apiKey') {
      const site = new ConsoleSite(this, 'Console', {
        api: this.api,
        logs,
      });
      // Made here, not inside the construct, so that its name is `ConsoleUrl` as the README says
      // (an output in a nested construct is named after its path and a hash).
      new CfnOutput(this, 'ConsoleUrl', {
        value: site.url,
        description: 'The web console (the API is also served under it, at /runs)',
      });
    }
    this.alarmTopic = this.alarmTopicFor(config);
    this.dashboard = this.monitoring(config, props.deadLetterQueue, workQueue, props.eventsDeadLetterQueue);

    // RestApi adds its own `Endpoint` output; ApiUrl replaces it under a name the docs can use.
    this.api.node.tryRemoveChild('Endpoint');
    new CfnOutput(this, 'ApiUrl', { value: this.api.url });
    new CfnOutput(this, 'WebhookUrl', { value: webhookUrl.url });
    new CfnOutput(this, 'DashboardName', { value: this.dashboard.dashboardName });
    new CfnOutput(this, 'TwilioSecretName', { value: config.twilioSecretName });
    new CfnOutput(this, 'EventsWebhookSecretName', { value: config.eventsWebhookSecretName });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
  }

  /**
   * Events out, off the refill path: the table's stream → the events function, which puts each event
   * on the bus and, with a webhook configured, on the delivery queue → the delivery function, which
   * signs and posts it, retrying on the schedule for about a day before the dead-letter queue.
   */
  private eventsOut(
    props: StatelessStackProps,
    fn: (name: FunctionName, extra?: { retryAttempts?: number }) => DialgateFunction,
  ): void {
    const { config } = props;
    const events = fn('events')
      .bindEventBus(props.eventBus)
      .bindTableStream(props.table, EVENTS_STREAM.batchSize);
    // Without a webhook the delivery queue is left out of the events function's grants and variables.
    if (config.eventsWebhookUrl) events.bindEventsQueue(props.eventsQueue, 'send');

    // Referenced by name, as the Twilio secret: the operator puts the `whsec_…` value there.
    const signingSecret = Secret.fromSecretNameV2(
      this,
      'EventsWebhookSecret',
      config.eventsWebhookSecretName,
    );
    const delivery = fn('delivery')
      .bindEventsQueue(props.eventsQueue, 'consume')
      .bindEventsWebhookSecret(signingSecret)
      .setEnv({ EVENTS_WEBHOOK_URL: config.eventsWebhookUrl });
    delivery.addEventSource(
      new SqsEventSource(props.eventsQueue, {
        batchSize: EVENTS_DELIVERY.batchSize,
        reportBatchItemFailures: true, // a failed delivery is retried alone, after its own wait
        maxConcurrency: EVENTS_DELIVERY.maxConcurrency, // what the endpoint receives at once is bounded
      }),
    );
  }

  private restApi(config: DialgateConfig, handler: DialgateFunction, logs: LogSettings): RestApi {
    const iam = config.apiAuth === 'iam';
    const accessLogs = stageLogGroup(this, 'ApiAccessLogs', logs);
    const api = new RestApi(this, 'Api', {
      restApiName: `dialgate-${config.stage}`,
      description: 'dialgate runs API',
      endpointConfiguration: { types: [EndpointType.REGIONAL] },
      // Access and execution logs need the account's API Gateway CloudWatch role; this sets it.
      cloudWatchRole: true,
      deployOptions: {
        stageName: config.stage,
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields({
          caller: true,
          httpMethod: true,
          ip: true,
          protocol: true,
          requestTime: true,
          resourcePath: true,
          responseLength: true,
          status: true,
          user: true,
        }),
        loggingLevel: MethodLoggingLevel.ERROR,
        dataTraceEnabled: false, // request bodies are lists of phone numbers: never logged whole
        tracingEnabled: true,
        metricsEnabled: true,
        throttlingRateLimit: API_THROTTLE.rateLimit,
        throttlingBurstLimit: API_THROTTLE.burstLimit,
      },
      defaultMethodOptions: iam
        ? { authorizationType: AuthorizationType.IAM }
        : { authorizationType: AuthorizationType.NONE, apiKeyRequired: true },
    });

    // Only the shape is checked here; the function reports each bad row with its field and index.
    const runRequest = api.addModel('RunRequest', {
      contentType: 'application/json',
      modelName: 'RunRequest',
      schema: {
        schema: JsonSchemaVersion.DRAFT4,
        title: 'RunRequest',
        type: JsonSchemaType.OBJECT,
        // The leads themselves, or another run's by outcome (`from_run`).
        properties: { leads: { type: JsonSchemaType.ARRAY }, from_run: { type: JsonSchemaType.OBJECT } },
        anyOf: [{ required: ['leads'] }, { required: ['from_run'] }],
      },
    });
    const validator = api.addRequestValidator('Validator', {
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    // The same error shape as the function's own 400s (lambdas/handlers/http.ts).
    api.addGatewayResponse('InvalidBody', {
      type: ResponseType.BAD_REQUEST_BODY,
      statusCode: '400',
      templates: {
        'application/json': JSON.stringify({
          error: {
            code: 'invalid_request',
            message: 'The request body must be a JSON object with a "leads" array or a "from_run" object.',
            details: [{ field: 'body', message: 'expected a JSON object with "leads" or "from_run"' }],
          },
        }),
      },
    });

    const integration = new LambdaIntegration(handler, { allowTestInvoke: false });
    const runs = api.root.addResource('runs');
    runs.addMethod('POST', integration, {
      requestValidator: validator,
      requestModels: { 'application/json': runRequest },
    });
    runs.addMethod('GET', integration, { requestValidator: validator }); // list, newest first
    // Per run: progress, the controls (pause/resume/cancel), appended leads (JSON or CSV), its calls.
    const run = runs.addResource('{run_id}');
    const perRun = { requestValidator: validator, requestParameters: { 'method.request.path.run_id': true } };
    run.addMethod('GET', integration, perRun);
    for (const control of ['pause', 'resume', 'cancel'])
      run.addResource(control).addMethod('POST', integration, perRun);
    run.addResource('leads').addMethod('POST', integration, perRun);
    run.addResource('calls').addMethod('GET', integration, perRun);
    // The suppression list: pages and a CSV import; one number read, added or removed.
    const suppressions = api.root.addResource('suppressions');
    suppressions.addMethod('GET', integration, { requestValidator: validator });
    suppressions.addMethod('POST', integration, { requestValidator: validator });
    const suppression = suppressions.addResource('{phone}');
    const perPhone = {
      requestValidator: validator,
      requestParameters: { 'method.request.path.phone': true },
    };
    for (const method of ['GET', 'PUT', 'DELETE']) suppression.addMethod(method, integration, perPhone);
    // The OpenAPI document is public: it describes the API and holds no data, and code generators,
    // gateways and the console's reference page fetch it before they have credentials. The stage's
    // throttling still applies, and the function answers it from its bundle (no table, no queue).
    const openApi = api.root
      .addResource(OPENAPI_PATH.slice(1))
      .addMethod('GET', integration, { authorizationType: AuthorizationType.NONE, apiKeyRequired: false });
    // API Gateway's permission to invoke the function, one per method: scoped to that method of this
    // API by SourceArn, an ARN joined from the API's id, which the control reads as neither a literal
    // nor a reference.
    for (const permission of api.node.findAll().filter((c) => c instanceof CfnPermission)) {
      acknowledgeControl(
        permission,
        'CT.LAMBDA.PR.2',
        'API Gateway may invoke the function only for this method of this API: SourceArn is the ' +
          'method’s execute-api ARN (joined from the API id, so the rule sees neither a string nor a reference).',
      );
    }
    Validations.of(openApi).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'GET /openapi.json is the API’s public description (no data, no side effect); every other method ' +
        'is authenticated.',
    });

    Validations.of(api).acknowledge(
      {
        id: 'AwsSolutions-APIG3',
        reason:
          'No WAF: every method is authenticated (IAM or API key), the stage is throttled, and the request ' +
          'bodies are validated; a web ACL can be associated with the stage by the operator.',
      },
      {
        id: 'AwsSolutions-COG4',
        reason:
          'Callers are services and operators with AWS credentials (IAM, SigV4) or an API key, not end users ' +
          'in a Cognito user pool.',
      },
      {
        id: managedPolicyFinding(
          api,
          ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')
            .managedPolicyArn,
        ),
        reason:
          "API Gateway's account-wide CloudWatch role uses the AWS managed policy made for exactly that; " +
          'it is what access and execution logging require.',
      },
    );

    if (!iam) {
      Validations.of(api).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'The operator chose -c apiAuth=apiKey: every method requires an API key bound to a throttled ' +
          'usage plan (the default, -c apiAuth=iam, uses IAM authorization).',
      });
      const plan = api.addUsagePlan('UsagePlan', {
        name: `dialgate-${config.stage}`,
        throttle: { rateLimit: API_THROTTLE.rateLimit, burstLimit: API_THROTTLE.burstLimit },
        apiStages: [{ api, stage: api.deploymentStage }],
      });
      // The key's value is generated by API Gateway at deploy time; the template only has its id.
      const key = api.addApiKey('ApiKey', { description: `dialgate ${config.stage} client` });
      plan.addApiKey(key);
      new CfnOutput(this, 'ApiKeyId', { value: key.keyId });
    }
    return api;
  }

  private alarmTopicFor(config: DialgateConfig): Topic {
    // CloudWatch can only publish to an encrypted topic whose key lets it: the AWS managed SNS key
    // does not, so the topic has its own key.
    const key = dialgateKey(this, 'AlarmTopicKey', {
      description: `dialgate ${config.stage} alarm topic`,
      removalPolicy: RemovalPolicy.DESTROY, // it protects alarm notifications in flight, nothing stored
      pendingWindow: Duration.days(7),
    });
    key.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'], // in a key policy, "*" is this key
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );
    const topic = new Topic(this, 'AlarmTopic', {
      displayName: `dialgate ${config.stage} alarms`,
      masterKey: key,
      enforceSSL: true,
    });
    if (config.alarmEmail) topic.addSubscription(new EmailSubscription(config.alarmEmail));
    return topic;
  }

  private monitoring(
    config: DialgateConfig,
    deadLetterQueue: IQueue,
    workQueue: IQueue,
    eventsDeadLetterQueue: IQueue,
  ): Dashboard {
    const minute = Duration.minutes(1);
    const custom = (metric: { name: string; emitter: FunctionName }, statistic: string, label?: string) =>
      new Metric({
        namespace: METRICS.namespace,
        metricName: metric.name,
        dimensionsMap: { [METRICS.dimension]: serviceName(metric.emitter) },
        statistic,
        period: minute,
        ...(label ? { label } : {}),
      });
    const functions = Object.entries(this.functions) as [FunctionName, DialgateFunction][];

    this.alarm(
      'DeadLetterQueueNotEmpty',
      deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Maximum' }),
      'Work messages failed repeatedly and were parked in the dead-letter queue: leads may be stuck. ' +
        'Inspect them, fix the cause, then redrive.',
    );
    this.alarm(
      'EventsDeadLetterQueueNotEmpty',
      eventsDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: minute,
        statistic: 'Maximum',
      }),
      'Events the webhook endpoint did not accept for about a day (every try of the retry schedule) were ' +
        'parked in the events dead-letter queue. Fix the endpoint, then redrive them to the events queue.',
    );
    this.alarm(
      'EventsBehind',
      this.functions.events!.metric('IteratorAge', { period: minute, statistic: 'Maximum' }),
      'The events function is more than five minutes behind the table: events are late, or a stream ' +
        "record keeps failing (see the function's errors); records leave the stream after 24 hours.",
      EVENTS_STREAM.iteratorAgeAlarmSeconds * 1000,
    );
    for (const [name, fn] of functions) {
      this.alarm(
        `${capitalize(name)}Errors`,
        fn.metricErrors({ period: minute, statistic: 'Sum' }),
        `The ${name} function failed (an uncaught error or a timeout).`,
      );
    }
    this.alarm(
      'SlotsReaped',
      custom(METRICS.slotsReaped, 'Sum'),
      'The reconciler freed slots whose calls ended without a status callback: callbacks are being lost ' +
        '(webhook down, URL wrong, or Twilio delays).',
    );
    this.alarm(
      'SlotMismatch',
      custom(METRICS.slotMismatch, 'Sum'),
      "The reconciler found a run whose slot counter disagreed with its named holders: the cap's " +
        'bookkeeping is broken (never expected). Pause new runs and investigate.',
    );
    this.alarm(
      'UnknownCalls',
      custom(METRICS.unknownCalls, 'Sum'),
      'Twilio said it did not know a call it had created (a Sid dialgate holds a slot for): the slot is ' +
        'kept until Twilio knows the call. Check the Twilio account and region the functions use.',
    );
    // Throttled callbacks get 429 from the Function URL; Twilio does not retry them (its error 11217)
    // and the reconciler settles their calls a pass later. Sustained, it means the reservation is too
    // small for the calling rate, or a flood of requests is taking it.
    this.alarm(
      'WebhookThrottled',
      this.functions.webhook!.metricThrottles({ period: minute, statistic: 'Sum' }),
      'Status callbacks were throttled: the webhook ran at its reserved concurrency and Lambda answered 429, ' +
        'which Twilio does not retry (error 11217). The reconciler settles those calls from Twilio a pass ' +
        'later; if it persists, raise -c webhookReservedConcurrency or look for a flood of forged requests.',
    );
    this.alarm(
      'WebhookSignatureRejected',
      custom(METRICS.webhookSignatureRejected, 'Sum'),
      'Status callbacks were refused for a bad X-Twilio-Signature: forged requests, or a wrong auth token ' +
        'in the Twilio secret (then real callbacks are lost too).',
    );

    const dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: `dialgate-${config.stage}`,
      defaultInterval: Duration.hours(3),
    });
    const graph = (title: string, left: IMetric[], right: IMetric[] = []) =>
      new GraphWidget({ title, left, right, width: 8, height: 6, period: minute });
    const errors: IMetric[] = functions.map(([name, fn]) =>
      fn.metricErrors({ period: minute, statistic: 'Sum', label: `${name} errors` }),
    );
    dashboard.addWidgets(
      // Sampled once a minute by the reconciler, over every open run.
      graph('Calls live (dialing or in a call), all runs', [
        custom(METRICS.liveCalls, 'Maximum', 'live calls'),
      ]),
      graph('Calls placed per minute', [custom(METRICS.callsPlaced, 'Sum', 'calls placed')]),
      graph('Refill latency (slot freed → next call), ms', [
        custom(METRICS.refillLatencyMs, 'p50', 'p50'),
        custom(METRICS.refillLatencyMs, 'p95', 'p95'),
      ]),
    );
    dashboard.addWidgets(
      graph(
        'Queues',
        [
          deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            label: 'dead letters',
            statistic: 'Maximum',
          }),
          workQueue.metricApproximateNumberOfMessagesVisible({
            label: 'work queue depth',
            statistic: 'Maximum',
          }),
          eventsDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
            label: 'undelivered events',
            statistic: 'Maximum',
          }),
        ],
        [
          workQueue.metricApproximateAgeOfOldestMessage({
            label: 'oldest work message (s)',
            statistic: 'Maximum',
          }),
        ],
      ),
      graph('Errors', errors, [
        custom(METRICS.slotsReaped, 'Sum', 'slots reaped'),
        custom(METRICS.webhookSignatureRejected, 'Sum', 'signatures rejected'),
        custom(METRICS.slotMismatch, 'Sum', 'slot mismatches'),
      ]),
      new AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 8, height: 6 }),
    );
    return dashboard;
  }

  /** Any datapoint above `threshold` (zero unless said) in a minute is worth a look. */
  private alarm(id: string, metric: IMetric, description: string, threshold = 0): Alarm {
    const alarm = new Alarm(this, id, {
      metric,
      alarmDescription: description,
      threshold,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING, // no datapoint means nothing happened
    });
    alarm.addAlarmAction(new SnsAction(this.alarmTopic));
    this.alarms.push(alarm);
    return alarm;
  }
}

function capitalize(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
