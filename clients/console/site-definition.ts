// Where the web console's static files are and the headers they are served with: read by the local
// dev server (serve.ts) and by the CDK construct that deploys the site, so both serve it alike.

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
