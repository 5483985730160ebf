// The resources both the CDK app and the local stack build: functions, queue settings. Plain data,
// no CDK imports, so `npm start` and `cdk deploy` cannot disagree on them.

export { TABLE_SCHEMA } from '../lambdas/adapters/table-schema.ts';

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
} as const satisfies Record<string, FunctionSpec>;

export const WORK_QUEUE = {
  /** SQS wants at least 6 × the consumer's timeout, so an invocation's retries do not overlap. */
  visibilityTimeoutSeconds: 6 * FUNCTIONS.dispatcher.timeoutSeconds,
  /** A message that fails this often is parked in the dead-letter queue (and alarmed on). */
  maxReceiveCount: 5,
  /** Records per dispatcher invocation; each is a chunk of leads or a "dispatch run X". */
  batchSize: 10,
  /** Days a dead letter is kept for inspection (the SQS maximum). */
  dlqRetentionDays: 14,
} as const;
