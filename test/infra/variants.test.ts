// The context parameters: defaults, validation at synth time, and what production and the API-key
// mode change in the templates. Functions are not bundled here: only the templates are asked about.

import { App } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { PLACEHOLDER_FROM_NUMBER, readConfig } from '../../lib/config.ts';
import { functionsOf, synthDialgate } from './synth.ts';

const configFrom = (context: Record<string, unknown>) => readConfig(new App({ context }).node);

describe('context', () => {
  it('has defaults for everything', () => {
    expect(configFrom({})).toEqual({
      stage: 'dev',
      defaultConcurrency: 3,
      maxConcurrency: 20,
      maxLeadsPerRun: 100_000,
      twilioFromNumber: PLACEHOLDER_FROM_NUMBER,
      twimlUrl: undefined,
      twilioSecretName: 'dialgate/dev/twilio',
      alarmEmail: undefined,
      apiAuth: 'iam',
      ringTimeoutSeconds: 30,
      callTimeLimitSeconds: 900,
      webhookReservedConcurrency: 50,
      accountMaxConcurrentCalls: undefined,
      accountCallsPerSecond: undefined,
      suppressionCheck: 'on',
      recipientMaxCalls: undefined,
      recipientWindowHours: undefined,
      allowedFromNumbers: [],
      twimlUrlAllowedPrefixes: [],
      maxTwimlBytes: 0,
      defaultCountry: undefined,
      allowedPhoneTypes: [],
      eventsWebhookUrl: undefined,
      eventsWebhookSecretName: 'dialgate/dev/events-webhook',
    });
  });

  it('takes -c values as the CLI passes them (strings), and derives the secret name from the stage', () => {
    const config = configFrom({
      stage: 'prod',
      defaultConcurrency: '5',
      maxConcurrency: '10',
      twilioFromNumber: '+14155550100',
      twimlUrl: 'https://example.com/twiml.xml',
      alarmEmail: 'ops@example.com',
      apiAuth: 'apiKey',
      webhookReservedConcurrency: '',
    });
    expect(config).toMatchObject({
      stage: 'prod',
      defaultConcurrency: 5,
      maxConcurrency: 10,
      twilioFromNumber: '+14155550100',
      twilioSecretName: 'dialgate/prod/twilio',
      apiAuth: 'apiKey',
      webhookReservedConcurrency: 50, // an empty -c value means "not given"
    });
  });

  it('refuses bad values at synth time, naming every one', () => {
    const attempt = () =>
      configFrom({
        stage: 'Prod!',
        twilioFromNumber: '555-0100',
        maxConcurrency: '0',
        apiAuth: 'cognito',
        alarmEmail: 'nobody',
      });
    expect(attempt).toThrow(/-c stage:/);
    expect(attempt).toThrow(/-c twilioFromNumber: .*E\.164/);
    expect(attempt).toThrow(/-c maxConcurrency:/);
    expect(attempt).toThrow(/-c apiAuth:/);
    expect(attempt).toThrow(/-c alarmEmail:/);
  });

  it('reads the phone settings, and refuses caller ids and countries libphonenumber does not know', () => {
    expect(
      configFrom({
        defaultCountry: 'il',
        allowedPhoneTypes: 'mobile,fixed_line_or_mobile',
        allowedFromNumbers: '+97233761234',
      }),
    ).toMatchObject({
      defaultCountry: 'IL',
      allowedPhoneTypes: ['mobile', 'fixed_line_or_mobile'],
      allowedFromNumbers: ['+97233761234'],
    });
    const attempt = () =>
      configFrom({
        twilioFromNumber: '+11234567890', // E.164 in form, but no North American area code starts with 1
        allowedFromNumbers: '+972522345678,+972521234567', // Israel assigns no 052-1 mobiles
        defaultCountry: 'ZZ',
      });
    expect(attempt).toThrow(/-c twilioFromNumber: not a valid number/);
    expect(attempt).toThrow(/-c allowedFromNumbers\[1\]: not a valid number in IL/);
    expect(attempt).toThrow(/-c defaultCountry: "ZZ" is not an ISO 3166 alpha-2 country/);
    expect(() => configFrom({ allowedPhoneTypes: 'mobile,cell' })).toThrow(/-c allowedPhoneTypes:/);
  });

  it('refuses a default concurrency above the maximum', () => {
    expect(() => configFrom({ defaultConcurrency: '8', maxConcurrency: '4' })).toThrow(
      /exceeds -c maxConcurrency/,
    );
  });
});

describe('default (dev) app', () => {
  const { dialgate, stateless } = synthDialgate({});

  it('warns that the from-number is a placeholder', () => {
    Annotations.fromStack(dialgate.stateless).hasWarning('*', Match.stringLikeRegexp('twilioFromNumber'));
  });

  it('does not set TWIML_URL, so the dispatcher uses its inline TwiML', () => {
    expect(functionsOf(stateless).dispatcher!.props.Environment.Variables.TWIML_URL).toBeUndefined();
  });
});

describe('production, API key, alarm e-mail', () => {
  const { dialgate, stateful, stateless } = synthDialgate({
    stage: 'prod',
    apiAuth: 'apiKey',
    alarmEmail: 'ops@example.com',
    twilioFromNumber: '+14155550100',
    twimlUrl: 'https://example.com/twiml.xml',
    defaultConcurrency: '4',
    maxConcurrency: '8',
    defaultCountry: 'IL',
    allowedPhoneTypes: 'mobile,fixed_line_or_mobile',
  });

  it('gives the API, and only the API, the phone settings', () => {
    const functions = functionsOf(stateless);
    expect(functions.api!.props.Environment.Variables).toMatchObject({
      DEFAULT_COUNTRY: 'IL',
      ALLOWED_PHONE_TYPES: 'mobile,fixed_line_or_mobile',
    });
    for (const fn of ['dispatcher', 'webhook', 'reconciler']) {
      expect(functions[fn]!.props.Environment.Variables.DEFAULT_COUNTRY).toBeUndefined();
    }
  });

  it('names the stacks after the stage', () => {
    expect([dialgate.stateful.stackName, dialgate.stateless.stackName]).toEqual([
      'dialgate-prod-stateful',
      'dialgate-prod-stateless',
    ]);
  });

  it('serves the API reference with the console: /openapi.json from the API, the page with inline styles allowed', () => {
    const [distribution] = Object.values(stateless.findResources('AWS::CloudFront::Distribution'));
    const behaviors = distribution!.Properties.DistributionConfig.CacheBehaviors as { PathPattern: string }[];
    expect(behaviors.map((b) => b.PathPattern).sort()).toEqual([
      '/openapi.json',
      '/reference.html',
      '/runs*',
    ]);
    const policies = Object.values(stateless.findResources('AWS::CloudFront::ResponseHeadersPolicy')).map(
      (p) =>
        p.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig.ContentSecurityPolicy
          .ContentSecurityPolicy as string,
    );
    expect(policies).toHaveLength(2);
    expect(policies.filter((csp) => csp.includes("'unsafe-inline'"))).toHaveLength(1);
    for (const csp of policies) expect(csp).toContain("script-src 'self';");
  });

  it('retains the table, protected from deletion, and keeps the logs', () => {
    stateful.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({ DeletionProtectionEnabled: true }),
    });
    for (const logGroup of Object.values(stateless.findResources('AWS::Logs::LogGroup'))) {
      expect(logGroup.DeletionPolicy).toBe('Retain');
      expect(logGroup.Properties.RetentionInDays).toBe(365);
    }
  });

  it('requires an API key on every method, through a throttled usage plan, without the key value', () => {
    const methods = Object.values(stateless.findResources('AWS::ApiGateway::Method'));
    // Every method but the public OpenAPI document's (GET /openapi.json, no data).
    const keyed = methods.filter((m) => m.Properties.ApiKeyRequired === true);
    expect(keyed).toHaveLength(methods.length - 1);
    for (const method of keyed) expect(method.Properties).toMatchObject({ AuthorizationType: 'NONE' });
    stateless.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      Throttle: { RateLimit: Match.anyValue(), BurstLimit: Match.anyValue() },
      ApiStages: [Match.objectLike({ Stage: Match.anyValue() })],
    });
    stateless.resourceCountIs('AWS::ApiGateway::UsagePlanKey', 1);
    const [key] = Object.values(stateless.findResources('AWS::ApiGateway::ApiKey'));
    expect(key!.Properties.Value).toBeUndefined(); // generated by API Gateway, read with get-api-key
    expect(Object.keys(stateless.toJSON().Outputs)).toContain('ApiKeyId');
  });

  it('subscribes the alarm e-mail to the topic', () => {
    stateless.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
  });

  it('passes the parameters to the functions that read them', () => {
    const fns = functionsOf(stateless);
    expect(fns.api!.props.Environment.Variables).toMatchObject({
      DEFAULT_CONCURRENCY: '4',
      MAX_CONCURRENCY: '8',
    });
    expect(fns.dispatcher!.props.Environment.Variables).toMatchObject({
      TWILIO_FROM_NUMBER: '+14155550100',
      TWIML_URL: 'https://example.com/twiml.xml',
      TWILIO_SECRET_ID: 'dialgate/prod/twilio',
    });
  });

  it('does not warn about the from-number', () => {
    Annotations.fromStack(dialgate.stateless).hasNoWarning('*', Match.stringLikeRegexp('twilioFromNumber'));
  });
});
