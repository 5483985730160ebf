// Where the web console's static files are and the headers they are served with: read by the local
// dev server (serve.ts) and by the CDK construct that deploys the site, so both serve it alike.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const CONSOLE_SITE_DIR = fileURLToPath(new URL('./site/', import.meta.url));

/** What a browser may do with the page: its own scripts only, API calls to any http(s) origin. */
export const CONSOLE_SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self' https: http:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** The API reference page, rendered by Redoc. */
export const REFERENCE_PAGE = 'reference.html';

/**
 * The reference page's headers: the console's, except that styles may be inline, because Redoc (with
 * styled-components) writes its styles into <style> elements at run time, and fonts may be data: URLs
 * (its icons). Scripts stay this origin's only; the page shows the public API document alone, neither
 * reads nor sends the API key, and connects to this origin only (Redoc's usage reports are off, and
 * would be refused).
 */
export const REFERENCE_SECURITY_HEADERS: Record<string, string> = {
  ...CONSOLE_SECURITY_HEADERS,
  'content-security-policy': CONSOLE_SECURITY_HEADERS['content-security-policy']!.replace(
    "style-src 'self'",
    "style-src 'self' 'unsafe-inline'; font-src 'self' data:",
  ).replace(/connect-src [^;]*/, "connect-src 'self'"),
};

/**
 * Files served with the site that an npm package ships, by their path in the site: the API reference
 * page's Redoc (the standalone bundle that @redocly/cli, the API document's linter, carries).
 */
export const CONSOLE_PACKAGE_FILES: Record<string, string> = {
  'console/redoc.standalone.js': createRequire(import.meta.url).resolve(
    '@redocly/cli/lib/chunks/redoc.standalone.js',
  ),
};
