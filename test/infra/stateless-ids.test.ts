// The stateless stack keeps the identity of what is costly to replace, though nothing in it holds
// data: a new REST API, API key, Function URL or console distribution is a new address or key for
// every client; a new alarm, topic or log group loses its history, subscriptions or logs; a new
// stream mapping reads a day of events again. CloudFormation replaces a resource whose logical id
// changes, and a refactor of lib/ (a resource moved into a construct of its own puts that
// construct's id into its logical id), a new feature flag in cdk.json or a CDK upgrade can change
// one silently. The expected ids are a small fixture (stateless-resources.json, with the reason each
// type is pinned), not a snapshot; see stateful-ids.test.ts for the stateful stack.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type Cfn, synthDialgate } from './synth.ts';

interface Expected {
  stackName: string;
  /** Each pinned resource type, with what replacing one would cost. */
  pinnedTypes: Record<string, string>;
  /** Logical id → type, in every variant below. */
  resources: Record<string, string>;
  /** The variants checked, with the pinned resources only they have (ids holding the stage, API-key mode's). */
  variants: { name: string; context: Record<string, string>; resources: Record<string, string> }[];
}
const expected = JSON.parse(
  readFileSync(new URL('./stateless-resources.json', import.meta.url), 'utf8'),
) as Expected;

describe.each(expected.variants)('stateless stack ($name)', (variant) => {
  // Logical ids do not depend on the Control Tower controls (a validation plugin that only reads the
  // templates), so they are left out to keep this synth cheap.
  const { dialgate, stateless } = synthDialgate(variant.context, { controlTower: false });
  const resources: Record<string, Cfn> = stateless.toJSON().Resources;

  it('keeps its stack name', () => {
    expect(dialgate.stateless.stackName).toBe(expected.stackName.replace('{stage}', variant.context.stage!));
  });

  it('keeps the logical id of every resource of a pinned type', () => {
    const actual = Object.fromEntries(
      Object.entries(resources)
        .filter(([, resource]) => resource.Type in expected.pinnedTypes)
        .map(([id, resource]) => [id, resource.Type]),
    );
    // A missing id is a resource CloudFormation would replace; an extra one is a resource of a
    // pinned type not yet in the fixture (pin it in the fixture).
    expect(actual).toEqual({ ...expected.resources, ...variant.resources });
  });
});
