// (handler) EventBridge schedule → the reconciler: frees slots whose final callback never came (on
// Twilio's word only), re-arms runs whose dispatch message was lost, closes finished runs. Emits the
// figures the alarms watch, and the dashboard's live-calls gauge.

import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { systemClock } from '../core/ports.ts';
import { type ReconcileDeps, type ReconcileReport, reconcile } from '../core/reconcile.ts';
import { readEnv } from '../definitions/environment.ts';
import { METRICS, serviceName } from '../definitions/resources.ts';
import { metricsFor, publishRecordedMetrics } from './metrics.ts';
import { reconcileSettings, runStore, twilioTelephony, workQueue } from './wiring.ts';

const service = serviceName('reconciler');
const logger = new Logger({ serviceName: service });
const metrics = metricsFor('reconciler');

let deps: ReconcileDeps | undefined;
function wire(): ReconcileDeps {
  const env = readEnv([
    'TABLE_NAME',
    'QUEUE_URL',
    'TWILIO_SECRET_ID',
    'TWILIO_ACCOUNT_SID',
    'TWILIO_AUTH_TOKEN',
    'TWILIO_API_BASE_URL',
    'TWILIO_REQUEST_TIMEOUT_MS',
    'RING_TIMEOUT_SECONDS',
    'CALL_TIME_LIMIT_SECONDS',
    'RECONCILE_GRACE_SECONDS',
  ]);
  return {
    store: runStore(env),
    queue: workQueue(env),
    calls: twilioTelephony(env, { log: logger }),
    clock: systemClock,
    log: logger,
    settings: reconcileSettings(env),
  };
}

/** Left for the metrics, the log and Lambda's own bookkeeping when a pass stops taking runs. */
const PASS_MARGIN_MS = 15_000;

export async function runReconciler(_event?: unknown, context?: Context): Promise<ReconcileReport> {
  deps ??= wire();
  const remaining = context?.getRemainingTimeInMillis?.();
  const report = await reconcile(
    remaining === undefined
      ? deps
      : { ...deps, settings: { ...deps.settings, passBudgetMs: Math.max(0, remaining - PASS_MARGIN_MS) } },
  );
  metrics.addMetric(METRICS.slotsReaped.name, MetricUnit.Count, report.reaped + report.neverCreated);
  metrics.addMetric(METRICS.slotMismatch.name, MetricUnit.Count, report.mismatches);
  metrics.addMetric(METRICS.unknownCalls.name, MetricUnit.Count, report.unknownCalls);
  metrics.addMetric(METRICS.liveCalls.name, MetricUnit.Count, report.liveCalls);
  if (report.runsDeferred > 0)
    logger.warn('pass out of time; runs left for the next pass', { deferred: report.runsDeferred });
  logger.info('reconciled', { ...report });
  return report;
}

export const handler = middy(runReconciler)
  .use(injectLambdaContext(logger))
  .use(publishRecordedMetrics(metrics));
