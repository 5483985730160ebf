// (local) Serves the web console's static files (clients/console/site) from the local API's port:
// `/` is the page and `/console/*` its scripts and styles, so the page calls the API on its own
// origin, as it does behind CloudFront in AWS. The files are public; the data behind them is not
// (the page sends the API key it is given with every API call).

import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  CONSOLE_PACKAGE_FILES,
  CONSOLE_SECURITY_HEADERS,
  CONSOLE_SITE_DIR,
  REFERENCE_PAGE,
  REFERENCE_SECURITY_HEADERS,
} from './site-definition.ts';

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
};

/**
 * The file (relative to the site folder) a console path names, or undefined when the path is not the
 * console's. The site folder is laid out as it is served, and as CloudFront serves it from S3.
 */
export function consoleFile(path: string): string | undefined {
  if (path === '/' || path === '/index.html') return 'index.html';
  if (path === `/${REFERENCE_PAGE}`) return REFERENCE_PAGE;
  if (path.slice(1) in CONSOLE_PACKAGE_FILES) return path.slice(1);
  // One flat folder of known file types: no `..`, no dot files, nothing else on disk is reachable.
  const match = /^\/console\/([a-z0-9][a-z0-9-]*\.([a-z]+))$/.exec(path);
  if (match && match[2]! in TYPES) return `console/${match[1]}`;
  return undefined;
}

/** Answers GET/HEAD for the console's paths and returns true; leaves every other request alone. */
export async function serveConsole(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const path = (req.url ?? '/').split('?')[0]!;
  const name = consoleFile(path);
  if (name === undefined) return false;
  req.resume();
  let body: Buffer;
  try {
    body = await readFile(CONSOLE_PACKAGE_FILES[name] ?? `${CONSOLE_SITE_DIR}${name}`);
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found\n');
    return true;
  }
  res.writeHead(200, {
    ...(name === REFERENCE_PAGE ? REFERENCE_SECURITY_HEADERS : CONSOLE_SECURITY_HEADERS),
    'content-type': TYPES[name.split('.').pop()!]!,
    'content-length': body.length,
    // Always revalidated: a new version of the console shows up on the next load.
    'cache-control': 'no-cache',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
