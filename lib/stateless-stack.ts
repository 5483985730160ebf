// (stateless) Everything that can be replaced without losing data: the functions, the REST API, the
// webhook's Function URL, the reconciler's schedule, the events' stream consumer and webhook delivery,
// and the alarms and dashboard that watch them. The table, queues and bus arrive as typed props from
// the stateful stack. The REST API (rest-api.ts) and the monitoring (monitoring.ts) are built by
// functions of their own in this stack's scope, not in constructs of their own, so that their
// resources' logical ids stay as they were deployed (test/infra/stateless-ids.test.ts).

import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import type { Dashboard } from 'aws-cdk-lib/aws-cloudwatch';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { type IEventBus, Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { FunctionUrlAuthType } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Topic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import {
  EVENTS_DELIVERY,
  EVENTS_STREAM,
  type FunctionName,
  RECONCILER_SCHEDULE_MINUTES,
  WORK_QUEUE,
} from '../lambdas/definitions/resources.ts';
import type { DialgateConfig } from './config.ts';
import { ConsoleSite } from './constructs/console-site.ts';
import { DialgateFunction } from './constructs/dialgate-function.ts';
import { logSettings } from './constructs/logs.ts';
import { acknowledgeControl } from './control-tower.ts';
import { idStem } from './function-ids.ts';
import { monitoring } from './monitoring.ts';
import { restApi } from './rest-api.ts';

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

export class StatelessStack extends Stack {
  readonly functions: Partial<Record<FunctionName, DialgateFunction>> = {};
  readonly api: RestApi;
  readonly alarmTopic: Topic;
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { config, table, workQueue } = props;
    const logs = logSettings(this, props.retainLogs);
    const fn = (
      name: FunctionName,
      extra: { reservedConcurrentExecutions?: number; retryAttempts?: number } = {},
    ) => {
      const made = new DialgateFunction(this, `${idStem(name)}Function`, {
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

    const apiFunction = fn('api')
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

    this.api = restApi(this, { config, handler: apiFunction, logs });
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
    const { alarmTopic, dashboard } = monitoring(this, {
      config,
      functions: this.functions,
      workQueue,
      deadLetterQueue: props.deadLetterQueue,
      eventsDeadLetterQueue: props.eventsDeadLetterQueue,
    });
    this.alarmTopic = alarmTopic;
    this.dashboard = dashboard;

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
      .bindTableStream(props.table, EVENTS_STREAM.batchSize)
      // Reads only: a run whose cap is split over slot counters has its live calls counted there, not
      // on the run item the stream carries, so a status event's counts are read.
      .bindTable(props.table, 'read');
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
}
