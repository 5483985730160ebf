// Events out, as deployed: the table's stream feeding the events function, the bus it puts on, the
// delivery queue (retries for at least a day, then a dead-letter queue with an alarm) and the delivery
// function, least privilege, and the webhook's configuration from context — with cdk-nag clean.

import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { EVENTS_DELIVERY, EVENTS_STREAM, FUNCTIONS } from '../../lambdas/definitions/resources.ts';
import { readConfig } from '../../lib/config.ts';
import { CONTROL_TOWER } from '../../lib/control-tower.ts';
import {
  actionsOf,
  type Cfn,
  functionsOf,
  nagFindings,
  statementsOfRole,
  synthDialgate,
  validationReport,
} from './synth.ts';

const WEBHOOK = 'https://crm.example.com/hooks/dialgate';

describe('events out, with a webhook configured', () => {
  const synth = synthDialgate({ eventsWebhookUrl: WEBHOOK });
  const fns = functionsOf(synth.stateless);
  const roleOf = (fn: string) => fns[fn]!.props.Role['Fn::GetAtt'][0] as string;
  const queues = Object.entries(synth.stateful.findResources('AWS::SQS::Queue'));
  const queueId = (prefix: string) => queues.find(([id]) => id.startsWith(prefix))![0];
  const eventsQueue = () =>
    synth.stateful.findResources('AWS::SQS::Queue')[queueId('EventsQueue')]!.Properties;
  const importOf = (logicalId: string) => new RegExp(`"Fn::ImportValue":"[^"]*${logicalId}`);

  it('streams both images of every write from the table', () => {
    synth.stateful.hasResourceProperties('AWS::DynamoDB::Table', {
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
    });
  });

  it('feeds the events function from the stream: oldest first, partial batch responses, bisecting, in order', () => {
    const mappings = Object.values(synth.stateless.findResources('AWS::Lambda::EventSourceMapping'))
      .map((m) => m.Properties)
      .filter((m) => m.FunctionName.Ref === fns.events!.logicalId);
    expect(mappings).toHaveLength(1);
    const mapping = mappings[0]!;
    expect(mapping).toMatchObject({
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: EVENTS_STREAM.batchSize,
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ParallelizationFactor: 1,
    });
    // Retried until the record leaves the stream: never dropped after a count of tries.
    expect(mapping.MaximumRetryAttempts).toBeUndefined();
    expect(mapping.MaximumRecordAgeInSeconds).toBeUndefined();
    expect(JSON.stringify(mapping.EventSourceArn)).toMatch(/"Fn::ImportValue":"[^"]*Table[^"]*StreamArn/);
  });

  it('puts events on the stack’s own bus only, and sends to the delivery queue only', () => {
    const statements = statementsOfRole(synth.stateless, roleOf('events'));
    const put = statements.filter((s) => actionsOf([s]).includes('events:PutEvents'));
    expect(put).toHaveLength(1);
    expect(JSON.stringify(put[0]!.Resource)).toMatch(importOf('EventBus'));
    const send = statements.filter((s) => actionsOf([s]).includes('sqs:SendMessage'));
    expect(send).toHaveLength(1);
    expect(JSON.stringify(send[0]!.Resource)).toMatch(importOf(queueId('EventsQueue')));
    const env = fns.events!.props.Environment.Variables;
    expect(
      Object.keys(env)
        .filter((name) => !name.match(/^(NODE_OPTIONS|POWERTOOLS_)/))
        .sort(),
    ).toEqual(['EVENTS_QUEUE_URL', 'EVENT_BUS_NAME', 'TABLE_NAME']);
  });

  it('retries a delivery for at least a day, then parks it in an encrypted dead-letter queue', () => {
    const schedule = EVENTS_DELIVERY.retryScheduleSeconds;
    const total = schedule.reduce((sum, seconds) => sum + seconds, 0);
    expect(total).toBeGreaterThanOrEqual(24 * 3600);
    // Each wait is a visibility timeout, which SQS caps at 12 hours.
    for (const seconds of schedule) expect(seconds).toBeLessThanOrEqual(12 * 3600);
    const queue = eventsQueue();
    expect(queue.RedrivePolicy.maxReceiveCount).toBe(schedule.length + 1);
    expect(queue.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0]).toBe(queueId('EventsDeadLetterQueue'));
    // Kept past the whole schedule, and long enough per try for the consumer's timeout.
    expect(queue.MessageRetentionPeriod).toBeGreaterThan(total + 6 * 3600);
    expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(6 * FUNCTIONS.delivery.timeoutSeconds);
    expect(queue.SqsManagedSseEnabled).toBe(true);
    const dlq = synth.stateful.findResources('AWS::SQS::Queue')[queueId('EventsDeadLetterQueue')]!.Properties;
    expect(dlq.MessageRetentionPeriod).toBe(14 * 86_400);
    expect(dlq.SqsManagedSseEnabled).toBe(true);
  });

  it('delivers with partial batch responses, a bounded concurrency, the URL and the secret by name', () => {
    const mapping = Object.values(synth.stateless.findResources('AWS::Lambda::EventSourceMapping'))
      .map((m) => m.Properties)
      .find((m) => m.FunctionName.Ref === fns.delivery!.logicalId)!;
    expect(mapping).toMatchObject({
      BatchSize: EVENTS_DELIVERY.batchSize,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: EVENTS_DELIVERY.maxConcurrency },
    });
    expect(JSON.stringify(mapping.EventSourceArn)).toMatch(importOf(queueId('EventsQueue')));
    const env = fns.delivery!.props.Environment.Variables;
    expect(env.EVENTS_WEBHOOK_URL).toBe(WEBHOOK);
    expect(env.EVENTS_WEBHOOK_SECRET_ID).toBe('dialgate/dev/events-webhook');
    expect(env.EVENTS_WEBHOOK_SECRET).toBeUndefined();
    const secret = statementsOfRole(synth.stateless, roleOf('delivery')).filter((s) =>
      actionsOf([s]).some((a) => a.startsWith('secretsmanager:')),
    );
    expect(secret).toHaveLength(1);
    expect(JSON.stringify(secret[0]!.Resource)).toContain(':secret:dialgate/dev/events-webhook-??????');
  });

  it('alarms on undelivered events and on the events function falling behind the table', () => {
    const alarms = Object.values(synth.stateless.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => a.Properties as Cfn,
    );
    const dlq = alarms.filter(
      (a) =>
        a.MetricName === 'ApproximateNumberOfMessagesVisible' &&
        JSON.stringify(a.Dimensions).match(importOf(queueId('EventsDeadLetterQueue'))),
    );
    expect(dlq).toHaveLength(1);
    expect(dlq[0]).toMatchObject({ Threshold: 0, Statistic: 'Maximum' });
    const behind = alarms.find((a) => a.MetricName === 'IteratorAge');
    expect(behind).toMatchObject({
      Namespace: 'AWS/Lambda',
      Statistic: 'Maximum',
      Threshold: EVENTS_STREAM.iteratorAgeAlarmSeconds * 1000,
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: fns.events!.logicalId } }],
    });
  });

  it('passes cdk-nag and the Control Tower proactive controls with nothing unacknowledged', () => {
    expect(nagFindings(synth.app)).toEqual([]);
    const controlTower = validationReport(synth.app, CONTROL_TOWER);
    expect(controlTower.violations).toEqual([]);
    expect(controlTower.conclusion).toBe('success');
  });
});

describe('events webhook configuration', () => {
  const config = (context: Record<string, unknown>) => () => readConfig(new App({ context }).node);

  it('takes an https URL and refuses any other', () => {
    expect(config({ eventsWebhookUrl: WEBHOOK })().eventsWebhookUrl).toBe(WEBHOOK);
    expect(config({ eventsWebhookUrl: 'http://crm.example.com/hooks' })).toThrow(
      /eventsWebhookUrl: an https URL/,
    );
    expect(config({ eventsWebhookUrl: 'http://127.0.0.1:8080/hooks' })).toThrow(/eventsWebhookUrl/);
  });

  it('without a URL, the events go to the bus only: no send to the delivery queue', () => {
    const synth = synthDialgate({});
    const fns = functionsOf(synth.stateless);
    const role = fns.events!.props.Role['Fn::GetAtt'][0] as string;
    expect(actionsOf(statementsOfRole(synth.stateless, role))).not.toContain('sqs:SendMessage');
    expect(fns.events!.props.Environment.Variables.EVENTS_QUEUE_URL).toBeUndefined();
  });
});
