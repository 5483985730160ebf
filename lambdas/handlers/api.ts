// (handler) API Gateway REST proxy → the runs API. Routes, parses, calls the core, maps the result.

import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { serviceName } from '../../lib/resources.ts';
import { makeDynamoClient, makeSqsClient } from '../adapters/aws-clients.ts';
import { readEnv } from '../adapters/config.ts';
import { DynamoRunStore } from '../adapters/dynamo-run-store.ts';
import { SqsWorkQueue } from '../adapters/sqs-work-queue.ts';
import { type CreateRunDeps, createRun } from '../core/create-run.ts';
import { getRunView } from '../core/get-run.ts';
import { systemClock } from '../core/ports.ts';
import { errorResponse, header, json, parseJsonBody, toErrorResponse } from './http.ts';

const logger = new Logger({ serviceName: serviceName('api') });

let deps: CreateRunDeps | undefined;
function wire(): CreateRunDeps {
  const env = readEnv([
    'TABLE_NAME',
    'QUEUE_URL',
    'DEFAULT_CONCURRENCY',
    'MAX_CONCURRENCY',
    'MAX_LEADS_PER_RUN',
  ]);
  return {
    store: new DynamoRunStore(makeDynamoClient(), { tableName: env.TABLE_NAME }),
    queue: new SqsWorkQueue(makeSqsClient(), env.QUEUE_URL),
    clock: systemClock,
    limits: {
      defaultConcurrency: env.DEFAULT_CONCURRENCY,
      maxConcurrency: env.MAX_CONCURRENCY,
      maxLeads: env.MAX_LEADS_PER_RUN,
    },
    newRunId: randomUUID,
  };
}

type Route = {
  method: string;
  path: RegExp;
  run: (event: APIGatewayProxyEvent, deps: CreateRunDeps, params: string[]) => Promise<APIGatewayProxyResult>;
};

const ROUTES: Route[] = [
  {
    method: 'POST',
    path: /^\/runs\/?$/,
    run: async (event, deps) => {
      const view = await createRun(deps, parseJsonBody(event), {
        idempotencyKey: header(event, 'idempotency-key'),
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
    path: /^\/runs\/([A-Za-z0-9_-]{1,64})\/?$/,
    run: async (_event, deps, [runId]) => json(200, await getRunView(deps.store, runId!)),
  },
];

export async function route(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  const matching = ROUTES.map((r) => ({ r, match: r.path.exec(event.path) })).filter((m) => m.match !== null);
  if (matching.length === 0) return errorResponse(404, 'not_found', `No route for ${event.path}.`);
  const found = matching.find((m) => m.r.method === event.httpMethod);
  if (!found)
    return errorResponse(405, 'method_not_allowed', `${event.httpMethod} is not allowed on ${event.path}.`);
  try {
    deps ??= wire();
    return await found.r.run(event, deps, found.match!.slice(1));
  } catch (error) {
    return toErrorResponse(error, logger);
  }
}

export const handler = middy(route).use(injectLambdaContext(logger));
