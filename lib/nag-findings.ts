// cdk-nag names a finding after the policy text it flags (`AwsSolutions-IAM5[Resource::<arn>]`), and
// that text depends on the stack's environment: `<AWS::Region>` when the synth is
// environment-agnostic, `eu-central-1` once the CLI passes a region (as `cdk deploy` always does).
// Acknowledgements that name a resource are therefore computed from the value the policy holds,
// spelled the way cdk-nag spells it, never written out as one environment's spelling.

import { Stack } from 'aws-cdk-lib';
// cdk-nag's own formatter of a policy resource (not re-exported by its index): the acknowledgement
// and the finding are spelled by the same function.
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { IConstruct } from 'constructs';

/** A resource (an ARN, possibly holding tokens) as cdk-nag's IAM findings name it in `scope`'s stack. */
export function findingResource(scope: IConstruct, resource: string): string {
  return flattenCfnReference(Stack.of(scope).resolve(resource));
}

/** `AwsSolutions-IAM4[Policy::…]` for an AWS managed policy attached in `scope`'s stack. */
export function managedPolicyFinding(scope: IConstruct, managedPolicyArn: string): string {
  return `AwsSolutions-IAM4[Policy::${findingResource(scope, managedPolicyArn)}]`;
}

/** `AwsSolutions-IAM5[Resource::…]` for a wildcard resource granted in `scope`'s stack. */
export function wildcardResourceFinding(scope: IConstruct, resource: string): string {
  return `AwsSolutions-IAM5[Resource::${findingResource(scope, resource)}]`;
}
