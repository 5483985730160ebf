// The AWS Control Tower proactive controls (cfn-guard) over the whole app, in both stages and both API
// authentication modes: no finding left, every acknowledgement with its reason and still needed, and
// the controls the app meets (encrypted logs, KMS grants, the dead-letter queue, the console bucket's
// versions) met rather than acknowledged.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { CONTROL_TOWER, RULES_DIR } from '../../lib/control-tower.ts';
import { acknowledgementsIn, type Cfn, synthDialgate, validationReport } from './synth.ts';

/** Each control the app acknowledges, and why it is acceptable (the reasons are in the code). */
const EXPECTED = {
  common: [
    'CT.LAMBDA.PR.2', // the webhook's public Function URL; API Gateway's SourceArn-scoped permissions
    'CT.LAMBDA.PR.3', // no VPC: nothing private is reached
    'CT.LAMBDA.PR.5', // the webhook's Function URL has no IAM auth: Twilio cannot sign SigV4
  ],
  /** Outside prod, logs are kept a month. */
  shortLogs: ['CT.CLOUDWATCH.PR.2'],
  /** The web console (API-key mode only): its bucket of static files and its distribution. */
  console: [
    'CT.S3.PR.2', // no server access logs
    'CT.S3.PR.4', // no event notifications
    'CT.S3.PR.9', // no object lock (deploys prune)
    'CT.S3.PR.10', // SSE-S3 for public files
    'CT.CLOUDFRONT.PR.4', // no origin failover
    'CT.CLOUDFRONT.PR.5', // no CloudFront access logs
    'CT.CLOUDFRONT.PR.6', // the default certificate…
    'CT.CLOUDFRONT.PR.7',
    'CT.CLOUDFRONT.PR.9',
  ],
};

/** Controls the app meets; an acknowledgement of any of them would hide a regression. */
const MET = ['CT.CLOUDWATCH.PR.3', 'CT.KMS.PR.3', 'CT.SQS.PR.1', 'CT.S3.PR.6', 'CT.S3.PR.11'];

const CLI_ENV = { account: '123456789012', region: 'eu-central-1' };
const PROD_API_KEY_LIMITS = {
  stage: 'prod',
  apiAuth: 'apiKey',
  twilioFromNumber: '+14155550100',
  alarmEmail: 'ops@example.com',
  accountMaxConcurrentCalls: '5',
  accountCallsPerSecond: '1',
};

const controlAcknowledgements = (app: Parameters<typeof acknowledgementsIn>[0]) =>
  acknowledgementsIn(app).filter((a) => a.plugin === CONTROL_TOWER);

describe.each([
  [
    'dev, IAM-authenticated API (the defaults)',
    { stage: 'dev' },
    {},
    [...EXPECTED.common, ...EXPECTED.shortLogs],
  ],
  [
    'dev, API key and the console',
    { stage: 'dev', apiAuth: 'apiKey' },
    {},
    [...EXPECTED.common, ...EXPECTED.shortLogs, ...EXPECTED.console],
  ],
  [
    'prod, API key and the console, account limits, in an account and region',
    PROD_API_KEY_LIMITS,
    CLI_ENV,
    [...EXPECTED.common, ...EXPECTED.console],
  ],
])('Control Tower proactive controls, %s', (_name, context, env, expected) => {
  // Synthesizing runs the controls (bin/app.ts registers them as a validation plugin): an
  // unacknowledged finding would throw here already.
  const { app, stateless } = synthDialgate(context, { env });
  const report = validationReport(app, CONTROL_TOWER);

  it('leaves no finding unacknowledged', () => {
    expect(report.violations).toEqual([]);
    expect(report.conclusion).toBe('success');
  });

  it('acknowledges only the expected controls, each with a reason', () => {
    const acknowledged = controlAcknowledgements(app);
    expect([...new Set(acknowledged.map((a) => a.id))].sort()).toEqual([...expected].sort());
    for (const a of acknowledged) expect(a.reason.length, `${a.id} at ${a.path}`).toBeGreaterThan(40);
    for (const control of MET) expect(acknowledged.map((a) => a.id)).not.toContain(control);
  });

  it('acknowledges no control that does not fire (each one is still needed)', () => {
    for (const { id, path } of controlAcknowledgements(app)) {
      expect(
        report.suppressedViolations.some(
          (v) => v.acknowledgedId === `${CONTROL_TOWER}::${id}` && v.acknowledgedAt === path,
        ),
        `${id} acknowledged at ${path} but no such finding`,
      ).toBe(true);
    }
  });

  it('encrypts every log group with the stack’s logs key, which only CloudWatch Logs here may use', () => {
    const keys = stateless.findResources('AWS::KMS::Key');
    const logGroups = Object.values(stateless.findResources('AWS::Logs::LogGroup'));
    expect(logGroups.length).toBeGreaterThanOrEqual(5);
    const keyIds = new Set(logGroups.map((g) => g.Properties.KmsKeyId?.['Fn::GetAtt']?.[0]));
    expect(keyIds.size).toBe(1);
    const [logsKeyId] = [...keyIds];
    const logsKey = keys[logsKeyId];
    expect(logsKey, 'the log groups’ key is in the stack').toBeDefined();
    expect(logsKey!.Properties.EnableKeyRotation).toBe(true);
    const logsStatement = logsKey!.Properties.KeyPolicy.Statement.find((s: Cfn) =>
      JSON.stringify(s.Principal).includes('logs.'),
    );
    expect(JSON.stringify(logsStatement.Condition)).toContain('kms:EncryptionContext:aws:logs:arn');
    // Kept as long as the logs it encrypts.
    for (const g of logGroups) expect(logsKey!.DeletionPolicy).toBe(g.DeletionPolicy);
  });

  it('lets no one create grants on its keys except AWS services for AWS resources', () => {
    for (const [id, key] of Object.entries(stateless.findResources('AWS::KMS::Key'))) {
      expect(key.Properties.KeyPolicy.Statement, id).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Action: 'kms:CreateGrant',
          Condition: {
            BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' },
          },
        }),
      );
    }
  });
});

describe('Control Tower proactive controls, a finding nobody acknowledged', () => {
  it('fails the synth with the report, naming the control and the resource', () => {
    // What an unencrypted log group added by hand would do; synthesized as `cdk synth` would.
    const attempt = () =>
      synthDialgate(
        { stage: 'dev' },
        { beforeSynth: ({ stateless }) => void new LogGroup(stateless, 'Stray') },
      );
    expect(attempt).toThrow(/CT\.CLOUDWATCH\.PR\.3[\s\S]*dialgate-dev-stateless\/Stray/);
  });
});

describe('Control Tower proactive controls, the rules run per template', () => {
  // ControlTowerChecks runs against a template only the rule files that name one of its resource
  // types. That finds what every rule would find if each rule looks at resources only by a type it
  // names (any other rule skips): checked here on the rule files themselves, since running all 237
  // against the templates takes a minute of CPU.
  it('has every rule select resources only by the types it names', () => {
    const files = readdirSync(RULES_DIR, { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.guard'),
    );
    expect(files.length).toBeGreaterThan(200);
    const problems = files.flatMap((file) => selectionProblems(file));
    expect(problems).toEqual([]);
  });
});

/** What, in one rule file, could pick a resource by anything but a resource type it names. */
function selectionProblems(file: string): string[] {
  const text = readFileSync(join(RULES_DIR, file), 'utf8')
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n');
  const types = new Set(
    [...text.matchAll(/^let (\w+)\s*=\s*["'](AWS::\w+::\w+)["']\s*$/gm)].map((m) => m[1]!),
  );
  const problems: string[] = [];
  if (types.size === 0) problems.push(`${file}: names no resource type`);
  // `let … = Resources.*[ … ]` and `Resources[ … ]`: the filters that pick resources out of a template.
  for (const [, filter = ''] of text.matchAll(/=\s*(?:%\w+\.)?Resources(?:\.\*)?\[([^\]]*)\]/g)) {
    const selection = filter.trim();
    if (/^keys == %\w+$/.test(selection)) continue; // a reference looked up by logical id, then by type
    if (!/^Type == %\w+(?:\s+or\s+Type == %\w+)*$/.test(selection)) problems.push(`${file}: [${selection}]`);
    for (const [, name] of selection.matchAll(/%(\w+)/g))
      if (!types.has(name!)) problems.push(`${file}: %${name}`);
  }
  // CloudFormation hook documents are read by type too (`%INPUT_DOCUMENT.%TYPE.resourceProperties`).
  for (const [, name] of text.matchAll(/is_cfn_hook\(%INPUT_DOCUMENT, %(\w+)\)/g))
    if (!types.has(name!)) problems.push(`${file}: hook %${name}`);
  return problems;
}
