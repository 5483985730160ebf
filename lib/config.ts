// The CDK app's parameters (CDK context, `-c name=value`), read and validated once.
// bin/app.ts reads them; the stacks take the result as a typed prop.

import type { Node } from 'constructs';
import { z } from 'zod';
import { ENV } from '../lambdas/definitions/environment.ts';
import type { PhoneType } from '../lambdas/definitions/formats.ts';
import { phoneSettingProblems } from '../lambdas/definitions/phone-numbers.ts';
import { WEBHOOK_RESERVED_CONCURRENCY } from '../lambdas/definitions/resources.ts';

/** How API callers authenticate: IAM (SigV4) or an API key with a usage plan. */
export type ApiAuth = 'iam' | 'apiKey';

/** Twilio's magic test number: calls "succeed" without ringing anyone. Replace it for real calls. */
export const PLACEHOLDER_FROM_NUMBER = '+15005550006';

export interface DialgateConfig {
  /** Names the stacks and resources; `prod` also retains the table and the logs on teardown. */
  readonly stage: string;
  readonly defaultConcurrency: number;
  readonly maxConcurrency: number;
  readonly maxLeadsPerRun: number;
  readonly twilioFromNumber: string;
  readonly twimlUrl: string | undefined;
  /** Secrets Manager secret holding {"accountSid","authToken"}; created by the operator, not the stack. */
  readonly twilioSecretName: string;
  readonly alarmEmail: string | undefined;
  readonly apiAuth: ApiAuth;
  readonly ringTimeoutSeconds: number;
  readonly callTimeLimitSeconds: number;
  readonly webhookReservedConcurrency: number;
  /** Account-wide limits (ACCOUNT_MAX_CONCURRENT_CALLS, ACCOUNT_CALLS_PER_SECOND); unset = none. */
  readonly accountMaxConcurrentCalls?: number | undefined;
  readonly accountCallsPerSecond?: number | undefined;
  /** The suppression list checked in every acquire (SUPPRESSION_CHECK); a frequency cap per number. */
  readonly suppressionCheck: 'on' | 'off';
  readonly recipientMaxCalls?: number | undefined;
  readonly recipientWindowHours?: number | undefined;
  /** Caller ids and TwiML URL prefixes runs may choose; the largest inline TwiML a run may carry. */
  readonly allowedFromNumbers: string[];
  readonly twimlUrlAllowedPrefixes: string[];
  readonly maxTwimlBytes: number;
  /** National numbers are read as this country's (DEFAULT_COUNTRY); the number types leads may be. */
  readonly defaultCountry?: string | undefined;
  readonly allowedPhoneTypes: PhoneType[];
  /** Where events are posted, signed (Standard Webhooks); unset = events go to the bus only. */
  readonly eventsWebhookUrl: string | undefined;
  /** Secrets Manager secret holding the webhook signing secret (`whsec_…`); created by the operator. */
  readonly eventsWebhookSecretName: string;
}

const STAGE = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{0,19}$/,
    'lower-case letters, digits and dashes, at most 20, starting with a letter',
  );

/**
 * Reads the context, validating each value with the schema the functions themselves use for the
 * variable it becomes, so a bad value fails `cdk synth` instead of the first invocation.
 */
export function readConfig(node: Node): DialgateConfig {
  const problems: string[] = [];
  const read = <T>(key: string, schema: z.ZodType<T>): T => {
    const raw: unknown = node.tryGetContext(key);
    // `-c name=` passes an empty string: treat it as "not given", so defaults apply.
    const parsed = schema.safeParse(raw === '' ? undefined : raw);
    if (parsed.success) return parsed.data;
    problems.push(`-c ${key}: ${parsed.error.issues.map((issue) => issue.message).join('; ')}`);
    return undefined as T;
  };

  const stage = read('stage', STAGE.default('dev'));
  const config: DialgateConfig = {
    stage,
    defaultConcurrency: read('defaultConcurrency', ENV.DEFAULT_CONCURRENCY),
    maxConcurrency: read('maxConcurrency', ENV.MAX_CONCURRENCY),
    maxLeadsPerRun: read('maxLeadsPerRun', ENV.MAX_LEADS_PER_RUN),
    twilioFromNumber: read('twilioFromNumber', ENV.TWILIO_FROM_NUMBER.default(PLACEHOLDER_FROM_NUMBER)),
    twimlUrl: read('twimlUrl', ENV.TWIML_URL),
    twilioSecretName: read('twilioSecretName', z.string().min(1).default(`dialgate/${stage}/twilio`)),
    alarmEmail: read('alarmEmail', z.email().optional()),
    apiAuth: read('apiAuth', z.enum(['iam', 'apiKey']).default('iam')),
    ringTimeoutSeconds: read('ringTimeoutSeconds', ENV.RING_TIMEOUT_SECONDS),
    callTimeLimitSeconds: read('callTimeLimitSeconds', ENV.CALL_TIME_LIMIT_SECONDS),
    webhookReservedConcurrency: read(
      'webhookReservedConcurrency',
      z.coerce.number().int().positive().default(WEBHOOK_RESERVED_CONCURRENCY),
    ),
    accountMaxConcurrentCalls: read('accountMaxConcurrentCalls', ENV.ACCOUNT_MAX_CONCURRENT_CALLS),
    accountCallsPerSecond: read('accountCallsPerSecond', ENV.ACCOUNT_CALLS_PER_SECOND),
    suppressionCheck: read('suppressionCheck', ENV.SUPPRESSION_CHECK),
    recipientMaxCalls: read('recipientMaxCalls', ENV.RECIPIENT_MAX_CALLS),
    recipientWindowHours: read('recipientWindowHours', ENV.RECIPIENT_WINDOW_HOURS),
    allowedFromNumbers: read('allowedFromNumbers', ENV.ALLOWED_FROM_NUMBERS),
    twimlUrlAllowedPrefixes: read('twimlUrlAllowedPrefixes', ENV.TWIML_URL_ALLOWED_PREFIXES),
    maxTwimlBytes: read('maxTwimlBytes', ENV.MAX_TWIML_BYTES),
    defaultCountry: read('defaultCountry', ENV.DEFAULT_COUNTRY),
    allowedPhoneTypes: read('allowedPhoneTypes', ENV.ALLOWED_PHONE_TYPES),
    // https only: a deployed function has no loopback endpoint to post to.
    eventsWebhookUrl: read(
      'eventsWebhookUrl',
      z
        .string()
        .url()
        .refine((value) => new URL(value).protocol === 'https:', 'an https URL')
        .optional(),
    ),
    eventsWebhookSecretName: read(
      'eventsWebhookSecretName',
      z.string().min(1).default(`dialgate/${stage}/events-webhook`),
    ),
  };
  if (problems.length === 0) {
    // Valid for their country, and a country libphonenumber knows: what the API checks at cold start.
    const phones = phoneSettingProblems({
      fromNumbers: [
        { name: 'twilioFromNumber', value: config.twilioFromNumber },
        ...config.allowedFromNumbers.map((value, i) => ({ name: `allowedFromNumbers[${i}]`, value })),
      ],
      defaultCountry: { name: 'defaultCountry', value: config.defaultCountry },
    });
    problems.push(...phones.map((problem) => `-c ${problem}`));
  }
  if (
    problems.length === 0 &&
    (config.recipientMaxCalls === undefined) !== (config.recipientWindowHours === undefined)
  )
    problems.push(
      '-c recipientMaxCalls and -c recipientWindowHours: set both for a frequency cap, or neither',
    );
  if (problems.length === 0 && config.defaultConcurrency > config.maxConcurrency) {
    problems.push(
      `-c defaultConcurrency (${config.defaultConcurrency}) exceeds -c maxConcurrency (${config.maxConcurrency})`,
    );
  }
  if (problems.length > 0) throw new Error(`Invalid dialgate context:\n  ${problems.join('\n  ')}`);
  return config;
}
