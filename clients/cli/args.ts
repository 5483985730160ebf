// (client) The CLI's options, which command takes which, the errors that end a command with an exit
// code, and the small parsers each command uses to name a bad option.

import { parseArgs } from 'node:util';
import type { ApiClient, ApiError } from './api-client.ts';

export const EXIT = {
  ok: 0,
  /** The API failed or refused the request (5xx, 401/403, 409…), or a watched run was canceled. */
  apiError: 1,
  usage: 2,
  notFound: 3,
  /** The CSV file is missing, unreadable or invalid, or the API refused the leads or a parameter. */
  invalidInput: 4,
  unreachable: 5,
  interrupted: 130,
  /** stdout was closed (`dialgate runs watch <id> | head -3`): stop quietly, as a SIGPIPE would. */
  closedPipe: 141,
} as const;

export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface CliIo {
  stdout: Output;
  stderr: Output;
  env: Record<string, string | undefined>;
  /** Aborted on Ctrl-C: `runs watch` stops and exits 130. */
  signal?: AbortSignal;
  /** Milliseconds between polls of `runs watch` when --interval is not given. */
  watchIntervalMs?: number;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export class Exit extends Error {
  override readonly name = 'Exit';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export const OPTIONS = {
  api: { type: 'string' },
  concurrency: { type: 'string' },
  watch: { type: 'boolean' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  format: { type: 'string' },
  interval: { type: 'string' },
  hangup: { type: 'boolean' },
  status: { type: 'string' },
  outcome: { type: 'string' },
  reason: { type: 'string' },
  // Both `suppressions add` (the suppression's end) and `runs create` (the run's expiry).
  'expires-at': { type: 'string' },
  prefix: { type: 'string' },
  'from-run': { type: 'string' },
  // Run options of `runs create` (clients/cli/run-options.ts turns them into the request's fields).
  'retry-on': { type: 'string' },
  'retry-delay': { type: 'string' },
  'max-attempts': { type: 'string' },
  'window-tz': { type: 'string' },
  'window-days': { type: 'string' },
  'window-start': { type: 'string' },
  'window-end': { type: 'string' },
  from: { type: 'string' },
  'phone-types': { type: 'string' },
  'twiml-url': { type: 'string' },
  twiml: { type: 'string' },
  'start-at': { type: 'string' },
  'pause-failed-ratio': { type: 'string' },
  'pause-min-calls': { type: 'string' },
  'machine-detection': { type: 'string' },
  'voicemail-twiml': { type: 'string' },
  'voicemail-url': { type: 'string' },
  'on-machine': { type: 'string' },
  'frequency-cap': { type: 'string' },
  'opt-out-digit': { type: 'string' },
  'opt-out-message': { type: 'string' },
  'reveal-phone': { type: 'boolean' },
  utc: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

export type Values = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean;
};

/** Which options each command takes, beyond --api and --help. */
export const ALLOWED: Record<string, (keyof Values)[]> = {
  'runs create': [
    'concurrency',
    'watch',
    'interval',
    'from-run',
    'status',
    'utc',
    'retry-on',
    'retry-delay',
    'max-attempts',
    'window-tz',
    'window-days',
    'window-start',
    'window-end',
    'from',
    'phone-types',
    'twiml-url',
    'twiml',
    'start-at',
    'expires-at',
    'pause-failed-ratio',
    'pause-min-calls',
    'machine-detection',
    'voicemail-twiml',
    'voicemail-url',
    'on-machine',
    'frequency-cap',
    'opt-out-digit',
    'opt-out-message',
  ],
  'runs list': ['limit', 'cursor', 'format', 'utc'],
  'runs show': ['format', 'utc'],
  'runs watch': ['interval', 'utc'],
  'runs pause': [],
  'runs resume': [],
  'runs cancel': ['hangup'],
  calls: ['status', 'outcome', 'format', 'limit', 'reveal-phone', 'utc'],
  'suppressions add': ['reason', 'expires-at', 'utc'],
  'suppressions remove': [],
  'suppressions list': ['prefix', 'limit', 'cursor', 'format', 'utc'],
  'suppressions import': [],
};

/**
 * The command line as options and positionals. Every problem is named by the option, with a
 * suggestion for a misspelt one: `unknown option --concurency (did you mean --concurrency?)`.
 */
export function parseCommandLine(argv: string[]): { values: Values; positionals: string[] } {
  const { values, positionals, tokens } = parseArgs({
    args: argv,
    options: OPTIONS,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const spec = (OPTIONS as Record<string, { type: 'string' | 'boolean' }>)[token.name];
    if (!spec) {
      const close = suggestion(token.name);
      throw new UsageError(`unknown option ${token.rawName}${close ? ` (did you mean --${close}?)` : ''}`);
    }
    if (spec.type === 'string' && (token.value === undefined || token.value === ''))
      throw new UsageError(`${token.rawName} needs a value`);
    if (spec.type === 'boolean' && token.value !== undefined)
      throw new UsageError(`${token.rawName} takes no value (got "${token.value}")`);
  }
  return { values: values as Values, positionals };
}

/** The known option nearest to `name`, when it is a likely typo (edit distance ≤ 2). */
function suggestion(name: string): string | undefined {
  let best: { option: string; distance: number } | undefined;
  for (const option of Object.keys(OPTIONS)) {
    const distance = editDistance(name.toLowerCase(), option);
    if (distance <= 2 && (!best || distance < best.distance)) best = { option, distance };
  }
  return best?.option;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

export interface Context {
  client: ApiClient;
  io: CliIo;
  values: Values;
  say: (text: string) => void;
}

export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

export function one(args: string[], usage: string): string {
  if (args.length !== 1 || args[0]!.trim() === '') throw new UsageError(`usage: dialgate ${usage}`);
  return args[0]!;
}

export function none(args: string[], command: string): void {
  if (args.length > 0) throw new UsageError(`${command} takes no arguments (got "${args.join(' ')}")`);
}

export function positiveInt(value: string | undefined, name: string, max = 1_000_000): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1 || n > max)
    throw new UsageError(`--${name} must be a whole number from 1 to ${max} (got "${value}")`);
  return n;
}

export function format<T extends string>(value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value))
    throw new UsageError(`--format must be one of ${allowed.join(', ')} (got "${value}")`);
  return value as T;
}

export function exitCodeFor(error: ApiError): number {
  // The API's router answers "No route for …" for a path it does not have: an older API, not a missing run.
  if (error.status === 404) return error.message.startsWith('No route') ? EXIT.apiError : EXIT.notFound;
  if (error.status === 400 || error.status === 413 || error.status === 415 || error.status === 422)
    return EXIT.invalidInput;
  return EXIT.apiError;
}

export function intervalMs(ctx: Context): number {
  if (ctx.values.interval === undefined) return ctx.io.watchIntervalMs ?? 1_000;
  const seconds = Number(ctx.values.interval);
  if (!Number.isFinite(seconds) || seconds < 0.1 || seconds > 3600)
    throw new UsageError(`--interval must be seconds from 0.1 to 3600 (got "${ctx.values.interval}")`);
  return seconds * 1000;
}
