// dialgate's customer managed KMS keys (the alarm topic's, the log groups'): rotated yearly, and
// grants on them only for AWS services acting for an AWS resource.

import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AnyPrincipal, Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';

export interface DialgateKeyProps {
  readonly description: string;
  readonly removalPolicy: RemovalPolicy;
  readonly pendingWindow: Duration;
}

export function dialgateKey(scope: Construct, id: string, props: DialgateKeyProps): Key {
  const key = new Key(scope, id, { ...props, enableKeyRotation: true });
  // Nothing here uses grants; an AWS service that encrypts for a resource may (Control Tower's
  // CT.KMS.PR.3). The account's administrators keep every other right the default key policy gives.
  key.addToResourcePolicy(
    new PolicyStatement({
      effect: Effect.DENY,
      principals: [new AnyPrincipal()],
      actions: ['kms:CreateGrant'],
      resources: ['*'], // in a key policy, "*" is this key
      conditions: {
        BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' },
      },
    }),
  );
  return key;
}
