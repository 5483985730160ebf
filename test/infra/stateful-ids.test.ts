// The stateful stack keeps its identity: CloudFormation replaces a resource whose logical id, type or
// key schema changes, and a replaced table is an empty table. The expected values are a small fixture
// (stateful-resources.json), not a snapshot: a refactor of lib/, a new feature flag in cdk.json or a
// CDK upgrade that would rename or re-key any of these fails here before it reaches a deployment.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type Cfn, synthDialgate } from './synth.ts';

interface Expected {
  stackName: string;
  resources: Record<string, string>;
  table: {
    KeySchema: Cfn[];
    keyAttributeTypes: Record<string, string>;
    StreamSpecification: Cfn;
    GlobalSecondaryIndexes: Cfn[];
  };
  queues: string[];
}
const expected = JSON.parse(
  readFileSync(new URL('./stateful-resources.json', import.meta.url), 'utf8'),
) as Expected;

const byName = (a: { IndexName: string }, b: { IndexName: string }) => a.IndexName.localeCompare(b.IndexName);

describe.each(['dev', 'prod'])('stateful stack (stage %s)', (stage) => {
  const { dialgate, stateful } = synthDialgate({ stage });
  const resources: Record<string, Cfn> = stateful.toJSON().Resources;

  it('keeps its stack name', () => {
    expect(dialgate.stateful.stackName).toBe(expected.stackName.replace('{stage}', stage));
  });

  it('keeps every logical id and resource type', () => {
    const actual = Object.fromEntries(
      Object.entries(resources)
        .filter(([, resource]) => resource.Type !== 'AWS::CDK::Metadata')
        .map(([id, resource]) => [id, resource.Type]),
    );
    expect(actual).toEqual(expected.resources);
  });

  it("keeps the table's key schema, key attribute types and indexes", () => {
    // Found by type, so a renamed table (reported above) still has its schema checked.
    const tables = Object.values(resources).filter((r) => r.Type === 'AWS::DynamoDB::Table');
    expect(tables).toHaveLength(1);
    const table = tables[0].Properties;
    expect(table.KeySchema).toEqual(expected.table.KeySchema);
    const types = Object.fromEntries(
      table.AttributeDefinitions.map((a: Cfn) => [a.AttributeName, a.AttributeType]),
    );
    expect(types).toEqual(expected.table.keyAttributeTypes);
    // Order does not matter to CloudFormation; contents do (a changed index is rebuilt).
    expect([...table.GlobalSecondaryIndexes].sort(byName)).toEqual(
      [...expected.table.GlobalSecondaryIndexes].sort(byName),
    );
    // The stream the events are derived from: both images of every write.
    expect(table.StreamSpecification).toEqual(expected.table.StreamSpecification);
    // Each of these, once set or changed, replaces the table.
    expect(table.TableName).toBeUndefined();
    expect(table.LocalSecondaryIndexes).toBeUndefined();
  });

  it('keeps the queues generated-name, standard queues', () => {
    for (const id of expected.queues) {
      // Setting a name or FIFO on a deployed queue replaces it (and drops its messages).
      expect(resources[id].Properties.QueueName, id).toBeUndefined();
      expect(resources[id].Properties.FifoQueue, id).toBeUndefined();
    }
  });
});
