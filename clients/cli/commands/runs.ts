// (client) `runs create`, `runs list`, `runs show` and `runs pause|resume|cancel`.

import { readFile } from 'node:fs/promises';
import { ApiError, type CreateRunResult, type RunAction, type RunDetails } from '../api-client.ts';
import {
  type Context,
  EXIT,
  Exit,
  exitCodeFor,
  format,
  intervalMs,
  one,
  positiveInt,
  UsageError,
} from '../args.ts';
import { CsvError, type CsvLeads, type CsvProblem, readLeadsCsv, toCsvProblems } from '../csv.ts';
import { done, outcomes, runsTable } from '../format.ts';
import { OPTION_OF_FIELD, runOptionsFrom } from '../run-options.ts';
import { humanTime } from '../time.ts';
import { watch } from './watch.ts';

function printProblems(ctx: Context, file: string, problems: CsvProblem[]): void {
  for (const problem of problems) {
    const where = problem.line === undefined ? file : `${file}:${problem.line}`;
    ctx.io.stderr.write(`${where}: ${problem.field ? `${problem.field}: ` : ''}${problem.message}\n`);
  }
}

/** What a `--from-run` run takes when `--status` is not given: the leads that failed. */
const DEFAULT_FROM_RUN_STATUS = 'failed';

/**
 * `runs create <leads.csv>` or `runs create --from-run <run-id> [--status S,…]`: checks what it can
 * before sending, prints the new run's id on stdout and a summary on stderr.
 */
export async function createRun(ctx: Context, args: string[]): Promise<number> {
  const options = runOptionsFrom(ctx.values, positiveInt(ctx.values.concurrency, 'concurrency', 10_000));
  const interval = intervalMs(ctx);
  const fromRun = ctx.values['from-run'];
  let created: CreateRunResult;
  if (fromRun !== undefined) {
    if (args.length > 0)
      throw new UsageError(`runs create takes a CSV file or --from-run, not both (got "${args.join(' ')}")`);
    const outcomes = (ctx.values.status ?? DEFAULT_FROM_RUN_STATUS)
      .split(',')
      .map((value) => value.trim())
      .filter(Boolean);
    if (outcomes.length === 0) throw new UsageError('--status needs at least one status or outcome');
    created = await send(ctx, () => ctx.client.createRun({ fromRun, outcomes }, options));
    ctx.say(
      `run ${created.run_id} started from run ${fromRun}'s ${outcomes.join(', ')} leads: ` +
        `${created.total_leads} leads, concurrency ${created.concurrency}`,
    );
  } else {
    if (ctx.values.status !== undefined)
      throw new UsageError('--status goes with --from-run (the leads of another run that ended so)');
    const file = one(args, 'runs create <leads.csv>  (or: runs create --from-run <run-id> --status S)');
    const csv = await readCsvFile(ctx, file);
    created = await send(ctx, () => ctx.client.createRun({ leads: csv.leads }, options), file, csv.lines);
    const how = created.status === 'scheduled' ? `scheduled for ${ctx.values['start-at']}` : 'started';
    ctx.say(`run ${created.run_id} ${how}: ${created.total_leads} leads, concurrency ${created.concurrency}`);
  }
  ctx.io.stdout.write(`${created.run_id}\n`);
  if (!ctx.values.watch) return EXIT.ok;
  return watch(ctx, created.run_id, interval);
}

async function readCsvFile(ctx: Context, file: string): Promise<CsvLeads> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (code ?? 'unreadable');
    throw new Exit(EXIT.invalidInput, `cannot read ${file}: ${why}`);
  }
  try {
    return readLeadsCsv(text);
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    printProblems(ctx, file, error.problems);
    throw new Exit(EXIT.invalidInput, `${file}: ${error.message.replace(/\.$/, '')}; nothing was sent.`);
  }
}

/** The request's own fields, named as the options that set them. */
const OPTION_OF: Record<string, string> = {
  ...OPTION_OF_FIELD,
  concurrency: '--concurrency',
  from_run: '--from-run',
  'from_run.run_id': '--from-run',
  'from_run.outcomes': '--status',
};

/**
 * Sends a create; when the API refuses it, each problem is named once, by what caused it: a lead by
 * its line in the file, a parameter by its option.
 */
async function send(
  ctx: Context,
  request: () => Promise<CreateRunResult>,
  file?: string,
  lines: readonly number[] = [],
): Promise<CreateRunResult> {
  try {
    return await request();
  } catch (error) {
    if (!(error instanceof ApiError) || error.details.length === 0) throw error;
    const isLead = (field: string | undefined) =>
      field === undefined || /^(leads|row|body|header)\b/.test(field);
    const leadDetails = error.details.filter((detail) => isLead(detail.field) && file !== undefined);
    const optionDetails = error.details.filter((detail) => !leadDetails.includes(detail));
    if (file !== undefined && leadDetails.length > 0)
      printProblems(ctx, file, toCsvProblems(leadDetails, lines));
    const http = `(HTTP ${error.status} ${error.code})`;
    if (leadDetails.length > 0) {
      for (const detail of optionDetails) ctx.say(`${optionName(ctx, detail.field)}: ${detail.message}`);
      throw new Exit(exitCodeFor(error), `${file}: ${error.message} ${http}`);
    }
    const [last, ...others] = optionDetails.reverse();
    for (const detail of others.reverse()) ctx.say(`${optionName(ctx, detail.field)}: ${detail.message}`);
    throw new Exit(exitCodeFor(error), `${optionName(ctx, last!.field)}: ${last!.message} ${http}`);
  }
}

function optionName(ctx: Context, field: string | undefined): string {
  if (field === undefined) return 'the request';
  const option = OPTION_OF[field];
  if (option === undefined) return field;
  const value = ctx.values[option.slice(2) as keyof Context['values']];
  return typeof value === 'string' ? `${option} ${value}` : option;
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
    ctx.io.stdout.write(`${runsTable(page.items, ctx.values.utc === true)}\n`);
    if (page.nextCursor) ctx.say(`more runs: dialgate runs list --cursor ${page.nextCursor}`);
  }
  return EXIT.ok;
}

export async function showRun(ctx: Context, runId: string): Promise<number> {
  const how = format(ctx.values.format, ['table', 'json'] as const, 'table');
  const run = await ctx.client.getRun(runId);
  if (how === 'json') ctx.io.stdout.write(`${JSON.stringify(run, null, 2)}\n`);
  else ctx.io.stdout.write(`${describeRun(run, ctx.values.utc === true)}\n`);
  return EXIT.ok;
}

function describeRun(run: RunDetails, utc: boolean): string {
  const lines = [
    `run:       ${run.run_id}`,
    `status:    ${run.status}`,
    `created:   ${humanTime(run.created_at, utc)}`,
    `leads:     ${run.total_leads} (${done(run)} done, ${run.queued + run.pending_ingest} waiting)`,
    `live:      ${run.in_progress} of ${run.concurrency} (dialing ${run.dialing}, calling ${run.calling})`,
    `final:     completed ${run.completed}, failed ${run.failed}, canceled ${run.canceled}`,
    `outcomes:  ${outcomes(run)}`,
  ];
  if (run.pause_reason) lines.splice(2, 0, `paused:    ${run.pause_reason}`);
  if (run.start_at) lines.push(`starts:    ${humanTime(run.start_at, utc)}`);
  if (run.expires_at) lines.push(`expires:   ${humanTime(run.expires_at, utc)}`);
  if (run.pause_when) {
    const { failed_ratio: ratio, min_calls: calls } = run.pause_when;
    lines.push(`breaker:   pause when more than ${ratio} of the last ${calls} calls failed`);
  }
  if (run.frequency_cap === 'wait')
    lines.push('frequency: a lead over the per-number cap waits for its window');
  if (run.opt_out) {
    const message = run.opt_out.message ? `: “${run.opt_out.message}”` : '';
    lines.push(`opt-out:   press ${run.opt_out.digit}${message}`);
  }
  if (run.machine_detection) {
    const voicemail = run.voicemail_url ?? (run.voicemail_twiml ? 'inline TwiML' : undefined);
    lines.push(
      `detection: ${run.machine_detection} (answering machines)${voicemail ? `; voicemail: ${voicemail}` : ''}`,
    );
    // on_machine: what a machine or fax gets when the run leaves it no voicemail.
    const onMachine =
      run.on_machine === 'hangup'
        ? 'hung up once detected'
        : run.on_machine === 'continue'
          ? 'played the content to the end'
          : undefined;
    if (onMachine)
      lines.push(`machines:  ${onMachine}${voicemail ? ' (left the voicemail after a greeting)' : ''}`);
  }
  for (const slot of run.live ?? [])
    lines.push(
      `  slot: job ${slot.job_id} attempt ${slot.attempt} ${slot.state} since ${humanTime(slot.since, utc)}`,
    );
  return lines.join('\n');
}

export async function control(ctx: Context, action: RunAction, runId: string): Promise<number> {
  const run = await ctx.client.control(runId, action, { hangup: ctx.values.hangup === true });
  ctx.io.stdout.write(`${run.run_id} ${run.status}\n`);
  return EXIT.ok;
}
