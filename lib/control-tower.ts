// The AWS Control Tower proactive controls (the cfn-guard rules @cdklabs/cdk-validator-cfnguard ships),
// run over the synthesized templates as a CDK validation plugin beside cdk-nag, offline.
//
// A finding is named by its control id (`CT.LAMBDA.PR.3`, as Control Tower's documentation names it)
// and acknowledged where it is accepted, with its reason, through the same mechanism as cdk-nag's:
// `acknowledgeControl(construct, 'CT.LAMBDA.PR.3', reason)`. CDK drops an acknowledged finding from
// the report when the violating resource is that construct or lies under it; any other finding fails
// the synth. (The Control Tower rules do not read cfn-guard's `Metadata.guard.SuppressedRules`: that
// convention is implemented by each rule, and these rules do not implement it.)

import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import {
  type IPolicyValidationContext,
  type IPolicyValidationPlugin,
  type PolicyValidationPluginReport,
  type PolicyViolation,
  Validations,
} from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** The plugin's name, and so the prefix of its acknowledgement ids (`ControlTower::CT.SQS.PR.1`). */
export const CONTROL_TOWER = 'ControlTower';

/** Acknowledges a Control Tower control at `scope` and everything under it, with the reason. */
export function acknowledgeControl(scope: IConstruct, control: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `${CONTROL_TOWER}::${control}`, reason });
}

/** The Control Tower rules the package ships, one `.guard` file per control. */
export const RULES_DIR = join(
  dirname(createRequire(import.meta.url).resolve('@cdklabs/cdk-validator-cfnguard/package.json')),
  'rules/control-tower/cfn-guard',
);

interface RuleFile {
  path: string;
  /** The resource types the rule selects; empty when none is spelled out (then it always runs). */
  types: string[];
}

/** Every rule file with the resource types it names (`let … = "AWS::S3::Bucket"`). */
function ruleFiles(): RuleFile[] {
  return readdirSync(RULES_DIR, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.guard'))
    .sort()
    .map((file) => {
      const path = join(RULES_DIR, file);
      const types = [...readFileSync(path, 'utf8').matchAll(/["'](AWS::\w+::\w+)["']/g)].map((m) => m[1]!);
      return { path, types: [...new Set(types)] };
    });
}

/** The resource types a synthesized template holds. */
function resourceTypesOf(templatePath: string): Set<string> {
  const template = JSON.parse(readFileSync(templatePath, 'utf8')) as {
    Resources?: Record<string, { Type: string }>;
  };
  return new Set(Object.values(template.Resources ?? {}).map((resource) => resource.Type));
}

/** `CT.SQS.PR.1` from the rule's message (`[CT.SQS.PR.1]: Require …`); the guard rule name otherwise. */
function controlIdOf(violation: PolicyViolation): string {
  return /^\[(CT\.[A-Z0-9]+\.PR\.\d+)\]/.exec(violation.description)?.[1] ?? violation.ruleName;
}

/**
 * The Control Tower proactive controls as a validation plugin. Each template is checked against the
 * rules for the resource types it holds: cfn-guard reads the template once per rule file, so the
 * 237 files against every template would cost many seconds for rules that can only skip.
 */
export class ControlTowerChecks implements IPolicyValidationPlugin {
  readonly name = CONTROL_TOWER;
  readonly version: string | undefined;
  private readonly rules = ruleFiles();

  constructor() {
    this.version = new CfnGuardValidator({ controlTowerRulesEnabled: false }).version;
  }

  validate(context: IPolicyValidationContext): PolicyValidationPluginReport {
    const violations: PolicyViolation[] = [];
    for (const templatePath of context.templatePaths) {
      const types = resourceTypesOf(templatePath);
      const rules = this.rules
        .filter((rule) => rule.types.length === 0 || rule.types.some((t) => types.has(t)))
        .map((rule) => rule.path);
      if (rules.length === 0) continue;
      const guard = new CfnGuardValidator({
        controlTowerRulesEnabled: false,
        rules,
        maxBuffer: 256 * 1024 * 1024, // a template failing many rules reports in tens of MB of JSON
      });
      const report = guard.validate({ ...context, templatePaths: [templatePath] });
      for (const violation of report.violations) {
        violations.push({
          ...violation,
          ruleName: controlIdOf(violation),
          // Errors, as Control Tower treats a failed proactive control: the deployment is refused.
          severity: 'error',
          ruleMetadata: { ...violation.ruleMetadata, guardRule: violation.ruleName },
        });
      }
    }
    return { success: violations.length === 0, violations };
  }
}
