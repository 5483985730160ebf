// Builders for the events AWS hands our handlers, for tests that invoke a handler directly.

import type { APIGatewayProxyEvent } from 'aws-lambda';

export function apiEvent(
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): APIGatewayProxyEvent {
  const runId = /^\/runs\/([^/]+)/.exec(path)?.[1];
  return {
    httpMethod: method,
    path,
    resource: runId ? '/runs/{run_id}' : '/runs',
    pathParameters: runId ? { run_id: runId } : null,
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    headers,
    multiValueHeaders: {},
    body: body ?? null,
    isBase64Encoded: false,
    stageVariables: null,
    requestContext: {} as APIGatewayProxyEvent['requestContext'],
  };
}
