// cdk-nag's AwsSolutions checks over the whole app, in both API authentication modes: no finding
// left unacknowledged, every acknowledgement with its reason, and none that is not needed.

import { describe, expect, it } from 'vitest';
import { nagAcknowledgementsIn, nagFindings, synthDialgate } from './synth.ts';

/** Each acknowledgement the app makes, and why it is acceptable (the reasons are in the code). */
const EXPECTED_ACKNOWLEDGEMENTS = {
  common: [
    'AwsSolutions-APIG3', // no WAF on an authenticated, throttled, validated API
    'AwsSolutions-COG4', // IAM or API key, not Cognito
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
    'AwsSolutions-IAM5[Resource::*]', // X-Ray only, once per function role
    'AwsSolutions-APIG4', // GET /openapi.json is public; in API-key mode, also every method's API key
  ],
  apiKey: [],
  /** The web console (API-key mode only): CloudFront + a private bucket, and CDK's own file-copy function. */
  console: [
    'AwsSolutions-CFR1', // no geo restriction: operators anywhere
    'AwsSolutions-CFR2', // no WAF, as for the API
    'AwsSolutions-CFR3', // no CloudFront access logs for a few static files
    'AwsSolutions-CFR4', // the default cloudfront.net certificate
    'AwsSolutions-S1', // no server access logs on a bucket of static files
    'AwsSolutions-L1', // BucketDeployment's runtime is CDK's choice
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    'AwsSolutions-IAM5[Action::s3:Abort*]',
    'AwsSolutions-IAM5[Action::s3:DeleteObject*]',
    'AwsSolutions-IAM5[Action::s3:GetBucket*]',
    'AwsSolutions-IAM5[Action::s3:GetObject*]',
    'AwsSolutions-IAM5[Action::s3:List*]',
    'AwsSolutions-IAM5[Resource::<ConsoleFiles2D43986C.Arn>/*]',
    'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]',
  ],
};

const API_KEY_PROD = {
  apiAuth: 'apiKey',
  stage: 'prod',
  alarmEmail: 'ops@example.com',
  twimlUrl: 'https://example.com/twiml',
};
const API_KEY_ACKNOWLEDGEMENTS = [
  ...EXPECTED_ACKNOWLEDGEMENTS.common,
  ...EXPECTED_ACKNOWLEDGEMENTS.apiKey,
  ...EXPECTED_ACKNOWLEDGEMENTS.console,
];
/** As the CDK CLI synthesizes for a deploy: the account and region are values, not pseudo parameters. */
const CLI_ENV = { account: '123456789012', region: 'eu-central-1' };

describe.each([
  ['IAM-authenticated API (default)', {}, {}, EXPECTED_ACKNOWLEDGEMENTS.common],
  ['API key, production, alarm e-mail', API_KEY_PROD, {}, API_KEY_ACKNOWLEDGEMENTS],
  [
    'API key, production, in an account and region (the asset bucket is named by them)',
    API_KEY_PROD,
    CLI_ENV,
    // With the region known, the asset bucket's ARN is spelled out whole: account, region and (with
    // cdk.json's partition-literals flag) the partition.
    API_KEY_ACKNOWLEDGEMENTS.map((id) =>
      id.replace(
        'arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*',
        `arn:aws:s3:::cdk-hnb659fds-assets-${CLI_ENV.account}-${CLI_ENV.region}/*`,
      ),
    ),
  ],
])('cdk-nag AwsSolutions, %s', (_name, context, env, expected) => {
  // Synthesizing runs the checks too (bin/app.ts registers them as a validation plugin): an
  // unacknowledged finding would throw here already.
  const { app } = synthDialgate(context, { env });

  it('leaves no finding unacknowledged', () => {
    expect(nagFindings(app)).toEqual([]);
  });

  it('acknowledges only the expected rules, each with a reason', () => {
    const acknowledged = nagAcknowledgementsIn(app);
    expect([...new Set(acknowledged.map((a) => a.id))].sort()).toEqual([...expected].sort());
    for (const a of acknowledged) expect(a.reason.length, `${a.id} at ${a.path}`).toBeGreaterThan(40);
  });

  it('acknowledges no rule that does not fire (each one is still needed)', () => {
    const raw = nagFindings(app, { ignoreAcknowledgements: true });
    for (const { id, path } of nagAcknowledgementsIn(app)) {
      expect(
        raw.some((finding) => finding === `${id} at ${path}` || finding.startsWith(`${id} at ${path}/`)),
        `${id} acknowledged at ${path} but no such finding`,
      ).toBe(true);
    }
  });
});
