// (local) What keeps web pages out of the local stack. Without API_KEY nothing authenticates a request,
// and the browser of the developer running `npm start` can reach 127.0.0.1 from any page it opens:
//
// - Cross-site requests. A page on evil.example can send a "simple" POST (no body, or a form) to
//   http://127.0.0.1:3000/runs/<id>/cancel: no preflight, so the request runs although the page never
//   sees the answer. State-changing requests (POST, PUT, PATCH, DELETE) are therefore refused when the
//   browser says they come from elsewhere: `Sec-Fetch-Site` other than `same-origin` (the console) or
//   `none` (typed by the user), or an `Origin` that is not the local API's own. Browsers send at least one
//   of the two with every POST; the CLI, curl and scripts send neither and are not browsers, so they pass.
// - DNS rebinding. A page on evil.example whose name then resolves to 127.0.0.1 is same-origin with
//   itself, so the checks above pass and it can read what it likes (`calls?reveal_phone=true`). What
//   gives it away is the Host header, which still names evil.example: every request must name this
//   server as it is reached on this machine — a loopback name (localhost, 127.0.0.1, [::1]) or the
//   address it listens on, with its port.
//
// Refusals are 403 with the API's error shape. In AWS neither applies: API Gateway and the Function URL
// are reached by their own names only, and the API checks IAM signatures or a key a page cannot send
// without a preflight the API never grants (it answers no CORS).

import type { IncomingMessage, Server } from 'node:http';
import { type HttpResult, jsonResult } from './http-bridge.ts';

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
/** Addresses that mean "every interface": they name no host a request could carry. */
const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** What a browser says of a request a page of this origin made, or one the user made by hand. */
const OWN_FETCH_SITES = new Set(['same-origin', 'none']);

/**
 * The Host values a server answers to: each loopback name, and the address it listens on unless that is
 * a wildcard, with the port it listens on (also without it on port 80, as clients write it there).
 */
export function serverHosts(server: Server, listenHost: string): Set<string> {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server is not listening on a port');
  const own = listenHost.includes(':') && !listenHost.startsWith('[') ? `[${listenHost}]` : listenHost;
  const names = new Set([...LOOPBACK_NAMES, ...(WILDCARDS.has(own) ? [] : [own.toLowerCase()])]);
  const hosts = new Set<string>();
  for (const name of names) {
    hosts.add(`${name}:${address.port}`);
    if (address.port === 80) hosts.add(name);
  }
  return hosts;
}

function forbidden(message: string): HttpResult {
  return jsonResult(403, { error: { code: 'forbidden', message, details: [] } });
}

/** A 403 unless the request's Host header is one of `hosts` (see the top of this file: DNS rebinding). */
export function checkHost(req: IncomingMessage, hosts: ReadonlySet<string>): HttpResult | undefined {
  const host = req.headers.host?.toLowerCase();
  if (host !== undefined && hosts.has(host)) return undefined;
  return forbidden(
    `The Host header does not name this server: the local stack answers only to ${[...hosts]
      .map((name) => `http://${name}`)
      .join(', ')}, so that a web page reaching it under another name (DNS rebinding) is refused.`,
  );
}

/**
 * A 403 for a state-changing request a browser made for another site (see the top of this file). Runs
 * after checkHost, so the request's own origin is `http://` and its Host.
 */
export function checkSameOrigin(req: IncomingMessage): HttpResult | undefined {
  if (!STATE_CHANGING.has(req.method ?? '')) return undefined;
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  const crossSite = site !== undefined && !OWN_FETCH_SITES.has(site.toLowerCase());
  const otherOrigin =
    origin !== undefined && origin.toLowerCase() !== `http://${req.headers.host?.toLowerCase()}`;
  if (!crossSite && !otherOrigin) return undefined;
  return forbidden(
    `${req.method} from another site is refused (${otherOrigin ? 'Origin' : 'Sec-Fetch-Site'} says so): ` +
      'the local stack changes runs only for its own pages (the console, same origin) and for clients ' +
      'that are not browsers (the CLI, curl, scripts).',
  );
}
