// (client) `runs create`, `runs list`, `runs show` and `runs pause|resume|cancel`.

import { readFile } from 'node:fs/promises';
import { type ApiClient, ApiError, type RunAction, type RunDetails } from '../api-client.ts';
import { type Context, EXIT, Exit, exitCodeFor, format, intervalMs, positiveInt } from '../args.ts';
import { CsvError, type CsvProblem, readLeadsCsv, toCsvProblems } from '../csv.ts';
import { done, outcomes, runsTable } from '../format.ts';
import { watch } from './watch.ts';

function printProblems(ctx: Context, file: string, problems: CsvProblem[]): void {
  for (const problem of problems) {
    const where = problem.line === undefined ? file : `${file}:${problem.line}`;
    ctx.io.stderr.write(`${where}: ${problem.field ? `${problem.field}: ` : ''}${problem.message}\n`);
  }
}

export async function createRun(ctx: Context, file: string): Promise<number> {
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

export async function listRuns(ctx: Context): Promise<number> {
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

export async function showRun(ctx: Context, runId: string): Promise<number> {
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

export async function control(ctx: Context, action: RunAction, runId: string): Promise<number> {
  const run = await ctx.client.control(runId, action, { hangup: ctx.values.hangup === true });
  ctx.io.stdout.write(`${run.run_id} ${run.status}\n`);
  return EXIT.ok;
}
