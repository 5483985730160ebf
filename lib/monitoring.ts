// The stage's monitoring: an alarm for each thing a person must look at (dead letters, a function's
// errors, events falling behind, lost callbacks, the cap's bookkeeping, throttled or forged callbacks),
// every alarm notifying one encrypted SNS topic (and `alarmEmail`, when given), and a dashboard of
// the calls, the queues and the errors. The README's "Alarms" section says what each alarm means.
//
// Built in the scope it is given (the stateless stack), not in a construct of its own: a construct in
// between would put its id into every logical id below, and CloudFormation would replace the deployed
// alarms (their history lost) and the topic (its subscriptions lost).
// test/infra/stateless-ids.test.ts pins those ids.

import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
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
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { EVENTS_STREAM, type FunctionName, METRICS, serviceName } from '../lambdas/definitions/resources.ts';
import type { DialgateConfig } from './config.ts';
import type { DialgateFunction } from './constructs/dialgate-function.ts';
import { dialgateKey } from './constructs/keys.ts';
import { idStem } from './function-ids.ts';

/** The period of every alarm and graph. */
const MINUTE = Duration.minutes(1);

export interface MonitoringProps {
  /** The stage names the topic and the dashboard; `alarmEmail` is subscribed to the topic. */
  readonly config: Pick<DialgateConfig, 'stage' | 'alarmEmail'>;
  /**
   * The stack's functions (the events and webhook functions among them), each alarmed and graphed on
   * its errors in this order.
   */
  readonly functions: Partial<Record<FunctionName, DialgateFunction>>;
  readonly workQueue: IQueue;
  readonly deadLetterQueue: IQueue;
  readonly eventsDeadLetterQueue: IQueue;
}

export interface Monitoring {
  /** Every alarm notifies it; the `AlarmTopicArn` output, for the operator's own subscriptions. */
  readonly alarmTopic: Topic;
  readonly dashboard: Dashboard;
}

/** Adds the alarm topic, the alarms and the dashboard to `scope`, in that order. */
export function monitoring(scope: Construct, props: MonitoringProps): Monitoring {
  const alarmTopic = alarmTopicFor(scope, props.config);
  const alarms = failureAlarms(scope, alarmTopic, props);
  const dashboard = stageDashboard(scope, props, alarms);
  return { alarmTopic, dashboard };
}

function alarmTopicFor(scope: Construct, config: MonitoringProps['config']): Topic {
  // CloudWatch can only publish to an encrypted topic whose key lets it: the AWS managed SNS key
  // does not, so the topic has its own key.
  const key = dialgateKey(scope, 'AlarmTopicKey', {
    description: `dialgate ${config.stage} alarm topic`,
    removalPolicy: RemovalPolicy.DESTROY, // it protects alarm notifications in flight, nothing stored
    pendingWindow: Duration.days(7),
  });
  key.addToResourcePolicy(
    new PolicyStatement({
      principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'], // in a key policy, "*" is this key
      conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(scope).account } },
    }),
  );
  const topic = new Topic(scope, 'AlarmTopic', {
    displayName: `dialgate ${config.stage} alarms`,
    masterKey: key,
    enforceSSL: true,
  });
  if (config.alarmEmail) topic.addSubscription(new EmailSubscription(config.alarmEmail));
  return topic;
}

/** A metric a handler records under its service name (lambdas/definitions/resources.ts, METRICS). */
function dialgateMetric(
  metric: { name: string; emitter: FunctionName },
  statistic: string,
  label?: string,
): Metric {
  return new Metric({
    namespace: METRICS.namespace,
    metricName: metric.name,
    dimensionsMap: { [METRICS.dimension]: serviceName(metric.emitter) },
    statistic,
    period: MINUTE,
    ...(label ? { label } : {}),
  });
}

/** The functions with their names, in the order the stack made them. */
function named(functions: MonitoringProps['functions']): [FunctionName, DialgateFunction][] {
  return Object.entries(functions) as [FunctionName, DialgateFunction][];
}

function failureAlarms(scope: Construct, topic: Topic, props: MonitoringProps): Alarm[] {
  const { functions, deadLetterQueue, eventsDeadLetterQueue } = props;
  const alarms: Alarm[] = [];
  /** Any datapoint above `threshold` (zero unless said) in a minute is worth a look. */
  const alarm = (id: string, metric: IMetric, description: string, threshold = 0): void => {
    const made = new Alarm(scope, id, {
      metric,
      alarmDescription: description,
      threshold,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING, // no datapoint means nothing happened
    });
    made.addAlarmAction(new SnsAction(topic));
    alarms.push(made);
  };

  alarm(
    'DeadLetterQueueNotEmpty',
    deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: MINUTE, statistic: 'Maximum' }),
    'Work messages failed repeatedly and were parked in the dead-letter queue: leads may be stuck. ' +
      'Inspect them, fix the cause, then redrive.',
  );
  alarm(
    'EventsDeadLetterQueueNotEmpty',
    eventsDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: MINUTE,
      statistic: 'Maximum',
    }),
    'Events the webhook endpoint did not accept for about a day (every try of the retry schedule) were ' +
      'parked in the events dead-letter queue. Fix the endpoint, then redrive them to the events queue.',
  );
  alarm(
    'EventsBehind',
    functions.events!.metric('IteratorAge', { period: MINUTE, statistic: 'Maximum' }),
    'The events function is more than five minutes behind the table: events are late, or a stream ' +
      "record keeps failing (see the function's errors); records leave the stream after 24 hours.",
    EVENTS_STREAM.iteratorAgeAlarmSeconds * 1000,
  );
  for (const [name, fn] of named(functions)) {
    alarm(
      `${idStem(name)}Errors`,
      fn.metricErrors({ period: MINUTE, statistic: 'Sum' }),
      `The ${name} function failed (an uncaught error or a timeout).`,
    );
  }
  alarm(
    'SlotsReaped',
    dialgateMetric(METRICS.slotsReaped, 'Sum'),
    'The reconciler freed slots whose calls ended without a status callback: callbacks are being lost ' +
      '(webhook down, URL wrong, or Twilio delays).',
  );
  alarm(
    'SlotMismatch',
    dialgateMetric(METRICS.slotMismatch, 'Sum'),
    "The reconciler found a run whose slot counter disagreed with its named holders: the cap's " +
      'bookkeeping is broken (never expected). Pause new runs and investigate.',
  );
  alarm(
    'UnknownCalls',
    dialgateMetric(METRICS.unknownCalls, 'Sum'),
    'Twilio said it did not know a call it had created (a Sid dialgate holds a slot for): the slot is ' +
      'kept until Twilio knows the call. Check the Twilio account and region the functions use.',
  );
  // Throttled callbacks get 429 from the Function URL; Twilio does not retry them (its error 11217)
  // and the reconciler settles their calls a pass later. Sustained, it means the reservation is too
  // small for the calling rate, or a flood of requests is taking it.
  alarm(
    'WebhookThrottled',
    functions.webhook!.metricThrottles({ period: MINUTE, statistic: 'Sum' }),
    'Status callbacks were throttled: the webhook ran at its reserved concurrency and Lambda answered 429, ' +
      'which Twilio does not retry (error 11217). The reconciler settles those calls from Twilio a pass ' +
      'later; if it persists, raise -c webhookReservedConcurrency or look for a flood of forged requests.',
  );
  alarm(
    'WebhookSignatureRejected',
    dialgateMetric(METRICS.webhookSignatureRejected, 'Sum'),
    'Status callbacks were refused for a bad X-Twilio-Signature: forged requests, or a wrong auth token ' +
      'in the Twilio secret (then real callbacks are lost too).',
  );
  return alarms;
}

function stageDashboard(scope: Construct, props: MonitoringProps, alarms: Alarm[]): Dashboard {
  const { config, functions, workQueue, deadLetterQueue, eventsDeadLetterQueue } = props;
  const dashboard = new Dashboard(scope, 'Dashboard', {
    dashboardName: `dialgate-${config.stage}`,
    defaultInterval: Duration.hours(3),
  });
  const graph = (title: string, left: IMetric[], right: IMetric[] = []) =>
    new GraphWidget({ title, left, right, width: 8, height: 6, period: MINUTE });
  const errors: IMetric[] = named(functions).map(([name, fn]) =>
    fn.metricErrors({ period: MINUTE, statistic: 'Sum', label: `${name} errors` }),
  );
  dashboard.addWidgets(
    // Sampled once a minute by the reconciler, over every open run.
    graph('Calls live (dialing or in a call), all runs', [
      dialgateMetric(METRICS.liveCalls, 'Maximum', 'live calls'),
    ]),
    graph('Calls placed per minute', [dialgateMetric(METRICS.callsPlaced, 'Sum', 'calls placed')]),
    graph('Refill latency (slot freed → next call), ms', [
      dialgateMetric(METRICS.refillLatencyMs, 'p50', 'p50'),
      dialgateMetric(METRICS.refillLatencyMs, 'p95', 'p95'),
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
      dialgateMetric(METRICS.slotsReaped, 'Sum', 'slots reaped'),
      dialgateMetric(METRICS.webhookSignatureRejected, 'Sum', 'signatures rejected'),
      dialgateMetric(METRICS.slotMismatch, 'Sum', 'slot mismatches'),
    ]),
    new AlarmStatusWidget({ title: 'Alarms', alarms, width: 8, height: 6 }),
  );
  return dashboard;
}
