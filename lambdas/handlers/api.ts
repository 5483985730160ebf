// (handler) API Gateway REST proxy → the runs API. Routes, parses, calls the core, maps the result.

import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import openApiDocument from '../../docs/openapi.json' with { type: 'json' };
import { appendLeads } from '../core/append-leads.ts';
import { type CreateRunDeps, createRun } from '../core/create-run.ts';
import { csvRequest } from '../core/csv-leads.ts';
import { UnsupportedMediaTypeError, ValidationError } from '../core/errors.ts';
import { getRunView } from '../core/get-run.ts';
import type { LeadLocator } from '../core/leads.ts';
import { listCalls, listRuns } from '../core/listings.ts';
import { type Log, type RunStore, systemClock } from '../core/ports.ts';
import { type ControlAction, controlRun } from '../core/run-controls.ts';
import {
  deleteSuppression,
  getSuppression,
  importSuppressions,
  listSuppressions,
  putSuppression,
  type SuppressionDeps,
} from '../core/suppressions.ts';
import { ENV, readEnv } from '../definitions/environment.ts';
import { ID_CHARS } from '../definitions/formats.ts';
import { phoneSettingProblems } from '../definitions/phone-numbers.ts';
import { serviceName } from '../definitions/resources.ts';
import { eventBody } from './body.ts';
import { errorResponse, header, json, parseJsonBody, toErrorResponse } from './http.ts';
import { runStore, workQueue } from './wiring.ts';

const logger = new Logger({ serviceName: serviceName('api') });

type ApiDeps = CreateRunDeps & SuppressionDeps & { store: RunStore; log: Log };

let deps: ApiDeps | undefined;
function wire(): ApiDeps {
  const env = readEnv([
    'TABLE_NAME',
    'QUEUE_URL',
    'DEFAULT_CONCURRENCY',
    'MAX_CONCURRENCY',
    'MAX_LEADS_PER_RUN',
    'ALLOWED_FROM_NUMBERS',
    'TWIML_URL_ALLOWED_PREFIXES',
    'MAX_TWIML_BYTES',
    'DEFAULT_COUNTRY',
    'ALLOWED_PHONE_TYPES',
  ]);
  // The deployment's own caller id is always allowed; the API needs it only for that.
  const defaultFrom = ENV.TWILIO_FROM_NUMBER.optional().parse(process.env.TWILIO_FROM_NUMBER);
  // The form of each setting is checked above; their validity needs the phone metadata, loaded here only.
  const problems = phoneSettingProblems({
    fromNumbers: [
      ...(defaultFrom ? [{ name: 'TWILIO_FROM_NUMBER', value: defaultFrom }] : []),
      ...env.ALLOWED_FROM_NUMBERS.map((value, i) => ({ name: `ALLOWED_FROM_NUMBERS[${i}]`, value })),
    ],
    defaultCountry: { name: 'DEFAULT_COUNTRY', value: env.DEFAULT_COUNTRY },
  });
  if (problems.length > 0) throw new Error(`Invalid configuration: ${problems.join('; ')}`);
  return {
    store: runStore(env),
    queue: workQueue(env),
    clock: systemClock,
    limits: {
      defaultConcurrency: env.DEFAULT_CONCURRENCY,
      maxConcurrency: env.MAX_CONCURRENCY,
      maxLeads: env.MAX_LEADS_PER_RUN,
    },
    policy: {
      allowedFrom: [...(defaultFrom ? [defaultFrom] : []), ...env.ALLOWED_FROM_NUMBERS],
      twimlUrlPrefixes: env.TWIML_URL_ALLOWED_PREFIXES,
      maxTwimlBytes: env.MAX_TWIML_BYTES,
      defaultCountry: env.DEFAULT_COUNTRY,
      allowedPhoneTypes: env.ALLOWED_PHONE_TYPES,
    },
    newRunId: randomUUID,
    log: logger,
    defaultCountry: env.DEFAULT_COUNTRY,
  };
}

/** A suppression's optional JSON body: none (or an empty one) is no details. */
function optionalJsonBody(event: APIGatewayProxyEvent): unknown {
  if (eventBody(event).trim() === '') return undefined;
  return parseJsonBody(event);
}

/** A body of leads as JSON, or as CSV (`text/csv`; for a new run, options in the query string). */
function leadsBody(
  event: APIGatewayProxyEvent,
  runOptions: boolean,
): { body: unknown; locate?: LeadLocator } {
  const contentType = header(event, 'content-type') ?? '';
  if (/^text\/csv\b/i.test(contentType))
    return csvRequest(eventBody(event), event.queryStringParameters, { runOptions });
  if (!/^application\/json\b/i.test(contentType)) {
    // A form upload (curl -F, curl -d's default type) is the usual mistake: say what works instead.
    const form = /^(multipart\/form-data|application\/x-www-form-urlencoded)\b/i.test(contentType);
    throw new UnsupportedMediaTypeError(
      `Send the leads as text/csv or application/json (got "${contentType || 'none'}").` +
        (form ? " For a CSV file: curl --data-binary @leads.csv -H 'content-type: text/csv'." : ''),
    );
  }
  // A JSON body carries its options in the body; a query parameter beside it would be ignored.
  refuseQuery(event, []);
  return { body: parseJsonBody(event) };
}

/** Refuses any query parameter a route does not read: a misspelt one must not pass silently. */
function refuseQuery(event: APIGatewayProxyEvent, known: readonly string[]): void {
  const unknown = Object.keys(event.queryStringParameters ?? {}).filter((name) => !known.includes(name));
  if (unknown.length === 0) return;
  const expected =
    known.length === 0 ? 'this request takes no query parameters' : `expected ${known.join(', ')}`;
  throw new ValidationError('Unknown query parameter(s); nothing was done.', [
    ...unknown.map((field) => ({ field, message: `unknown query parameter; ${expected}` })),
  ]);
}

function booleanParameter(event: APIGatewayProxyEvent, name: string): boolean {
  const value = event.queryStringParameters?.[name];
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw new ValidationError(`"${name}" must be true or false.`, [
    { field: name, message: 'expected true or false' },
  ]);
}

const RUN_ID = `(${ID_CHARS})`;
/** A phone number in a path: E.164 with its `+` (or `%2B`), or a national number with DEFAULT_COUNTRY. */
const PHONE = '([^/]{1,64})';

type Route = {
  method: string;
  path: RegExp;
  /** The query parameters the route reads; undefined: the route checks its own (a CSV upload's options). */
  query?: readonly string[];
  run: (event: APIGatewayProxyEvent, deps: ApiDeps, params: string[]) => Promise<APIGatewayProxyResult>;
};

const ROUTES: Route[] = [
  {
    // The API's contract, generated from its schemas (npm run openapi) and bundled with the function.
    method: 'GET',
    path: /^\/openapi\.json$/,
    run: async () => json(200, openApiDocument),
  },
  {
    method: 'POST',
    path: /^\/runs\/?$/,
    run: async (event, deps) => {
      const { body, locate } = leadsBody(event, true);
      const view = await createRun(deps, body, {
        idempotencyKey: header(event, 'idempotency-key'),
        ...(locate ? { locate } : {}),
      });
      logger.info('run created', {
        runId: view.run_id,
        leads: view.total_leads,
        concurrency: view.concurrency,
      });
      return json(202, {
        run_id: view.run_id,
        status: view.status,
        total_leads: view.total_leads,
        concurrency: view.concurrency,
      });
    },
  },
  {
    method: 'GET',
    path: /^\/runs\/?$/,
    query: ['limit', 'cursor'],
    run: async (event, deps) => json(200, await listRuns(deps.store, event.queryStringParameters)),
  },
  {
    method: 'GET',
    path: new RegExp(`^/runs/${RUN_ID}/?$`),
    query: [],
    run: async (_event, deps, [runId]) => json(200, await getRunView(deps.store, runId!)),
  },
  {
    method: 'POST',
    path: new RegExp(`^/runs/${RUN_ID}/(pause|resume|cancel)/?$`),
    run: async (event, deps, [runId, action]) => {
      refuseQuery(event, action === 'cancel' ? ['hangup'] : []);
      const hangup = action === 'cancel' && booleanParameter(event, 'hangup');
      return json(200, await controlRun(deps, runId!, action as ControlAction, { hangup }));
    },
  },
  {
    method: 'POST',
    path: new RegExp(`^/runs/${RUN_ID}/leads/?$`),
    run: async (event, deps, [runId]) => {
      const { body, locate } = leadsBody(event, false);
      const result = await appendLeads(deps, runId!, body, {
        idempotencyKey: header(event, 'idempotency-key'),
        ...(locate ? { locate } : {}),
      });
      deps.log.info('leads appended', { runId, leads: result.appended });
      return json(202, { ...result.run, appended: result.appended, first_job_id: result.first_job_id });
    },
  },
  {
    method: 'GET',
    path: new RegExp(`^/runs/${RUN_ID}/calls/?$`),
    query: ['status', 'outcome', 'limit', 'cursor', 'reveal_phone'],
    run: async (event, deps, [runId]) =>
      json(200, await listCalls(deps.store, runId!, event.queryStringParameters)),
  },
  {
    method: 'GET',
    path: /^\/suppressions\/?$/,
    query: ['limit', 'cursor', 'prefix'],
    run: async (event, deps) => json(200, await listSuppressions(deps, event.queryStringParameters)),
  },
  {
    // The bulk import: a CSV file, every row or none.
    method: 'POST',
    path: /^\/suppressions\/?$/,
    query: [],
    run: async (event, deps) => {
      const contentType = header(event, 'content-type') ?? '';
      if (!/^text\/csv\b/i.test(contentType))
        throw new UnsupportedMediaTypeError(
          `Send the numbers as text/csv with a "phone" column (got "${contentType || 'none'}").`,
        );
      const result = await importSuppressions(deps, eventBody(event));
      deps.log.info('suppressions imported', { numbers: result.imported });
      return json(200, result);
    },
  },
  {
    method: 'PUT',
    path: new RegExp(`^/suppressions/${PHONE}/?$`),
    query: [],
    run: async (event, deps, [phone]) => {
      const view = await putSuppression(deps, phone!, optionalJsonBody(event));
      deps.log.info('number suppressed', { reason: view.reason });
      return json(200, view);
    },
  },
  {
    method: 'GET',
    path: new RegExp(`^/suppressions/${PHONE}/?$`),
    query: [],
    run: async (_event, deps, [phone]) => json(200, await getSuppression(deps, phone!)),
  },
  {
    method: 'DELETE',
    path: new RegExp(`^/suppressions/${PHONE}/?$`),
    query: [],
    run: async (_event, deps, [phone]) => {
      await deleteSuppression(deps, phone!);
      deps.log.info('suppression removed');
      return { statusCode: 204, headers: {}, body: '' };
    },
  },
];

export async function route(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  const matching = ROUTES.map((r) => ({ r, match: r.path.exec(event.path) })).filter((m) => m.match !== null);
  if (matching.length === 0) return errorResponse(404, 'not_found', `No route for ${event.path}.`);
  const found = matching.find((m) => m.r.method === event.httpMethod);
  if (!found)
    return errorResponse(405, 'method_not_allowed', `${event.httpMethod} is not allowed on ${event.path}.`);
  try {
    if (found.r.query) refuseQuery(event, found.r.query);
    deps ??= wire();
    return await found.r.run(event, deps, found.match!.slice(1));
  } catch (error) {
    return toErrorResponse(error, logger);
  }
}

export const handler = middy(route).use(injectLambdaContext(logger));
