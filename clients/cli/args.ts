// (client) The CLI's options, which command takes which, the errors that end a command with an exit
// code, and the small parsers each command uses to name a bad option.

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
  'reveal-phone': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

export type Values = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean;
};

/** Which options each command takes, beyond --api and --help. */
export const ALLOWED: Record<string, (keyof Values)[]> = {
  'runs create': ['concurrency', 'watch', 'interval'],
  'runs list': ['limit', 'cursor', 'format'],
  'runs show': ['format'],
  'runs watch': ['interval'],
  'runs pause': [],
  'runs resume': [],
  'runs cancel': ['hangup'],
  calls: ['status', 'format', 'limit', 'reveal-phone'],
};

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
