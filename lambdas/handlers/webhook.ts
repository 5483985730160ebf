// (handler) Function URL → Twilio status callbacks, answering-machine detection callbacks, and
// keypresses of a run's opt-out (its `<Gather>` action, at /opt-out). The signature is checked against
// the exact URL before anything is written (docs/DESIGN.md, invariant 6); then the core moves the job
// and, on a final status, frees the slot; or records the detection's verdict (and redirects a machine
// to the run's voicemail, or hangs it up); or suppresses the number of a callee who pressed the opt-out digit.
// Twilio waits at most 15 s for an answer: this does one write or transaction (a read first only when
// the callback URL leaves the outcome open), one SQS send, then answers.

import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { CredentialSource } from '../adapters/twilio-credentials.ts';
import { isSignedByTwilio } from '../adapters/twilio-signature.ts';
import { type AmdDeps, applyAmdCallback } from '../core/amd-callback.ts';
import { isAmdCallback, parseCallbackIds } from '../core/callback-url.ts';
import { applyStatusCallback, type CallbackDeps } from '../core/callbacks.ts';
import { isAnsweredBy } from '../core/machine-detection.ts';
import { applyOptOut, OPT_OUT_PATH, type OptOutDeps } from '../core/opt-out.ts';
import { systemClock } from '../core/ports.ts';
import { isTwilioCallStatus } from '../core/states.ts';
import { readEnv } from '../definitions/environment.ts';
import { METRICS, serviceName } from '../definitions/resources.ts';
import { eventBody } from './body.ts';
import { metricsFor, publishRecordedMetrics } from './metrics.ts';
import { runStore, twilioCredentials, twilioTelephony, workQueue } from './wiring.ts';

const service = serviceName('webhook');
const logger = new Logger({ serviceName: service });
const metrics = metricsFor('webhook');

/** The most a voicemail redirect or a machine's hang-up may take: the function has 10 s in all. */
const CALL_UPDATE_TIMEOUT_MS = 5_000;

let deps: (CallbackDeps & AmdDeps & OptOutDeps & { credentials: CredentialSource }) | undefined;
function wire() {
  const env = readEnv([
    'TABLE_NAME',
    'QUEUE_URL',
    'TWILIO_SECRET_ID',
    'TWILIO_ACCOUNT_SID',
    'TWILIO_AUTH_TOKEN',
    'TWILIO_API_BASE_URL',
    'TWILIO_REQUEST_TIMEOUT_MS',
  ]);
  return {
    // With faults (chaos tests only): crashes between steps, DynamoDB throttles.
    store: runStore(env, { faults: true }),
    queue: workQueue(env, { faults: true }),
    clock: systemClock,
    log: logger,
    credentials: twilioCredentials(env),
    // Twilio's Calls API, for machines only: redirecting the call to the run's voicemail, or hanging
    // it up, within the function's own timeout (and Twilio's 15 s wait for the answer).
    callControl: twilioTelephony(
      { ...env, TWILIO_REQUEST_TIMEOUT_MS: Math.min(env.TWILIO_REQUEST_TIMEOUT_MS, CALL_UPDATE_TIMEOUT_MS) },
      { log: logger },
    ),
  };
}

function reply(statusCode: number, body = ''): APIGatewayProxyStructuredResultV2 {
  return { statusCode, headers: { 'content-type': 'text/plain' }, body };
}

/** TwiML for Twilio to play: the answer to a `<Gather>` action. */
function twiml(body: string): APIGatewayProxyStructuredResultV2 {
  return { statusCode: 200, headers: { 'content-type': 'text/xml' }, body };
}

/** The URL Twilio signed: the one we gave it, as the Function URL received it. */
export function requestUrl(event: APIGatewayProxyEventV2): string {
  const proto = event.headers['x-forwarded-proto'] ?? 'https';
  const host = event.headers.host ?? event.requestContext.domainName;
  return `${proto}://${host}${event.rawPath}${event.rawQueryString ? `?${event.rawQueryString}` : ''}`;
}

export async function handleStatusCallback(
  event: APIGatewayProxyEventV2,
): Promise<APIGatewayProxyStructuredResultV2> {
  if (event.requestContext.http.method !== 'POST') return reply(405, 'POST only');
  deps ??= wire();
  const params = Object.fromEntries(new URLSearchParams(eventBody(event)));

  if (
    !(await isSignedByTwilio(
      deps.credentials,
      event.headers['x-twilio-signature'],
      requestUrl(event),
      params,
    ))
  ) {
    logger.warn('status callback refused: bad signature', { path: event.rawPath });
    metrics.addMetric(METRICS.webhookSignatureRejected.name, MetricUnit.Count, 1);
    return reply(403, 'invalid signature');
  }

  const query = new URLSearchParams(event.rawQueryString);
  const ids = parseCallbackIds(query);
  if (event.rawPath.endsWith(OPT_OUT_PATH)) {
    if (!ids) return twiml('<Response><Hangup/></Response>');
    const { twiml: answer } = await applyOptOut(deps, ids, params.Digits ?? '');
    return twiml(answer);
  }
  if (isAmdCallback(query)) {
    const answeredBy = params.AnsweredBy ?? '';
    if (!ids || !params.CallSid || !isAnsweredBy(answeredBy)) {
      logger.warn('detection callback ignored: not one of ours', { query: event.rawQueryString });
      return reply(200);
    }
    const effect = await applyAmdCallback(deps, { ...ids, callSid: params.CallSid, answeredBy });
    logger.debug('detection callback applied', { ...ids, answeredBy, effect });
    return reply(200);
  }
  const status = params.CallStatus ?? '';
  if (!ids || !isTwilioCallStatus(status) || !params.CallSid) {
    // Signed by Twilio but not a callback we asked for: nothing to retry, nothing to change.
    logger.warn('status callback ignored: not one of ours', { query: event.rawQueryString, status });
    return reply(200);
  }
  const errorCode = params.ErrorCode ? Number(params.ErrorCode) : undefined;
  const answeredBy = params.AnsweredBy;
  const effect = await applyStatusCallback(deps, {
    ...ids,
    callSid: params.CallSid,
    callStatus: status,
    ...(errorCode !== undefined && Number.isFinite(errorCode) ? { errorCode } : {}),
    ...(answeredBy !== undefined && isAnsweredBy(answeredBy) ? { answeredBy } : {}),
  });
  logger.debug('status callback applied', { ...ids, status, effect });
  return reply(200);
}

export const handler = middy(handleStatusCallback)
  .use(injectLambdaContext(logger))
  .use(publishRecordedMetrics(metrics));
