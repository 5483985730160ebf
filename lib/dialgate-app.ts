// The assembly of the CDK app's two stacks. bin/app.ts runs it; the infra tests build the same app
// in-process from the same function.

import { Annotations, type App, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { type DialgateConfig, PLACEHOLDER_FROM_NUMBER } from './config.ts';
import { StatefulStack } from './stateful-stack.ts';
import { StatelessStack } from './stateless-stack.ts';

const CROSS_STACK_REFERENCES = '@aws-cdk/core:defaultCrossStackReferences';

export interface Dialgate {
  readonly stateful: StatefulStack;
  readonly stateless: StatelessStack;
}

/** Adds dialgate's two stacks to `app`, with the cdk-nag AwsSolutions checks over all of it. */
export function buildDialgate(app: App, config: DialgateConfig): Dialgate {
  const production = config.stage === 'prod';
  // Strong references (CloudFormation exports): the stateful stack cannot drop or change an export
  // the stateless stack still imports. Said explicitly, so a future default cannot change it.
  if (app.node.tryGetContext(CROSS_STACK_REFERENCES) === undefined)
    app.node.setContext(CROSS_STACK_REFERENCES, 'strong');
  // Unset outside a CDK CLI run with credentials: the stacks are then environment-agnostic, which
  // is what an offline `cdk synth` needs.
  const env = { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION };

  const stateful = new StatefulStack(app, `dialgate-${config.stage}-stateful`, {
    env,
    description: `dialgate ${config.stage}: table and work queues`,
    retainData: production,
  });
  const stateless = new StatelessStack(app, `dialgate-${config.stage}-stateless`, {
    env,
    description: `dialgate ${config.stage}: functions, API, webhook, schedule, alarms`,
    config,
    retainLogs: production,
    table: stateful.table,
    workQueue: stateful.workQueue,
    deadLetterQueue: stateful.deadLetterQueue,
  });

  if (config.twilioFromNumber === PLACEHOLDER_FROM_NUMBER) {
    Annotations.of(stateless).addWarningV2(
      'dialgate:placeholder-from-number',
      `twilioFromNumber is Twilio's test number ${PLACEHOLDER_FROM_NUMBER}: no real call will be placed. ` +
        'Deploy with -c twilioFromNumber=+1… (a number of your Twilio account).',
    );
  }

  Tags.of(app).add('app', 'dialgate');
  Tags.of(app).add('stage', config.stage);
  // Runs during synthesis: an unacknowledged error finding fails `cdk synth` (report in cdk.out).
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { stateful, stateless };
}
