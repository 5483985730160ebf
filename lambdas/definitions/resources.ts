// (definitions) The resources both the CDK app and the local stack build: functions, queue settings.
// Plain data, no CDK imports, so `npm start` and `cdk deploy` cannot disagree on them.

export { TABLE_SCHEMA } from './table-schema.ts';

export interface FunctionSpec {
  /** Entry file, relative to the repository root. */
  entry: string;
  timeoutSeconds: number;
  memoryMb: number;
}

export const FUNCTIONS = {
  api: { entry: 'lambdas/handlers/api.ts', timeoutSeconds: 10, memoryMb: 512 },
  dispatcher: { entry: 'lambdas/handlers/dispatcher.ts', timeoutSeconds: 30, memoryMb: 512 },
  webhook: { entry: 'lambdas/handlers/webhook.ts', timeoutSeconds: 10, memoryMb: 256 },
  /** Talks to Twilio for every suspect slot, so it gets more time than a request handler. */
  reconciler: { entry: 'lambdas/handlers/reconciler.ts', timeoutSeconds: 60, memoryMb: 256 },
  /** The table's stream → events: derives them and puts them on the bus and the delivery queue. */
  events: { entry: 'lambdas/handlers/events.ts', timeoutSeconds: 30, memoryMb: 256 },
  /** The delivery queue → the webhook: signs and posts each event, waiting at most a request timeout. */
  delivery: { entry: 'lambdas/handlers/delivery.ts', timeoutSeconds: 30, memoryMb: 256 },
} as const satisfies Record<string, FunctionSpec>;

export type FunctionName = keyof typeof FUNCTIONS;

/**
 * POWERTOOLS_SERVICE_NAME of each function, and so the `service` dimension of its metrics: the alarms
 * select on it, so a handler must not pick another name.
 */
export const serviceName = <F extends FunctionName>(fn: F): `dialgate-${F}` => `dialgate-${fn}`;

/** How often the reconciler looks for slots whose calls ended without a callback. */
export const RECONCILER_SCHEDULE_MINUTES = 1;

/**
 * Caps the public, unauthenticated Function URL: a flood of forged callbacks is refused at the
 * signature check, and this keeps it from also taking the account's concurrency from the dispatcher.
 */
export const WEBHOOK_RESERVED_CONCURRENCY = 50;

/**
 * The custom metrics (Powertools Metrics, EMF) the functions emit and the stack alarms and graphs on.
 * Each metric carries one dimension, `service` = serviceName(emitter). Alarms select on that exact
 * dimension, so the emitter named here is part of the contract.
 */
export const METRICS = {
  namespace: 'dialgate',
  dimension: 'service',
  /** Count of slots the reconciler freed because their callback never came. Alarmed: > 0. */
  slotsReaped: { name: 'SlotsReaped', emitter: 'reconciler' },
  /** Count of runs whose `active` disagreed with their named holders. Alarmed: > 0 (never expected). */
  slotMismatch: { name: 'SlotMismatch', emitter: 'reconciler' },
  /** Count of held calls Twilio gave a Sid for and then did not know. Alarmed: > 0 (never expected). */
  unknownCalls: { name: 'UnknownCalls', emitter: 'reconciler' },
  /** Count of status callbacks refused for a bad X-Twilio-Signature. Alarmed: > 0. */
  webhookSignatureRejected: { name: 'WebhookSignatureRejected', emitter: 'webhook' },
  /** Count of calls.create accepted by Twilio. */
  callsPlaced: { name: 'CallsPlaced', emitter: 'dispatcher' },
  /** Milliseconds from a slot's release to the next call placed in that run. */
  refillLatencyMs: { name: 'RefillLatencyMs', emitter: 'dispatcher' },
  /**
   * Gauge of calls dialing or in a call, over every open run, as each reconciler pass reads the runs
   * (once a minute): the number the cap bounds, sampled where every open run is read anyway.
   */
  liveCalls: { name: 'LiveCalls', emitter: 'reconciler' },
} as const;

/**
 * Seconds a failed work message waits before each retry, set by the dispatcher on the message
 * (its visibility timeout). Most failures are brief (a throttled partition, a conflict, a crash), so
 * the first retries come within seconds rather than after the queue's visibility timeout; the later
 * ones are that timeout, so the tries span about 13 minutes, longer than DynamoDB takes to adapt a
 * hot partition's capacity. A message whose invocation dies (a timeout) waits the queue's own timeout.
 */
const WORK_RETRY_SCHEDULE_SECONDS = [1, 2, 5, 10, 30, 60, 120, 180, 180, 180];

export const WORK_QUEUE = {
  /** SQS wants at least 6 × the consumer's timeout, so an invocation's retries do not overlap. */
  visibilityTimeoutSeconds: 6 * FUNCTIONS.dispatcher.timeoutSeconds,
  retryScheduleSeconds: WORK_RETRY_SCHEDULE_SECONDS,
  /** Tries before the dead-letter queue (alarmed on): the first and one after each wait of the schedule. */
  maxReceiveCount: WORK_RETRY_SCHEDULE_SECONDS.length + 1,
  /** Records per dispatcher invocation; each is a chunk of leads or a "dispatch run X". */
  batchSize: 10,
  /** Days a dead letter is kept for inspection (the SQS maximum). */
  dlqRetentionDays: 14,
} as const;

/** The events function on the table's stream. */
export const EVENTS_STREAM = {
  /** Stream records per invocation: a refill is a few writes, so a busy second is tens of records. */
  batchSize: 100,
  /** Alarmed: the events function this far behind the table means events are late (or stuck on a failure). */
  iteratorAgeAlarmSeconds: 300,
} as const;

/**
 * Seconds to wait after each failed webhook try before the next one: Standard Webhooks' suggested
 * schedule, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — eight tries over about 27.6 hours. Each wait
 * is within SQS's 12-hour visibility limit.
 */
const WEBHOOK_RETRY_SCHEDULE_SECONDS = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];

/** The webhook delivery queue and the function that consumes it. */
export const EVENTS_DELIVERY = {
  retryScheduleSeconds: WEBHOOK_RETRY_SCHEDULE_SECONDS,
  /** The local stack's schedule: as many tries, over about two minutes, so that retries can be watched. */
  localRetryScheduleSeconds: [1, 2, 4, 8, 15, 30, 60],
  /** Tries before the dead-letter queue: the first and one after each wait of the schedule. */
  maxReceiveCount: WEBHOOK_RETRY_SCHEDULE_SECONDS.length + 1,
  /** SQS wants at least 6 × the consumer's timeout; a failed try sets its own wait instead. */
  visibilityTimeoutSeconds: 6 * FUNCTIONS.delivery.timeoutSeconds,
  /** Kept well past the schedule's 27.6 hours (the SQS default, four days). */
  retentionDays: 4,
  /** Deliveries per invocation, sent at once. */
  batchSize: 10,
  /** Invocations at once: what the endpoint receives at most in parallel is this × batchSize. */
  maxConcurrency: 5,
  dlqRetentionDays: 14,
} as const;
