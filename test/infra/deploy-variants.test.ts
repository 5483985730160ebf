// The README's deploy section, held to the app: every variant its table documents synthesizes as the
// CDK CLI runs it (an account and a region set, as `cdk deploy` always has them) in three regions and
// environment-agnostic, with cdk-nag's checks (and, environment-agnostic, the Control Tower controls);
// every context key it names is one the app reads, and every key the app reads is in its table; every
// output it lists is in the templates, and every output of the templates is listed. Functions are not bundled here (CI's `cdk synth` step and
// stacks.test.ts bundle them): bundling does not depend on the variant or the region.

import { App, type Environment, Token } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it, vi } from 'vitest';
import { type DialgateConfig, readConfig } from '../../lib/config.ts';
import {
  contextKeysNamed,
  contextTableKeys,
  type DeployVariant,
  deploySection,
  deployVariants,
  documentedOutputs,
  readReadme,
} from './readme-deploy.ts';
import { type Synthesized, synthDialgate } from './synth.ts';

const README = readReadme();
const VARIANTS = deployVariants(README);

const ACCOUNT = '123456789012';
/** The environment the CLI passes, in three regions, and none at all (an app run outside the CLI). */
const ENVIRONMENTS: { label: string; env: Environment }[] = [
  { label: 'environment-agnostic', env: {} },
  ...['us-east-1', 'eu-central-1', 'ap-southeast-2'].map((region) => ({
    label: region,
    env: { account: ACCOUNT, region },
  })),
];

/** One synth per variant and environment, shared by the tests that read its templates. */
const synthesized = new Map<string, Synthesized>();
function synthOnce(variant: DeployVariant, environment: (typeof ENVIRONMENTS)[number]): Synthesized {
  const key = `${variant.name} @ ${environment.label}`;
  let found = synthesized.get(key);
  if (!found) {
    // Synthesizing runs cdk-nag and the Control Tower controls (validation plugins): an unacknowledged
    // finding throws here. The controls, seconds of CPU each, run once per variant (environment-
    // agnostic) here; CI's `cdk synth` of each variant runs them with an account and a region, and
    // test/infra/control-tower.test.ts in both kinds of environment.
    found = synthDialgate(variant.context, {
      env: environment.env,
      controlTower: environment.env.region === undefined,
    });
    synthesized.set(key, found);
  }
  return found;
}

const outputsOf = (template: Template): string[] =>
  // CDK's own cross-stack exports are plumbing between the two stacks, not outputs for people.
  Object.keys(template.toJSON().Outputs ?? {}).filter((name) => !name.startsWith('ExportsOutput'));

describe('the README documents deploy variants', () => {
  it('has a table of them, the main deploy command among them', () => {
    expect(VARIANTS.length).toBeGreaterThanOrEqual(5);
    const command = /```sh\n(npx cdk deploy --all[^`]*)```/.exec(deploySection(README))?.[1];
    expect(command, 'the deploy command').toBeDefined();
    const commandContext = Object.fromEntries(
      [...command!.matchAll(/-c\s+(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]),
    );
    expect(VARIANTS.map((v) => v.context)).toContainEqual(commandContext);
  });
});

describe.each(VARIANTS.map((variant) => [variant.name, variant] as const))(
  'deploy variant: %s',
  (_, variant) => {
    it.each(ENVIRONMENTS.map((e) => [e.label, e] as const))(
      'synthesizes %s, every cdk-nag (and Control Tower) finding acknowledged',
      (_label, environment) => {
        const { app, dialgate } = synthOnce(variant, environment);
        const assembly = app.synth();
        for (const stack of [dialgate.stateful, dialgate.stateless]) {
          // What `cdk deploy` reads to pick the target: the CLI's account and region, or none.
          const artifact = assembly.getStackArtifact(stack.artifactId);
          if (environment.env.region) {
            expect(artifact.environment, stack.stackName).toMatchObject({
              account: ACCOUNT,
              region: environment.env.region,
            });
            expect(stack.region).toBe(environment.env.region);
          } else {
            expect(artifact.environment.region, stack.stackName).toBe('unknown-region');
            expect(Token.isUnresolved(stack.region)).toBe(true);
          }
          expect(stack.stackName.startsWith(`dialgate-${variant.context.stage ?? 'dev'}-`)).toBe(true);
        }
      },
    );
  },
);

/** The context keys readConfig asks the app for: what `-c` can set. */
function contextKeysRead(): string[] {
  const app = new App();
  const spy = vi.spyOn(app.node, 'tryGetContext');
  readConfig(app.node);
  return [...new Set(spy.mock.calls.map(([key]) => key))];
}

describe("the README's deploy section against the app", () => {
  const read = contextKeysRead();
  const section = deploySection(README);

  it('names only context keys the app reads (commands, variants and the context table)', () => {
    const named = [...new Set([...contextKeysNamed(section), ...contextTableKeys(README)])];
    expect(
      named.filter((key) => !read.includes(key)),
      'named in the README, never read',
    ).toEqual([]);
  });

  it('lists every context key the app reads in its context table', () => {
    const listed = contextTableKeys(README);
    expect(
      read.filter((key) => !listed.includes(key)),
      'read by the app, not in the table',
    ).toEqual([]);
    expect(new Set(listed).size, 'each key once').toBe(listed.length);
  });

  it("gives each key's default as the app has it", () => {
    const defaults = readConfig(new App().node) as unknown as Record<string, unknown>;
    const rows = section
      .split('\n')
      .filter((line) => /^\| `\w+` \|/.test(line))
      .map((line) => line.split('|').map((cell) => cell.trim()));
    for (const [, keyCell = '', defaultCell = ''] of rows) {
      const key = keyCell.replaceAll('`', '');
      if (!(key in defaults)) continue;
      const value = defaults[key as keyof DialgateConfig];
      const literal = /^`([^`<]+)`/.exec(defaultCell)?.[1];
      if (/^none\b/.test(defaultCell)) {
        expect(value === undefined || (Array.isArray(value) && value.length === 0), key).toBe(true);
      } else if (literal !== undefined) {
        expect(String(value), key).toBe(literal);
      }
    }
  });

  it('lists outputs the templates have, each only in the variants it says', () => {
    const documented = documentedOutputs(README);
    expect(documented.length).toBeGreaterThan(0);
    for (const variant of VARIANTS) {
      const { stateful, stateless } = synthOnce(variant, ENVIRONMENTS[0]!);
      const have = { stateful: outputsOf(stateful), stateless: outputsOf(stateless) };
      for (const output of documented) {
        const expected = output.onlyWith
          ? (variant.context[output.onlyWith.key] ?? '') === output.onlyWith.value
          : true;
        expect(
          have[output.stack].includes(output.name),
          `${output.stack} ${output.name} in "${variant.name}"`,
        ).toBe(expected);
      }
      for (const stack of ['stateful', 'stateless'] as const) {
        const listed = documented.filter((o) => o.stack === stack).map((o) => o.name);
        expect(
          have[stack].filter((name) => !listed.includes(name)),
          `${stack} outputs of "${variant.name}" the README does not list`,
        ).toEqual([]);
      }
    }
  });
});
