// Synthesizes the CDK app in-process, exactly as bin/app.ts builds it under cdk.json's context (its
// feature flags included), and reads the templates back in the shapes the infra tests ask about:
// functions by name, the IAM statements of each role.

import { readFileSync } from 'node:fs';
import { App, type Environment, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { type FunctionName, serviceName } from '../../lambdas/definitions/resources.ts';
import { readConfig } from '../../lib/config.ts';
import { buildDialgate, type Dialgate } from '../../lib/dialgate-app.ts';

/** cdk.json's context: the feature flags and settings the CDK CLI gives the app. */
const CDK_JSON_CONTEXT = (
  JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
    context: Record<string, unknown>;
  }
).context;

export interface Synthesized {
  app: App;
  dialgate: Dialgate;
  stateful: Template;
  stateless: Template;
}

export interface SynthOptions {
  /** Bundle the functions with esbuild (as `cdk synth` does); off by default. */
  bundle?: boolean;
  /**
   * The account and region, as the CDK CLI passes them (CDK_DEFAULT_ACCOUNT/REGION); default none:
   * environment-agnostic stacks, whatever this process's environment holds.
   */
  env?: Environment;
  /** Where the cloud assembly goes; a temporary directory by default. */
  outdir?: string;
  /** Run the Control Tower controls at synth (default), as bin/app.ts does. */
  controlTower?: boolean;
  /** Changes the app after it is built and before it is synthesized (to show what a change would do). */
  beforeSynth?: (dialgate: Dialgate) => void;
}

/**
 * Builds and synthesizes the app with the given context. Without `bundle`, functions are not
 * bundled (CDK's own switch for that), which keeps tests that look only at the templates fast.
 */
export function synthDialgate(
  context: Record<string, unknown> = {},
  options: SynthOptions = {},
): Synthesized {
  const app = new App({
    ...(options.outdir ? { outdir: options.outdir } : {}),
    context: {
      ...CDK_JSON_CONTEXT,
      // Bundled: say where each asset is (as the CLI does), so tests can load the bundles.
      ...(options.bundle ? { 'aws:cdk:enable-asset-metadata': true } : { 'aws:cdk:bundling-stacks': [] }),
      ...context,
    },
  });
  return throughConsole(() => {
    // Assets are bundled here.
    const dialgate = buildDialgate(app, readConfig(app.node), options.env ?? {}, {
      controlTower: options.controlTower ?? true,
    });
    options.beforeSynth?.(dialgate);
    return {
      app,
      dialgate,
      stateful: Template.fromStack(dialgate.stateful),
      stateless: Template.fromStack(dialgate.stateless),
    };
  });
}

/**
 * Runs `fn` with process.stderr written through console.error: CDK's "Bundling asset …" lines go to
 * stderr directly, where vitest cannot hold them back for passing tests as it does console output.
 */
function throughConsole<T>(fn: () => T): T {
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    console.error(String(chunk).trimEnd());
    return true;
  }) as typeof process.stderr.write;
  try {
    return fn();
  } finally {
    process.stderr.write = write;
  }
}

/** A piece of template JSON: untyped by nature; the tests assert the shapes they rely on. */
// biome-ignore lint/suspicious/noExplicitAny: CloudFormation JSON, read and asserted by the tests
export type Cfn = any;
export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

/** The template's Lambda functions, keyed by dialgate name (their POWERTOOLS_SERVICE_NAME). */
export function functionsOf(template: Template): Record<string, { logicalId: string; props: Cfn }> {
  const found: Record<string, { logicalId: string; props: Cfn }> = {};
  const names = [
    'api',
    'dispatcher',
    'webhook',
    'reconciler',
    'events',
    'delivery',
  ] as const satisfies readonly FunctionName[];
  for (const [logicalId, resource] of Object.entries(template.findResources('AWS::Lambda::Function'))) {
    const service = resource.Properties?.Environment?.Variables?.POWERTOOLS_SERVICE_NAME;
    const name = names.find((n) => serviceName(n) === service) ?? `unknown:${logicalId}`;
    found[name] = { logicalId, props: resource.Properties };
  }
  return found;
}

/** Every statement that applies to a role: its inline policies and every AWS::IAM::Policy attached. */
export function statementsOfRole(template: Template, roleLogicalId: string): Statement[] {
  const role = template.findResources('AWS::IAM::Role')[roleLogicalId];
  if (!role) throw new Error(`no role ${roleLogicalId}`);
  const inline = (role.Properties.Policies ?? []).flatMap((p: Cfn) => p.PolicyDocument.Statement);
  const attached = Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles ?? []).some((r: Cfn) => r.Ref === roleLogicalId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
  return [...inline, ...attached];
}

export const actionsOf = (statements: Statement[]): string[] =>
  [...new Set(statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])))].sort();

/** cdk-nag's AwsSolutions findings over the whole app, as `ruleName at path` lines. */
export function nagFindings(app: App, options: { ignoreAcknowledgements?: boolean } = {}): string[] {
  const pack = new AwsSolutionsChecks();
  if (options.ignoreAcknowledgements) {
    // cdk-nag 3 has no public switch for this; its private check is replaced to see raw findings.
    (pack as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
  }
  return pack
    .validateScope(app)
    .violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`));
}

export interface Acknowledgement {
  /** Whose rule: `ControlTower`, or `Annotation` for cdk-nag's (its ids carry no plugin prefix). */
  plugin: string;
  /** The rule id without the plugin prefix: `AwsSolutions-IAM5[Resource::*]`, `CT.LAMBDA.PR.3`. */
  id: string;
  reason: string;
  path: string;
}

/** Every acknowledgement recorded anywhere in the tree: plugin, rule id, reason, and where. */
export function acknowledgementsIn(root: IConstruct): Acknowledgement[] {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([qualified, reason]) => {
          const at = qualified.indexOf('::'); // the first: cdk-nag's own ids hold `::` too
          return {
            plugin: qualified.slice(0, at),
            id: qualified.slice(at + 2),
            reason,
            path: construct.node.path,
          };
        }),
      ),
  );
}

/** cdk-nag's acknowledgements (CDK records them as annotation acknowledgements). */
export const nagAcknowledgementsIn = (root: IConstruct): Acknowledgement[] =>
  acknowledgementsIn(root).filter((a) => a.plugin === 'Annotation');

/** What CDK's validation report (cdk.out/validation-report.json) says of one plugin. */
export interface PluginReport {
  pluginName: string;
  conclusion: 'success' | 'failure';
  violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[];
  suppressedViolations: {
    ruleName: string;
    acknowledgedId: string;
    acknowledgedAt: string;
    reason: string;
    violatingConstructs: { constructPath: string }[];
  }[];
}

/** The report CDK wrote when it synthesized `app` (after synthDialgate, the app is synthesized). */
export function validationReport(app: App, pluginName: string): PluginReport {
  const report = JSON.parse(readFileSync(`${app.synth().directory}/validation-report.json`, 'utf8')) as {
    pluginReports: PluginReport[];
  };
  const found = report.pluginReports.find((r) => r.pluginName === pluginName);
  if (!found) throw new Error(`no ${pluginName} report in the validation report`);
  return found;
}
