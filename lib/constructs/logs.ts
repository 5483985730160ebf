// The stage's log groups: one retention, one removal policy and one KMS key for all of them (the
// functions', the API's access logs, the console file copier's), so that no log group is made
// with settings of its own.

import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { Key } from 'aws-cdk-lib/aws-kms';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { acknowledgeControl } from '../control-tower.ts';
import { dialgateKey } from './keys.ts';

export interface LogSettings {
  readonly retention: RetentionDays;
  /** Production keeps its logs (and their key) when the stack is destroyed. */
  readonly removalPolicy: RemovalPolicy;
  /** Encrypts every log group's data at rest; CloudWatch Logs uses it, the writers need no grant. */
  readonly encryptionKey: Key;
}

/** A year or more, or never expiring: what Control Tower's CT.CLOUDWATCH.PR.2 requires. */
const ONE_YEAR_DAYS = 365;

/**
 * The settings for one stage: a year's retention when the logs are kept, a month otherwise, and a
 * key of the stack's own that only CloudWatch Logs in this account and region may use for its log
 * groups.
 */
export function logSettings(scope: Construct, retainLogs: boolean): LogSettings {
  const removalPolicy = retainLogs ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
  const { account, region, partition } = Stack.of(scope);
  const encryptionKey = dialgateKey(scope, 'LogsKey', {
    description: 'dialgate log groups',
    // Kept with the logs it encrypts: a retained log group whose key is gone cannot be read.
    removalPolicy,
    pendingWindow: Duration.days(retainLogs ? 30 : 7),
  });
  encryptionKey.addToResourcePolicy(
    new PolicyStatement({
      principals: [new ServicePrincipal(`logs.${region}.amazonaws.com`)],
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      resources: ['*'], // in a key policy, "*" is this key
      conditions: {
        ArnLike: {
          'kms:EncryptionContext:aws:logs:arn': `arn:${partition}:logs:${region}:${account}:log-group:*`,
        },
      },
    }),
  );
  return {
    retention: retainLogs ? RetentionDays.ONE_YEAR : RetentionDays.ONE_MONTH,
    removalPolicy,
    encryptionKey,
  };
}

/** A log group with the stage's settings. */
export function stageLogGroup(scope: Construct, id: string, settings: LogSettings): LogGroup {
  const logGroup = new LogGroup(scope, id, {
    retention: settings.retention,
    removalPolicy: settings.removalPolicy,
    encryptionKey: settings.encryptionKey,
  });
  if (settings.retention < ONE_YEAR_DAYS) {
    acknowledgeControl(
      logGroup,
      'CT.CLOUDWATCH.PR.2',
      'Outside production the stage’s logs are kept a month and deleted with the stack (a try-out or ' +
        'trial stage); production (-c stage=prod) keeps them a year and retains them.',
    );
  }
  return logGroup;
}
