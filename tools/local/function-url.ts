// The local stand-in for a Lambda Function URL: its own origin (port), requests turned into payload
// format 2.0 events exactly as AWS shapes them — lower-cased headers, the raw path and query string
// (Twilio signs the exact URL), and form bodies base64-encoded.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { checkHost, serverHosts } from './caller-guard.ts';
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
import type { LocalFunction } from './lambda-runtime.ts';
import type { RunningHttp } from './rest-api.ts';

/** Lambda's synchronous invocation payload limit. */
const MAX_BODY_BYTES = 6 * 1024 * 1024;
const URL_ID = 'local-webhook';

export interface FunctionUrlOptions {
  /** A promise while the handler is still loading: the server must listen first (its URL is config). */
  fn:
    | LocalFunction<APIGatewayProxyEventV2, APIGatewayProxyResultV2>
    | Promise<LocalFunction<APIGatewayProxyEventV2, APIGatewayProxyResultV2>>;
  port: number;
  host: string;
  onError?: (error: unknown) => void;
}

export function toFunctionUrlEvent(req: IncomingMessage, body: Buffer): APIGatewayProxyEventV2 {
  const { rawPath, rawQueryString } = splitUrl(req.url);
  const now = new Date();
  const requestId = randomUUID();

  // Repeated headers are joined with commas; cookies travel apart from the headers.
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (const [name, value] of rawHeaderPairs(req)) {
    const key = name.toLowerCase();
    if (key === 'cookie') {
      cookies.push(...value.split(/;\s*/).filter(Boolean));
      continue;
    }
    headers[key] = headers[key] === undefined ? value : `${headers[key]},${value}`;
  }
  const port = (req.headers.host ?? '').split(':')[1] ?? '80';
  // Set by the Function URL itself, whatever the client sent: the webhook rebuilds the signed URL from them.
  headers['x-forwarded-proto'] = 'http';
  headers['x-forwarded-port'] = port;
  headers['x-forwarded-for'] ??= sourceIp(req);
  headers['x-amzn-trace-id'] ??=
    `Root=1-${Math.floor(now.getTime() / 1000).toString(16)}-${requestId.replaceAll('-', '').slice(0, 24)}`;

  const queryStringParameters: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(rawQueryString)) {
    queryStringParameters[name] =
      queryStringParameters[name] === undefined ? value : `${queryStringParameters[name]},${value}`;
  }

  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString,
    headers,
    requestContext: {
      accountId: 'anonymous',
      apiId: URL_ID,
      domainName: headers.host ?? `${URL_ID}.lambda-url.local`,
      domainPrefix: URL_ID,
      http: {
        method: req.method ?? 'GET',
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: sourceIp(req),
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: '$default',
      stage: '$default',
      time: functionUrlTime(now),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: false,
  };
  if (cookies.length > 0) event.cookies = cookies;
  if (Object.keys(queryStringParameters).length > 0) event.queryStringParameters = queryStringParameters;
  if (body.length > 0) Object.assign(event, encodeBody(body, headers['content-type']));
  return event;
}

/** `12/Mar/2020:19:03:58 +0000`. */
function functionUrlTime(date: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${pad(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`
  );
}

/**
 * As Lambda reads a Function URL result: an object with `statusCode` is a structured response;
 * anything else is the JSON body of a 200.
 */
export function fromFunctionUrlResult(result: APIGatewayProxyResultV2 | undefined): HttpResult {
  if (typeof result === 'object' && result !== null && 'statusCode' in result) {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(result.headers ?? {}))
      headers[name.toLowerCase()] = String(value);
    if (result.cookies?.length) headers['set-cookie'] = result.cookies;
    const text = result.body ?? '';
    return {
      statusCode: result.statusCode ?? 200,
      headers,
      body: Buffer.from(text, result.isBase64Encoded ? 'base64' : 'utf8'),
    };
  }
  if (result === undefined) return { statusCode: 200, headers: {}, body: Buffer.alloc(0) };
  const body = typeof result === 'string' ? result : JSON.stringify(result);
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(body) };
}

export async function startFunctionUrl(options: FunctionUrlOptions): Promise<RunningHttp> {
  let hosts: Set<string> | undefined;
  const server = createServer(async (req, res) => {
    // As in AWS, where a Function URL is reached by its own name only: a request naming another host
    // (DNS rebinding) never reaches the function. Origins are not checked: the webhook's callers are
    // Twilio's servers (the simulator here, which names this server as WEBHOOK_URL does), and every
    // callback must carry Twilio's signature, which no web page can make.
    hosts ??= serverHosts(server, options.host);
    const refused = checkHost(req, hosts);
    if (refused) {
      req.resume();
      sendResult(res, refused);
      return;
    }
    let result: HttpResult;
    try {
      const event = toFunctionUrlEvent(req, await readBody(req, MAX_BODY_BYTES));
      result = fromFunctionUrlResult(await (await options.fn).invoke(event));
      result.headers['x-amzn-requestid'] = event.requestContext.requestId;
    } catch (error) {
      if (error instanceof PayloadTooLargeError) {
        result = jsonResult(413, {
          Message: 'Request must be smaller than 6291456 bytes for the InvokeFunction operation',
        });
      } else {
        // Lambda answers a failed invocation with a bare 502; Twilio will retry the callback.
        options.onError?.(error);
        result = jsonResult(502, { Message: 'Internal Server Error' });
      }
    }
    sendResult(res, result);
  });
  const url = await listen(server, options.port, options.host);
  return { url: `${url}/`, server, stop: () => closeServer(server) };
}
