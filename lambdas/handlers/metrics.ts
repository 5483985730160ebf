// (handler support) Custom metrics (CloudWatch EMF through Powertools), shared by the handlers.

import { Metrics } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';
import { type FunctionName, METRICS, serviceName } from '../definitions/resources.ts';

/** The function's metrics, under the namespace and `service` dimension the stack's alarms select on. */
export function metricsFor(fn: FunctionName): Metrics {
  return new Metrics({ namespace: METRICS.namespace, serviceName: serviceName(fn) });
}

/**
 * Flushes what the invocation recorded, and nothing otherwise: Powertools' own middleware warns in the
 * log on every invocation that recorded nothing (most webhook calls), which costs log ingestion in AWS
 * and buries the local terminal.
 */
export function publishRecordedMetrics(metrics: Metrics): MiddlewareObj {
  const publish = async () => {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  };
  return { after: publish, onError: publish };
}
