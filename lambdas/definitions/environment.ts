// (definitions) Configuration, read from the environment once per cold start and validated, so that a
// missing or malformed setting fails the first invocation loudly instead of the hundredth quietly.

import { z } from 'zod';
import { COUNTRY_CODE, E164, PHONE_TYPES } from './formats.ts';

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
/** A comma-separated list (blanks ignored), each item checked by `item`. */
const commaList = <T extends z.ZodType<string, string>>(item: T) =>
  z
    .string()
    .default('')
    .transform((value) =>
      value
        .split(',')
        .map((part) => part.trim())
        .filter((part) => part !== ''),
    )
    .pipe(z.array(item));

/** A Standard Webhooks secret: `whsec_` and the key in base64. */
export const WEBHOOK_SECRET = /^whsec_[A-Za-z0-9+/]+={0,2}$/;

/** https anywhere; plain http only to a loopback host, which only the local stack can have. */
export function isWebhookUrl(value: string): boolean {
  const url = new URL(value);
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

/** Every variable a dialgate function reads. The README's configuration table lists the same. */
export const ENV = {
  TABLE_NAME: z.string().min(1),
  QUEUE_URL: z.string().url(),
  /** The webhook's public URL (the Function URL); status callbacks are sent here. */
  WEBHOOK_URL: z.string().url(),
  /** Local stack and tests: credentials straight from the environment. */
  TWILIO_ACCOUNT_SID: z.string().min(1).optional(),
  TWILIO_AUTH_TOKEN: z.string().min(1).optional(),
  /** AWS: Secrets Manager secret whose value is JSON {"accountSid": "AC…", "authToken": "…"}. */
  TWILIO_SECRET_ID: z.string().min(1).optional(),
  TWILIO_FROM_NUMBER: z.string().regex(E164, 'an E.164 number such as +15005550006'),
  /** Any Twilio-compatible endpoint (a simulator, a test double); Twilio itself by default. */
  TWILIO_API_BASE_URL: z.string().url().default('https://api.twilio.com'),
  TWILIO_REQUEST_TIMEOUT_MS: positiveInt(10_000),
  /** What the callee hears: a TwiML URL, else inline TwiML. */
  TWIML_URL: z.string().url().optional(),
  TWIML: z.string().min(1).default('<Response><Say>Hello from dialgate.</Say></Response>'),
  DEFAULT_CONCURRENCY: positiveInt(3),
  /** At most 500: a run's slots are transactions on one item (see the README's ceilings). */
  MAX_CONCURRENCY: z.coerce.number().int().positive().max(500).default(20),
  MAX_LEADS_PER_RUN: positiveInt(100_000),
  /** Twilio's ring `Timeout`, and the call's `TimeLimit`: together they bound how long a slot is held. */
  RING_TIMEOUT_SECONDS: positiveInt(30),
  CALL_TIME_LIMIT_SECONDS: positiveInt(900),
  /** Slack the reconciler allows past ring timeout / time limit before it asks Twilio about a slot. */
  RECONCILE_GRACE_SECONDS: positiveInt(120),
  /** Live calls across all runs (the Twilio account's own concurrency limit); unset = no account cap. */
  ACCOUNT_MAX_CONCURRENT_CALLS: z.coerce.number().int().positive().max(10_000).optional(),
  /** calls.create per second across all runs (Twilio's default is 1 CPS); unset = not paced. */
  ACCOUNT_CALLS_PER_SECOND: z.coerce.number().positive().max(1000).optional(),
  /** Caller ids a run may choose with `from`, comma-separated (TWILIO_FROM_NUMBER always may). */
  ALLOWED_FROM_NUMBERS: commaList(z.string().regex(E164, 'E.164 numbers such as +15005550006')),
  /**
   * Where a run's `twiml_url` may point, comma-separated https URLs (host and path prefix); empty = runs
   * cannot set one. No user name, query or fragment: a prefix names a place, compared as a parsed URL.
   */
  TWIML_URL_ALLOWED_PREFIXES: commaList(
    z
      .string()
      .url()
      .refine((value) => {
        const url = new URL(value);
        return url.protocol === 'https:' && !url.username && !url.password && !url.search && !url.hash;
      }, 'an https URL without a user name, query or fragment (https://twiml.example.com/voice/)'),
  ),
  /**
   * Largest inline `twiml` a run may carry (Twilio takes 4000); 0, the default, = runs cannot set inline
   * TwiML: what the business's caller id says or where it connects is the deployment's choice.
   */
  MAX_TWIML_BYTES: z.coerce.number().int().min(0).max(4000).default(0),
  /**
   * Leads (and caller ids) without a country code are read as national numbers of this country
   * (ISO 3166 alpha-2: `052-234-5678` with IL is +972522345678); unset = a country code is required.
   * Its form is checked here; that libphonenumber knows it, where the API loads the metadata.
   */
  DEFAULT_COUNTRY: z
    .string()
    .trim()
    .toUpperCase()
    .regex(COUNTRY_CODE, 'an ISO 3166 alpha-2 country code such as IL or US')
    .optional(),
  /** The number types leads may be (libphonenumber's, comma-separated: mobile,fixed_line_or_mobile); empty = any. */
  ALLOWED_PHONE_TYPES: commaList(z.enum(PHONE_TYPES, { error: `one of ${PHONE_TYPES.join(', ')}` })),
  /**
   * `on` (the default): every dial checks the suppression list in its acquire transaction (2 write
   * units a call); `off` only for a deployment that keeps no list. With a frequency cap it is checked
   * anyway: the number's one item holds both, and the two cost 2 units together.
   */
  SUPPRESSION_CHECK: z.enum(['on', 'off']).default('on'),
  /** At most this many calls to one number per RECIPIENT_WINDOW_HOURS, across runs; unset = no cap. */
  RECIPIENT_MAX_CALLS: z.coerce.number().int().positive().max(1000).optional(),
  /** The frequency cap's window, in hours (fixed windows counted from the epoch); needs RECIPIENT_MAX_CALLS. */
  RECIPIENT_WINDOW_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 366)
    .optional(),
  /** AWS: the stack's EventBridge bus, which every event is put on; unset (local) = not put. */
  EVENT_BUS_NAME: z.string().min(1).optional(),
  /** The webhook delivery queue; unset = no webhook configured, events go to the bus only. */
  EVENTS_QUEUE_URL: z.string().url().optional(),
  /** Where events are posted: https, or http to this machine (the local stack). */
  EVENTS_WEBHOOK_URL: z
    .string()
    .url()
    .refine(isWebhookUrl, 'an https URL (or http to 127.0.0.1 / localhost, locally)')
    .optional(),
  /** Local stack: the Standard Webhooks signing secret itself. */
  EVENTS_WEBHOOK_SECRET: z.string().regex(WEBHOOK_SECRET, 'whsec_ followed by base64').optional(),
  /** AWS: the Secrets Manager secret holding the signing secret (`whsec_…`). */
  EVENTS_WEBHOOK_SECRET_ID: z.string().min(1).optional(),
  /** Seconds before each retry of a failed delivery, comma-separated; its length + 1 is the tries. */
  EVENTS_RETRY_SCHEDULE_SECONDS: commaList(z.string().regex(/^\d+$/, 'whole seconds'))
    .transform((list) => list.map(Number))
    .pipe(z.array(z.number().int().min(0).max(43_200))),
  /** Per webhook request: no answer by then counts as a failed try. */
  EVENTS_REQUEST_TIMEOUT_MS: positiveInt(10_000),
} as const;

type EnvShape = typeof ENV;
export type EnvName = keyof EnvShape;
/** The configuration as read: every variable, parsed. */
export type Env = { [P in EnvName]: z.infer<EnvShape[P]> };

/** Reads and validates the named variables; throws one error listing every bad one. */
export function readEnv<const K extends EnvName>(
  names: readonly K[],
  source: NodeJS.ProcessEnv = process.env,
): Pick<Env, K> {
  const shape = Object.fromEntries(names.map((name) => [name, ENV[name]])) as Pick<EnvShape, K>;
  const parsed = z.object(shape).safeParse(source);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`Invalid configuration: ${problems.join('; ')}`);
  }
  return parsed.data as Pick<Env, K>;
}
