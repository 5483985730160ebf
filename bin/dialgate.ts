#!/usr/bin/env tsx
// `dialgate`: the command-line client of the runs API (clients/cli/main.ts). `npx dialgate --help`,
// `npm run dialgate -- …`, or `npx tsx bin/dialgate.ts …`.

import './node-version.ts';
import { EXIT, main } from '../clients/cli/main.ts';

// Ctrl-C stops `runs watch` cleanly (exit 130); a second one, with no handler left, kills at once.
const interrupted = new AbortController();
process.once('SIGINT', () => interrupted.abort());
process.once('SIGTERM', () => interrupted.abort());

// A reader that goes away (`dialgate runs watch <id> | head -3`) is not an error: stop quietly, with
// the exit code a SIGPIPE death would give.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(EXIT.closedPipe);
  throw error;
});

const code = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: interrupted.signal,
});
process.exitCode = code;
