// The assembly of the CDK app's two stacks. bin/app.ts runs it; the infra tests build the same app
// in-process from the same function.

import { Annotations, type App, type Environment, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { type DialgateConfig, PLACEHOLDER_FROM_NUMBER } from './config.ts';
import { ControlTowerChecks } from './control-tower.ts';
import { StatefulStack } from './stateful-stack.ts';
import { StatelessStack } from './stateless-stack.ts';

const CROSS_STACK_REFERENCES = '@aws-cdk/core:defaultCrossStackReferences';

export interface Dialgate {
  readonly stateful: StatefulStack;
  readonly stateless: StatelessStack;
}

/**
 * The account and region the CDK CLI hands the app: it sets CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION
 * from the credentials (the region from AWS_REGION or the profile, us-east-1 when none). Both are
 * unset when the app runs outside the CLI, and the account is unset offline: the stacks are then
 * environment-agnostic (their account and region are CloudFormation pseudo parameters).
 */
export function cliEnvironment(vars: NodeJS.ProcessEnv = process.env): Environment {
  return { account: vars.CDK_DEFAULT_ACCOUNT, region: vars.CDK_DEFAULT_REGION };
}

export interface BuildOptions {
  /**
   * Run the AWS Control Tower proactive controls at synth (default). Off only where the same variant
   * is synthesized again in more environments and its controls are checked in the others (the
   * controls take seconds of CPU per synth).
   */
  readonly controlTower?: boolean;
}

/**
 * Adds dialgate's two stacks to `app`, with the cdk-nag AwsSolutions checks and the AWS Control Tower
 * proactive controls over all of it, in the CLI's environment unless `env` says another.
 */
export function buildDialgate(
  app: App,
  config: DialgateConfig,
  env: Environment = cliEnvironment(),
  options: BuildOptions = {},
): Dialgate {
  const production = config.stage === 'prod';
  // Strong references (CloudFormation exports): the stateful stack cannot drop or change an export
  // the stateless stack still imports. Said explicitly, so a future default cannot change it.
  if (app.node.tryGetContext(CROSS_STACK_REFERENCES) === undefined)
    app.node.setContext(CROSS_STACK_REFERENCES, 'strong');

  const stateful = new StatefulStack(app, `dialgate-${config.stage}-stateful`, {
    env,
    description: `dialgate ${config.stage}: table, work queues, event bus and delivery queues`,
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
    eventBus: stateful.eventBus,
    eventsQueue: stateful.eventsQueue,
    eventsDeadLetterQueue: stateful.eventsDeadLetterQueue,
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
  // Run during synthesis: an unacknowledged finding of either fails `cdk synth`, printing the report
  // (also written to cdk.out/validation-report.json).
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  if (options.controlTower ?? true) Validations.of(app).addPlugins(new ControlTowerChecks());
  return { stateful, stateless };
}
