// (client) What the CLI prints: aligned tables for people, and the run's progress as one line — a bar
// by state when the output is a terminal, plain text when not. CSV is the console's format
// (clients/console/site/console/csv-export.js), JSON the API's.

import type { Call, RunDetails } from './api-client.ts';
import { humanTime } from './time.ts';

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function callsTable(calls: Call[], utc = false): string {
  return table(
    ['JOB', 'PHONE', 'STATUS', 'OUTCOME', 'ANSWERED BY', 'ATTEMPTS', 'ERROR', 'DIALED', 'ENDED'],
    calls.map((call) => [
      call.job_id,
      call.phone,
      call.status,
      call.outcome ?? '',
      call.answered_by ?? '',
      String(call.attempts ?? ''),
      call.error_code === null || call.error_code === undefined ? '' : String(call.error_code),
      humanTime(call.dialed_at, utc),
      humanTime(call.ended_at, utc),
    ]),
  );
}

export function runsTable(runs: RunDetails[], utc = false): string {
  return table(
    ['RUN', 'STATUS', 'CREATED', 'LEADS', 'DONE', 'FAILED', 'LIVE', 'CAP'],
    runs.map((run) => [
      run.run_id,
      run.status,
      humanTime(run.created_at, utc),
      String(run.total_leads),
      String(done(run)),
      String(run.failed),
      String(run.in_progress),
      String(run.concurrency),
    ]),
  );
}

export function done(run: RunDetails): number {
  return run.completed + run.failed + run.canceled;
}

/** `completed` and `canceled` are final: every lead final, no slot held (`canceling` is on its way). */
export function isEnded(run: RunDetails): boolean {
  return run.status === 'completed' || run.status === 'canceled';
}

/** `completed 3, busy 1, no-answer 2`, the outcomes with at least one call, largest first. */
export function outcomes(run: RunDetails): string {
  const entries = Object.entries(run.outcomes ?? {}).filter(([, n]) => n > 0);
  entries.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return entries.map(([name, n]) => `${name} ${n}`).join(', ') || 'none yet';
}

/** One line for a log: every counter, stable wording, no escape codes. */
export function progressLine(run: RunDetails): string {
  return (
    `${run.run_id} ${run.status}: ${done(run)}/${run.total_leads} done` +
    ` (completed ${run.completed}, failed ${run.failed}, canceled ${run.canceled}),` +
    ` live ${run.in_progress}/${run.concurrency} (dialing ${run.dialing}, calling ${run.calling}),` +
    ` queued ${run.queued + run.pending_ingest}`
  );
}

const COLORS = {
  completed: '\x1b[32m',
  failed: '\x1b[31m',
  canceled: '\x1b[90m',
  live: '\x1b[33m',
  reset: '\x1b[0m',
};

/**
 * `[████▓▓░░░░░░] 42/100  live 3/3  failed 4  12.0 calls/min`: done (completed, failed, canceled
 * in their colours), then live, then what is left. Without colour the states still differ by glyph.
 */
export function progressBar(
  run: RunDetails,
  options: { width: number; color: boolean; ratePerMinute?: number },
): string {
  const total = Math.max(run.total_leads, 1);
  const parts: [keyof typeof COLORS, number, string][] = [
    ['completed', run.completed, '█'],
    ['failed', run.failed, '█'],
    ['canceled', run.canceled, '▒'],
    ['live', run.in_progress, '▓'],
  ];
  let used = 0;
  let counted = 0;
  let bar = '';
  for (const [name, count, glyph] of parts) {
    // Cumulative boundaries, so that rounding never adds up to more than the bar.
    counted += count;
    const cells = Math.min(options.width, Math.round((counted / total) * options.width)) - used;
    if (cells <= 0) continue;
    const text = (name === 'failed' && !options.color ? '×' : glyph).repeat(cells);
    bar += options.color ? `${COLORS[name]}${text}${COLORS.reset}` : text;
    used += cells;
  }
  bar += '░'.repeat(Math.max(0, options.width - used));
  const rate = options.ratePerMinute === undefined ? '' : `  ${options.ratePerMinute.toFixed(1)} calls/min`;
  return (
    `[${bar}] ${done(run)}/${run.total_leads}  live ${run.in_progress}/${run.concurrency}` +
    `  failed ${run.failed}  ${run.status}${rate}`
  );
}

/** Calls started per minute over the samples' window (a call leaves `queued` when it is dialed). */
export class DialRate {
  private readonly samples: { at: number; started: number }[] = [];
  constructor(private readonly windowMs = 60_000) {}

  add(run: RunDetails, at = Date.now()): number | undefined {
    const started = run.total_leads - run.pending_ingest - run.queued;
    this.samples.push({ at, started });
    while (this.samples.length > 2 && at - this.samples[1]!.at >= this.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    const elapsed = at - first.at;
    if (elapsed < 1_000) return undefined;
    return ((started - first.started) / elapsed) * 60_000;
  }
}
