// (handler support) The one place where the handlers' adapters are built from their configuration:
// the DynamoDB store, the SQS queue, the Twilio client, and the settings the core's use cases take.
// Each handler reads its own variables (readEnv) and asks for what it uses; nothing here runs until
// a handler's first invocation.

import { makeDynamoClient, makeSqsClient } from '../adapters/aws-clients.ts';
import { DynamoFillLease } from '../adapters/dynamo/fill-lease.ts';
import { DynamoTable } from '../adapters/dynamo/table.ts';
import { withDynamoLimitsModel } from '../adapters/dynamo-limits.ts';
import { DynamoRunStore } from '../adapters/dynamo-run-store.ts';
import { withInjectedCrashes, withInjectedDynamoFaults } from '../adapters/fault-injection.ts';
import { SqsWorkQueue } from '../adapters/sqs-work-queue.ts';
import { type CredentialSource, credentialSource } from '../adapters/twilio-credentials.ts';
import { TwilioTelephony } from '../adapters/twilio-telephony.ts';
import type { FillSlotsDeps } from '../core/fill-slots.ts';
import type { CallSettings } from '../core/place-call.ts';
import type { AccountLimits, FillLease, Log, RunStore, WorkQueue } from '../core/ports.ts';
import type { ReconcileSettings } from '../core/reconcile.ts';
import type { Env } from '../definitions/environment.ts';

/**
 * `faults`: the adapter is wrapped by the chaos tests' fault injection (crashes between steps,
 * DynamoDB throttles and transaction conflicts), which is inert unless DIALGATE_FAULTS is set.
 */
interface Wrapping {
  faults?: boolean;
}

type TwilioEnv = Pick<Env, 'TWILIO_SECRET_ID' | 'TWILIO_ACCOUNT_SID' | 'TWILIO_AUTH_TOKEN'>;

export function runStore(env: Pick<Env, 'TABLE_NAME'>, { faults = false }: Wrapping = {}): RunStore {
  // The limits model (DYNAMO_LIMITS_MODEL=1, local only) puts AWS's conflicts and throttling in front.
  if (!faults)
    return new DynamoRunStore(withDynamoLimitsModel(makeDynamoClient()), { tableName: env.TABLE_NAME });
  const client = withDynamoLimitsModel(withInjectedDynamoFaults(makeDynamoClient()));
  return withInjectedCrashes(new DynamoRunStore(client, { tableName: env.TABLE_NAME }), 'store');
}

/** The runs' fill leases: one filler per run at a time (fill-slots.ts). */
export function fillLease(env: Pick<Env, 'TABLE_NAME'>): FillLease {
  return new DynamoFillLease(
    new DynamoTable(withDynamoLimitsModel(makeDynamoClient()), { tableName: env.TABLE_NAME }),
  );
}

export function workQueue(env: Pick<Env, 'QUEUE_URL'>, { faults = false }: Wrapping = {}): WorkQueue {
  const queue = new SqsWorkQueue(makeSqsClient(), env.QUEUE_URL);
  return faults ? withInjectedCrashes(queue, 'queue') : queue;
}

/** Where the Twilio account's SID and auth token come from: Secrets Manager in AWS, else the environment. */
export function twilioCredentials(env: TwilioEnv): CredentialSource {
  return credentialSource(env);
}

/** Twilio's Calls API: the Telephony, CallControl and CallLookup ports in one client. */
export function twilioTelephony(
  env: TwilioEnv & Pick<Env, 'TWILIO_API_BASE_URL' | 'TWILIO_REQUEST_TIMEOUT_MS'>,
  { faults = false, log }: Wrapping & { log?: Log } = {},
): TwilioTelephony {
  const telephony = new TwilioTelephony({
    credentials: twilioCredentials(env),
    apiBaseUrl: env.TWILIO_API_BASE_URL,
    timeoutMs: env.TWILIO_REQUEST_TIMEOUT_MS,
    ...(log ? { log } : {}),
  });
  return faults ? withInjectedCrashes(telephony, 'telephony') : telephony;
}

/** What every call is placed with, unless its run says otherwise. */
export function callSettings(
  env: Pick<
    Env,
    | 'TWILIO_FROM_NUMBER'
    | 'WEBHOOK_URL'
    | 'RING_TIMEOUT_SECONDS'
    | 'CALL_TIME_LIMIT_SECONDS'
    | 'TWIML_URL'
    | 'TWIML'
  >,
): CallSettings {
  return {
    from: env.TWILIO_FROM_NUMBER,
    webhookUrl: env.WEBHOOK_URL,
    ringTimeoutSeconds: env.RING_TIMEOUT_SECONDS,
    timeLimitSeconds: env.CALL_TIME_LIMIT_SECONDS,
    content: env.TWIML_URL ? { twimlUrl: env.TWIML_URL } : { twiml: env.TWIML },
  };
}

/** The account-wide limits; undefined when none is set, which leaves the account item out altogether. */
export function accountLimits(
  env: Pick<Env, 'ACCOUNT_MAX_CONCURRENT_CALLS' | 'ACCOUNT_CALLS_PER_SECOND'>,
): Omit<AccountLimits, 'nowMs'> | undefined {
  const account = {
    ...(env.ACCOUNT_MAX_CONCURRENT_CALLS ? { maxConcurrentCalls: env.ACCOUNT_MAX_CONCURRENT_CALLS } : {}),
    ...(env.ACCOUNT_CALLS_PER_SECOND ? { callsPerSecond: env.ACCOUNT_CALLS_PER_SECOND } : {}),
  };
  return Object.keys(account).length > 0 ? account : undefined;
}

/**
 * The checks every dial makes in its acquire transaction: the suppression list unless turned off,
 * and the frequency cap when both its settings are given (one without the other is refused). With a
 * frequency cap the suppression list is checked whatever SUPPRESSION_CHECK says: the number's one
 * item holds both its suppression and its counts, so the check then costs nothing more, and a
 * number suppressed is never counted (nor its item's expiry shortened) by a call that should not be.
 */
export function recipientChecks(
  env: Pick<Env, 'SUPPRESSION_CHECK' | 'RECIPIENT_MAX_CALLS' | 'RECIPIENT_WINDOW_HOURS'>,
): NonNullable<FillSlotsDeps['recipients']> {
  const max = env.RECIPIENT_MAX_CALLS;
  const hours = env.RECIPIENT_WINDOW_HOURS;
  if ((max === undefined) !== (hours === undefined))
    throw new Error('Invalid configuration: set RECIPIENT_MAX_CALLS and RECIPIENT_WINDOW_HOURS together');
  return {
    suppression: env.SUPPRESSION_CHECK === 'on' || max !== undefined,
    ...(max !== undefined && hours !== undefined
      ? { frequency: { maxCalls: max, windowMs: Math.round(hours * 3_600_000) } }
      : {}),
  };
}

export function reconcileSettings(
  env: Pick<Env, 'RING_TIMEOUT_SECONDS' | 'CALL_TIME_LIMIT_SECONDS' | 'RECONCILE_GRACE_SECONDS'>,
): ReconcileSettings {
  return {
    ringTimeoutSeconds: env.RING_TIMEOUT_SECONDS,
    timeLimitSeconds: env.CALL_TIME_LIMIT_SECONDS,
    graceSeconds: env.RECONCILE_GRACE_SECONDS,
  };
}
