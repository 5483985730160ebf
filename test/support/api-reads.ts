// Reads through the real API handler (`route`), for tests that run dialgate's core by hand
// (policy-harness.ts): what a client would see, numbers revealed so that the test can match them.

import type { APIGatewayProxyEvent } from 'aws-lambda';
import { expect } from 'vitest';
import type { CallView } from '../../lambdas/core/listings.ts';
import { route } from '../../lambdas/handlers/api.ts';
import { apiEvent } from './events.ts';

/** GET /runs/{id}/calls (first 100, whole numbers): each lead's latest attempt. */
export async function listCalls(runId: string): Promise<CallView[]> {
  const event: APIGatewayProxyEvent = {
    ...apiEvent('GET', `/runs/${runId}/calls`),
    queryStringParameters: { limit: '100', reveal_phone: 'true' },
  };
  const res = await route(event);
  expect(res.statusCode).toBe(200);
  return JSON.parse(res.body).calls;
}
