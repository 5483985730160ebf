// (client) `dialgate`, the command-line client of the runs API. Data goes to stdout, messages to
// stderr prefixed `dialgate:`, and the exit code says what went wrong (EXIT below), so that a script
// can rely on all three. bin/dialgate.ts runs `main` with the real process; tests run it in-process.

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  ApiClient,
  ApiError,
  type Call,
  type RunAction,
  type RunDetails,
  UnreachableError,
} from './api-client.ts';
import { CsvError, type CsvProblem, readLeadsCsv, toCsvProblems } from './csv.ts';
import {
  callsCsv,
  callsTable,
  DialRate,
  done,
  isEnded,
  outcomes,
  progressBar,
  progressLine,
  runsTable,
} from './format.ts';

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

export const DEFAULT_API_URL = 'http://localhost:3000';
export const VERSION = '0.1.0';

export const USAGE = `Usage: dialgate [--api URL] <command> [options]

Commands:
  runs create <leads.csv> [--concurrency N] [--watch]
                          Check the CSV, start a run, print its id (with --watch, then watch it)
  runs list [--limit N] [--cursor C] [--format table|json]
                          Runs, newest first (N up to 100, default 20)
  runs show <run-id> [--format table|json]
  runs watch <run-id> [--interval SECONDS]
                          Live progress until the run ends (plain lines when not a terminal)
  runs pause <run-id>     Stop dialing new leads; live calls go on
  runs resume <run-id>
  runs cancel <run-id> [--hangup]
                          Cancel the leads not dialed yet (--hangup: end live calls too)
  calls <run-id> [--status S] [--format table|csv|json] [--limit N] [--reveal-phone]
                          The run's calls, every page; S is one status or several with
                          commas: queued, dialing, calling, completed, failed, canceled

Options:
  --api URL               API base URL (default: $DIALGATE_API_URL, else ${DEFAULT_API_URL})
  -h, --help              This help
  --version               The client's version

Environment:
  DIALGATE_API_URL        Default for --api
  DIALGATE_API_KEY        Sent as x-api-key (needed when the API checks keys)
  NO_COLOR                No colours in \`runs watch\`

Exit codes:
  0    done (runs watch: the run completed)
  1    the API failed or refused the request, or the watched run was canceled
  2    usage: unknown command or option, missing or bad argument
  3    not found: no such run
  4    invalid input: the CSV is missing, unreadable or invalid, or the API refused the leads
  5    the API cannot be reached
  130  interrupted
`;

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

class UsageError extends Error {
  override readonly name = 'UsageError';
}

class Exit extends Error {
  override readonly name = 'Exit';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const OPTIONS = {
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

type Values = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean;
};

/** Which options each command takes, beyond --api and --help. */
const ALLOWED: Record<string, (keyof Values)[]> = {
  'runs create': ['concurrency', 'watch', 'interval'],
  'runs list': ['limit', 'cursor', 'format'],
  'runs show': ['format'],
  'runs watch': ['interval'],
  'runs pause': [],
  'runs resume': [],
  'runs cancel': ['hangup'],
  calls: ['status', 'format', 'limit', 'reveal-phone'],
};

export async function main(argv: string[], io: CliIo): Promise<number> {
  const say = (text: string) => io.stderr.write(`dialgate: ${text}\n`);
  try {
    let parsed: { values: Values; positionals: string[] };
    try {
      parsed = parseArgs({
        args: argv,
        options: OPTIONS,
        allowPositionals: true,
        strict: true,
      }) as typeof parsed;
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const { values, positionals } = parsed;
    if (values.version) {
      io.stdout.write(`dialgate ${VERSION}\n`);
      return EXIT.ok;
    }
    if (values.help || positionals.length === 0) {
      (values.help ? io.stdout : io.stderr).write(USAGE);
      return values.help ? EXIT.ok : EXIT.usage;
    }
    const [group, sub, ...rest] = positionals;
    const command = group === 'runs' ? `runs ${sub ?? ''}`.trim() : (group ?? '');
    const args = group === 'runs' ? rest : positionals.slice(1);
    if (!(command in ALLOWED)) {
      throw new UsageError(
        group === 'runs' && sub === undefined
          ? 'runs needs a subcommand: create, list, show, watch, pause, resume or cancel'
          : `unknown command "${command}"`,
      );
    }
    for (const name of Object.keys(values) as (keyof Values)[]) {
      if (name !== 'api' && !ALLOWED[command]!.includes(name))
        throw new UsageError(`${command} takes no --${name}`);
    }
    const client = new ApiClient(
      values.api ?? nonEmpty(io.env.DIALGATE_API_URL) ?? DEFAULT_API_URL,
      nonEmpty(io.env.DIALGATE_API_KEY),
    );
    if (!/^https?:\/\/[^/]/.test(client.baseUrl))
      throw new UsageError(`--api must be an http(s) URL (got "${client.baseUrl}")`);
    const ctx: Context = { client, io, values, say };
    switch (command) {
      case 'runs create':
        return await createRun(ctx, one(args, 'runs create <leads.csv>'));
      case 'runs list':
        none(args, command);
        return await listRuns(ctx);
      case 'runs show':
        return await showRun(ctx, one(args, 'runs show <run-id>'));
      case 'runs watch':
        return await watchRun(ctx, one(args, 'runs watch <run-id>'));
      case 'runs pause':
      case 'runs resume':
      case 'runs cancel':
        return await control(ctx, command.slice(5) as RunAction, one(args, `${command} <run-id>`));
      default:
        return await listCalls(ctx, one(args, 'calls <run-id>'));
    }
  } catch (error) {
    if (error instanceof UsageError) {
      say(`${error.message} (dialgate --help for usage)`);
      return EXIT.usage;
    }
    if (error instanceof Exit) {
      say(error.message);
      return error.code;
    }
    if (error instanceof UnreachableError) {
      say(error.message);
      return EXIT.unreachable;
    }
    if (error instanceof ApiError) {
      say(`${error.message} (HTTP ${error.status} ${error.code})`);
      for (const detail of error.details)
        say(
          `  ${detail.line ? `line ${detail.line}: ` : ''}${detail.field ? `${detail.field}: ` : ''}${detail.message}`,
        );
      return exitCodeFor(error);
    }
    say(`unexpected error: ${(error as Error).stack ?? error}`);
    return EXIT.apiError;
  }
}

export function exitCodeFor(error: ApiError): number {
  // The API's router answers "No route for …" for a path it does not have: an older API, not a missing run.
  if (error.status === 404) return error.message.startsWith('No route') ? EXIT.apiError : EXIT.notFound;
  if (error.status === 400 || error.status === 413 || error.status === 415 || error.status === 422)
    return EXIT.invalidInput;
  return EXIT.apiError;
}

interface Context {
  client: ApiClient;
  io: CliIo;
  values: Values;
  say: (text: string) => void;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function one(args: string[], usage: string): string {
  if (args.length !== 1 || args[0]!.trim() === '') throw new UsageError(`usage: dialgate ${usage}`);
  return args[0]!;
}

function none(args: string[], command: string): void {
  if (args.length > 0) throw new UsageError(`${command} takes no arguments (got "${args.join(' ')}")`);
}

function positiveInt(value: string | undefined, name: string, max = 1_000_000): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1 || n > max)
    throw new UsageError(`--${name} must be a whole number from 1 to ${max} (got "${value}")`);
  return n;
}

function format<T extends string>(value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value))
    throw new UsageError(`--format must be one of ${allowed.join(', ')} (got "${value}")`);
  return value as T;
}

function printProblems(ctx: Context, file: string, problems: CsvProblem[]): void {
  for (const problem of problems) {
    const where = problem.line === undefined ? file : `${file}:${problem.line}`;
    ctx.io.stderr.write(`${where}: ${problem.field ? `${problem.field}: ` : ''}${problem.message}\n`);
  }
}

async function createRun(ctx: Context, file: string): Promise<number> {
  const concurrency = positiveInt(ctx.values.concurrency, 'concurrency', 10_000);
  const interval = intervalMs(ctx);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (code ?? 'unreadable');
    throw new Exit(EXIT.invalidInput, `cannot read ${file}: ${why}`);
  }
  let csv: ReturnType<typeof readLeadsCsv>;
  try {
    csv = readLeadsCsv(text);
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    printProblems(ctx, file, error.problems);
    throw new Exit(EXIT.invalidInput, `${file}: ${error.message.replace(/\.$/, '')}; nothing was sent.`);
  }
  let created: Awaited<ReturnType<ApiClient['createRun']>>;
  try {
    created = await ctx.client.createRun(csv.leads, concurrency);
  } catch (error) {
    // The API's rows are leads; name the file's lines instead.
    if (error instanceof ApiError && error.details.length > 0) {
      printProblems(ctx, file, toCsvProblems(error.details, csv.lines));
      throw new Exit(exitCodeFor(error), `${file}: ${error.message} (HTTP ${error.status} ${error.code})`);
    }
    throw error;
  }
  ctx.io.stdout.write(`${created.run_id}\n`);
  ctx.say(`run ${created.run_id} started: ${created.total_leads} leads, concurrency ${created.concurrency}`);
  if (!ctx.values.watch) return EXIT.ok;
  return watch(ctx, created.run_id, interval);
}

async function listRuns(ctx: Context): Promise<number> {
  const how = format(ctx.values.format, ['table', 'json'] as const, 'table');
  const limit = positiveInt(ctx.values.limit, 'limit', 100) ?? 20;
  const page = await ctx.client.listRuns({
    limit,
    ...(ctx.values.cursor ? { cursor: ctx.values.cursor } : {}),
  });
  if (how === 'json') {
    ctx.io.stdout.write(
      `${JSON.stringify({ runs: page.items, next_cursor: page.nextCursor ?? null }, null, 2)}\n`,
    );
  } else {
    ctx.io.stdout.write(`${runsTable(page.items)}\n`);
    if (page.nextCursor) ctx.say(`more runs: dialgate runs list --cursor ${page.nextCursor}`);
  }
  return EXIT.ok;
}

async function showRun(ctx: Context, runId: string): Promise<number> {
  const how = format(ctx.values.format, ['table', 'json'] as const, 'table');
  const run = await ctx.client.getRun(runId);
  if (how === 'json') ctx.io.stdout.write(`${JSON.stringify(run, null, 2)}\n`);
  else ctx.io.stdout.write(`${describeRun(run)}\n`);
  return EXIT.ok;
}

function describeRun(run: RunDetails): string {
  const lines = [
    `run:       ${run.run_id}`,
    `status:    ${run.status}`,
    `created:   ${run.created_at}`,
    `leads:     ${run.total_leads} (${done(run)} done, ${run.queued + run.pending_ingest} waiting)`,
    `live:      ${run.in_progress} of ${run.concurrency} (dialing ${run.dialing}, calling ${run.calling})`,
    `final:     completed ${run.completed}, failed ${run.failed}, canceled ${run.canceled}`,
    `outcomes:  ${outcomes(run)}`,
  ];
  for (const slot of run.live ?? [])
    lines.push(`  slot: job ${slot.job_id} attempt ${slot.attempt} ${slot.state} since ${slot.since}`);
  return lines.join('\n');
}

async function control(ctx: Context, action: RunAction, runId: string): Promise<number> {
  const run = await ctx.client.control(runId, action, { hangup: ctx.values.hangup === true });
  ctx.io.stdout.write(`${run.run_id} ${run.status}\n`);
  return EXIT.ok;
}

async function listCalls(ctx: Context, runId: string): Promise<number> {
  const how = format(ctx.values.format, ['table', 'csv', 'json'] as const, 'table');
  const limit = positiveInt(ctx.values.limit, 'limit', 10_000_000);
  const calls: Call[] = [];
  let cursor: string | undefined;
  do {
    const page = await ctx.client.listCalls(runId, {
      limit: Math.min(100, limit === undefined ? 100 : limit - calls.length),
      ...(ctx.values.status ? { status: ctx.values.status } : {}),
      ...(cursor ? { cursor } : {}),
      revealPhone: ctx.values['reveal-phone'] === true,
    });
    calls.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && (limit === undefined || calls.length < limit));
  if (limit !== undefined) calls.length = Math.min(calls.length, limit);
  if (how === 'json') ctx.io.stdout.write(`${JSON.stringify(calls, null, 2)}\n`);
  else if (how === 'csv') ctx.io.stdout.write(`${callsCsv(calls)}\n`);
  else ctx.io.stdout.write(`${calls.length === 0 ? 'no calls' : callsTable(calls)}\n`);
  return EXIT.ok;
}

function intervalMs(ctx: Context): number {
  if (ctx.values.interval === undefined) return ctx.io.watchIntervalMs ?? 1_000;
  const seconds = Number(ctx.values.interval);
  if (!Number.isFinite(seconds) || seconds < 0.1 || seconds > 3600)
    throw new UsageError(`--interval must be seconds from 0.1 to 3600 (got "${ctx.values.interval}")`);
  return seconds * 1000;
}

async function watchRun(ctx: Context, runId: string): Promise<number> {
  return watch(ctx, runId, intervalMs(ctx));
}

/** Consecutive failed polls tolerated before `runs watch` gives up (a deploy, a blip). */
const WATCH_RETRIES = 5;

async function watch(ctx: Context, runId: string, interval: number): Promise<number> {
  const out = ctx.io.stdout;
  const tty = out.isTTY === true;
  const color = tty && ctx.io.env.NO_COLOR === undefined && ctx.io.env.TERM !== 'dumb';
  const rate = new DialRate();
  let last = '';
  let failures = 0;
  let run: RunDetails | undefined;
  for (;;) {
    try {
      run = await ctx.client.getRun(runId);
      failures = 0;
    } catch (error) {
      const transient =
        error instanceof UnreachableError ||
        (error instanceof ApiError && (error.status >= 500 || error.status === 429));
      if (!transient || ++failures > WATCH_RETRIES) {
        if (tty && last) out.write('\n');
        throw error;
      }
      ctx.say(`${(error as Error).message}; retrying (${failures}/${WATCH_RETRIES})`);
    }
    if (run) {
      const perMinute = rate.add(run);
      if (tty) {
        const width = Math.max(10, Math.min(40, (out.columns ?? 80) - 60));
        const line = progressBar(run, {
          width,
          color,
          ...(perMinute === undefined ? {} : { ratePerMinute: perMinute }),
        });
        out.write(`\r\x1b[2K${line}`);
        last = line;
      } else {
        const line = progressLine(run);
        if (line !== last) out.write(`${new Date().toISOString()} ${line}\n`);
        last = line;
      }
      if (isEnded(run)) break;
    }
    if (await sleep(interval, ctx.io.signal)) {
      if (tty) out.write('\n');
      ctx.say(`stopped watching run ${runId} (it goes on)`);
      return EXIT.interrupted;
    }
  }
  if (tty) out.write('\n');
  out.write(
    `run ${run.run_id} ${run.status}: ${done(run)}/${run.total_leads} done; outcomes: ${outcomes(run)}\n`,
  );
  if (run.status !== 'completed') throw new Exit(EXIT.apiError, `run ${run.run_id} ended ${run.status}`);
  return EXIT.ok;
}

/** Resolves true when aborted. */
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(false);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(true);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
