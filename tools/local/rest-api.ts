// The local stand-in for API Gateway (REST API, Lambda proxy integration): each HTTP request becomes an
// APIGatewayProxyEvent for the api handler, and its result becomes the HTTP response. API_KEY plays
// the part of API Gateway's API-key check; with or without it, web pages other than the console are
// kept out (caller-guard.ts: Host on every request, the caller's site on state-changing ones).

import { randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { serveConsole } from '../../clients/console/serve.ts';
import { OPENAPI_PATH, PUBLIC_ROUTES } from '../../lambdas/definitions/public-routes.ts';
import { checkHost, checkSameOrigin, serverHosts } from './caller-guard.ts';
import {
  closeServer,
  encodeBody,
  type HttpResult,
  jsonResult,
  listen,
  PayloadTooLargeError,
  rawHeaderPairs,
  readBody,
  sendResult,
  sourceIp,
  splitUrl,
} from './http-bridge.ts';
import { LOCAL_ACCOUNT_ID, type LocalFunction } from './lambda-runtime.ts';

/**
 * The API's resources, as API Gateway would match them: literal segments win over `{params}`, and a
 * path matching none is handed over as `/{proxy+}` so that the handler's own router answers 404/405.
 */
export const API_RESOURCES = [
  '/runs',
  '/runs/{run_id}',
  '/runs/{run_id}/{action}',
  '/suppressions',
  '/suppressions/{phone}',
  OPENAPI_PATH,
] as const;

/** API Gateway's payload limit for REST APIs. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;
const API_ID = 'local';

export interface RestApiOptions {
  /** A promise while the handler is still loading: the server must listen first (its URL is config). */
  fn:
    | LocalFunction<APIGatewayProxyEvent, APIGatewayProxyResult>
    | Promise<LocalFunction<APIGatewayProxyEvent, APIGatewayProxyResult>>;
  port: number;
  host: string;
  stage: string;
  /** When set, every request must carry it in `x-api-key`. */
  apiKey?: string | undefined;
  /** A reason while the API cannot work (a backend died): requests get a 503 naming it. */
  unavailable?: () => string | undefined;
  onError?: (error: unknown) => void;
}

export interface RunningHttp {
  url: string;
  server: Server;
  stop(): Promise<void>;
}

export function matchResource(path: string): {
  resource: string;
  pathParameters: Record<string, string> | null;
} {
  const segments = path.split('/').filter(Boolean);
  let best: { resource: string; params: Record<string, string>; literals: number } | undefined;
  for (const resource of API_RESOURCES) {
    const template = resource.split('/').filter(Boolean);
    if (template.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let literals = 0;
    const matches = template.every((part, i) => {
      const segment = segments[i]!;
      if (part.startsWith('{')) {
        params[part.slice(1, -1)] = safeDecode(segment);
        return true;
      }
      literals += 1;
      return part === segment;
    });
    if (matches && (!best || literals > best.literals)) best = { resource, params, literals };
  }
  if (best)
    return { resource: best.resource, pathParameters: Object.keys(best.params).length ? best.params : null };
  return { resource: '/{proxy+}', pathParameters: { proxy: segments.map(safeDecode).join('/') } };
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

export function toApiGatewayEvent(req: IncomingMessage, body: Buffer, stage: string): APIGatewayProxyEvent {
  const { rawPath, rawQueryString } = splitUrl(req.url);
  const path = safeDecode(rawPath);
  const { resource, pathParameters } = matchResource(rawPath);

  // API Gateway keeps the header names' case; `headers` holds the last value, `multiValueHeaders` all.
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  const pairs = rawHeaderPairs(req);
  const host = req.headers.host ?? '127.0.0.1';
  const extra: [string, string][] = [
    ['X-Forwarded-For', sourceIp(req)],
    ['X-Forwarded-Proto', 'http'],
    ['X-Forwarded-Port', host.split(':')[1] ?? '80'],
  ];
  // API Gateway sets these itself, whatever the client sent.
  const own = new Set(extra.map(([name]) => name.toLowerCase()));
  for (const [name, value] of [...pairs.filter(([name]) => !own.has(name.toLowerCase())), ...extra]) {
    headers[name] = value;
    multiValueHeaders[name] = [...(multiValueHeaders[name] ?? []), value];
  }

  const query = new URLSearchParams(rawQueryString);
  const queryStringParameters: Record<string, string> = {};
  const multiValueQueryStringParameters: Record<string, string[]> = {};
  for (const [name, value] of query) {
    queryStringParameters[name] = value;
    multiValueQueryStringParameters[name] = [...(multiValueQueryStringParameters[name] ?? []), value];
  }
  const hasQuery = Object.keys(queryStringParameters).length > 0;

  const now = new Date();
  const requestId = randomUUID();
  const apiKey = req.headers['x-api-key'];
  const encoded = body.length > 0 ? encodeBody(body, req.headers['content-type']) : undefined;
  return {
    resource,
    path,
    httpMethod: req.method ?? 'GET',
    headers,
    multiValueHeaders,
    queryStringParameters: hasQuery ? queryStringParameters : null,
    multiValueQueryStringParameters: hasQuery ? multiValueQueryStringParameters : null,
    pathParameters,
    stageVariables: null,
    requestContext: {
      accountId: LOCAL_ACCOUNT_ID,
      apiId: API_ID,
      authorizer: null,
      protocol: `HTTP/${req.httpVersion}`,
      httpMethod: req.method ?? 'GET',
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: typeof apiKey === 'string' ? apiKey : null,
        apiKeyId: typeof apiKey === 'string' ? 'local-api-key' : null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: sourceIp(req),
        user: null,
        userAgent: req.headers['user-agent'] ?? null,
        userArn: null,
      },
      domainName: host,
      domainPrefix: API_ID,
      extendedRequestId: requestId,
      path: `/${stage}${rawPath}`,
      stage,
      requestId,
      requestTime: apiGatewayTime(now),
      requestTimeEpoch: now.getTime(),
      resourceId: resource,
      resourcePath: resource,
    },
    body: encoded?.body ?? null,
    isBase64Encoded: encoded?.isBase64Encoded ?? false,
  };
}

/** `09/Apr/2015:12:34:56 +0000`, API Gateway's requestTime format. */
function apiGatewayTime(date: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${pad(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`
  );
}

/** API Gateway's answer when the integration's result is not a proxy response. */
const BAD_GATEWAY = jsonResult(502, { message: 'Internal server error' });

export function fromProxyResult(result: unknown): HttpResult {
  if (typeof result !== 'object' || result === null) return BAD_GATEWAY;
  const { statusCode, headers, multiValueHeaders, body, isBase64Encoded } =
    result as Partial<APIGatewayProxyResult>;
  if (typeof statusCode !== 'number') return BAD_GATEWAY;
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers ?? {})) out[name] = String(value);
  for (const [name, values] of Object.entries(multiValueHeaders ?? {})) out[name] = values.map(String);
  const text = body ?? '';
  return { statusCode, headers: out, body: Buffer.from(text, isBase64Encoded ? 'base64' : 'utf8') };
}

function checkApiKey(req: IncomingMessage, expected: string | undefined): HttpResult | undefined {
  if (expected === undefined) return undefined;
  // Methods that the CDK app deploys without authorization take no key here either.
  const path = splitUrl(req.url).rawPath;
  if (PUBLIC_ROUTES.some((route) => route.method === req.method && route.path === path)) return undefined;
  const given = req.headers['x-api-key'];
  if (typeof given !== 'string' || given === '') {
    return jsonResult(401, {
      error: { code: 'unauthorized', message: 'Send your API key in x-api-key.', details: [] },
    });
  }
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    return jsonResult(403, {
      error: { code: 'forbidden', message: 'The API key is not valid.', details: [] },
    });
  }
  return undefined;
}

export async function startRestApi(options: RestApiOptions): Promise<RunningHttp> {
  let hosts: Set<string> | undefined;
  const server = createServer(async (req, res) => {
    // Web pages are kept out first, whatever the request (caller-guard.ts).
    hosts ??= serverHosts(server, options.host);
    const refused = checkHost(req, hosts) ?? checkSameOrigin(req);
    if (refused) {
      req.resume();
      sendResult(res, refused);
      return;
    }
    // The web console's static files (`/`, `/console/*`): public, like the site CloudFront serves in AWS.
    if (await serveConsole(req, res)) return;
    let result: HttpResult;
    const denied = checkApiKey(req, options.apiKey);
    const down = options.unavailable?.();
    try {
      if (denied) {
        req.resume();
        result = denied;
      } else if (down !== undefined) {
        req.resume();
        result = jsonResult(503, { error: { code: 'backend_down', message: down, details: [] } });
      } else {
        const body = await readBody(req, MAX_BODY_BYTES);
        const event = toApiGatewayEvent(req, body, options.stage);
        result = fromProxyResult(await (await options.fn).invoke(event));
        result.headers['x-amzn-RequestId'] = event.requestContext.requestId;
      }
    } catch (error) {
      if (error instanceof PayloadTooLargeError) {
        result = jsonResult(413, { message: 'Request Too Long' });
      } else {
        // A throwing handler (or a timeout) is a 502 from API Gateway too; the detail is for the log only.
        options.onError?.(error);
        result = BAD_GATEWAY;
      }
    }
    sendResult(res, result);
  });
  const url = await listen(server, options.port, options.host);
  return { url, server, stop: () => closeServer(server) };
}
