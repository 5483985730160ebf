// (handler support) HTTP for the API: JSON responses, body parsing, and the one place where the
// core's named errors become status codes. A stack or an internal message never reaches a client.

import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import {
  ConflictError,
  type ErrorDetail,
  IdempotencyKeyReusedError,
  NotFoundError,
  PayloadTooLargeError,
  QueueingIncompleteError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../core/errors.ts';
import type { Log } from '../core/ports.ts';
import { eventBody } from './body.ts';

export function json(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

export function errorResponse(
  statusCode: number,
  code: string,
  message: string,
  details: ErrorDetail[] = [],
) {
  return json(statusCode, { error: { code, message, details } });
}

export function toErrorResponse(error: unknown, log: Log): APIGatewayProxyResult {
  if (error instanceof ValidationError)
    return errorResponse(400, 'invalid_request', error.message, error.details);
  if (error instanceof PayloadTooLargeError)
    return errorResponse(413, 'payload_too_large', error.message, error.details);
  if (error instanceof UnsupportedMediaTypeError)
    return errorResponse(415, 'unsupported_media_type', error.message);
  if (error instanceof NotFoundError) return errorResponse(404, 'not_found', error.message);
  if (error instanceof ConflictError) return errorResponse(409, 'conflict', error.message);
  if (error instanceof IdempotencyKeyReusedError)
    return errorResponse(422, 'idempotency_key_reused', error.message);
  if (error instanceof QueueingIncompleteError) {
    log.error('leads not all queued', {
      runId: error.runId,
      queued: error.queuedLeads,
      leads: error.leads,
      error,
    });
    // 503 with Retry-After: the request may be sent again as it was; the body says what exists.
    return json(
      503,
      {
        error: {
          code: 'queueing_incomplete',
          message: error.message,
          details: [],
          run_id: error.runId,
          queued_leads: error.queuedLeads,
          leads: error.leads,
          retryable: error.retryable,
        },
      },
      { 'retry-after': '1' },
    );
  }
  log.error('request failed', { error });
  return errorResponse(
    500,
    'internal_error',
    'Something went wrong on our side; nothing was lost, try again.',
  );
}

export function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === wanted && value !== undefined) return value;
  }
  return undefined;
}

/** Parses a JSON body, refusing other media types and malformed JSON with the reason. */
export function parseJsonBody(event: APIGatewayProxyEvent): unknown {
  const contentType = header(event, 'content-type') ?? '';
  if (!/^application\/json\b/i.test(contentType)) {
    throw new UnsupportedMediaTypeError(
      `Send the body as application/json (got "${contentType || 'none'}").`,
    );
  }
  const text = eventBody(event);
  if (text.trim() === '') {
    throw new ValidationError('The request body is empty.', [
      { field: 'body', message: 'expected a JSON object' },
    ]);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ValidationError('The request body is not valid JSON.', [
      { field: 'body', message: (error as Error).message },
    ]);
  }
}
