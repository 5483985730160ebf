// `npm run demo`: a 100-lead run with a cap of 3 against the Twilio simulator, with a live progress
// bar and a closing summary from the simulator's own observer (not dialgate's counters): the most
// calls it ever saw live at once, total time against the ideal, and refill latency.
//   npm run demo -- [--leads 100] [--cap 3] [--ring-ms 300] [--talk-ms 1500] [--seed 58]
//                   [--outcomes completed=65,no-answer=18,busy=8,failed=5,invalid=4]
//   npm run demo -- --api http://127.0.0.1:3000 [--api-key KEY]   (a running `npm start`; no observer figures)

import './node-version.ts';
import { parseArgs } from 'node:util';
import type { RunView } from '../lambdas/core/model.ts';
import { percentile } from '../tools/bench/stats.ts';
import { type LocalStack, startLocalStack } from '../tools/local/stack.ts';
import {
  type MixOutcome,
  mulberry32,
  parseOutcomeMix,
  REALISTIC_OUTCOMES,
  type TwilioSimulator,
  weightedOutcomes,
} from '../tools/twilio-simulator/simulator.ts';

const { values: args } = parseArgs({
  options: {
    leads: { type: 'string', default: '100' },
    cap: { type: 'string', default: '3' },
    'ring-ms': { type: 'string', default: '300' },
    'talk-ms': { type: 'string', default: '1500' },
    seed: { type: 'string', default: '58' },
    outcomes: { type: 'string' },
    api: { type: 'string' },
    'api-key': { type: 'string' },
  },
});

function positive(name: string, raw: string | undefined): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a positive integer`);
    process.exit(2);
  }
  return value;
}

const leads = positive('leads', args.leads);
let mix: Partial<Record<MixOutcome, number>> = REALISTIC_OUTCOMES;
try {
  if (args.outcomes !== undefined) mix = parseOutcomeMix(args.outcomes);
} catch (error) {
  console.error(`--outcomes: ${(error as Error).message}`);
  process.exit(2);
}
const cap = positive('cap', args.cap);
const tty = process.stdout.isTTY === true;
const paint = (code: string, text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);

// The handlers' JSON logs would tear the progress bar; only errors get through.
process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

let stack: LocalStack | undefined;
let apiUrl = args.api?.replace(/\/$/, '');
const headers: Record<string, string> = { 'content-type': 'application/json' };
const apiKey = args['api-key'] ?? process.env.API_KEY;
if (apiKey) headers['x-api-key'] = apiKey;

process.on('SIGINT', () => {
  process.stdout.write('\n');
  void (stack?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
});

if (!apiUrl) {
  process.stdout.write('Starting the local stack (DynamoDB Local, SQS emulator, Twilio simulator)… ');
  const started = performance.now();
  const random = mulberry32(positive('seed', args.seed));
  stack = await startLocalStack({
    port: 0,
    simulator: {
      ringMs: positive('ring-ms', args['ring-ms']),
      talkMs: positive('talk-ms', args['talk-ms']),
      jitter: 0.5,
      random,
      // Some leads do not pick up, are busy, fail or do not exist, as in life: the bar shows it.
      behavior: weightedOutcomes(mix, random),
    },
    onError: (error, where) => console.error(`\n[local] ${where}: ${(error as Error).message ?? error}`),
  });
  apiUrl = stack.apiUrl;
  console.log(`ready in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
}

const body = {
  concurrency: cap,
  // One attempt per lead, so that the demo ends: a real run retries busy and no-answer leads later.
  retry: { max_attempts: 1 },
  leads: Array.from({ length: leads }, (_, i) => ({
    phone: `+1415${String(5_550_000 + i).padStart(7, '0')}`,
    name: `Lead ${i + 1}`,
  })),
};
const t0 = performance.now();
const created = await fetch(`${apiUrl}/runs`, { method: 'POST', headers, body: JSON.stringify(body) });
const createdBody = (await created.json()) as { run_id?: string };
if (created.status !== 202 || !createdBody.run_id) {
  console.error(`POST /runs answered ${created.status}: ${JSON.stringify(createdBody)}`);
  await stack?.stop();
  process.exit(1);
}
const runId = createdBody.run_id;
console.log(`Run ${runId}: ${leads} leads, at most ${cap} live calls.`);

function progressLine(view: RunView, elapsedMs: number): string {
  const done = view.completed + view.failed + view.canceled;
  const counts = `${String(done).padStart(String(view.total_leads).length)}/${view.total_leads}`;
  const fields: [string, number, string][] = [
    ['queued', view.queued + view.pending_ingest, '0'],
    ['dialing', view.dialing, '33'],
    ['calling', view.calling, '36'],
    ['completed', view.completed, '32'],
    ['failed', view.failed, '31'],
  ];
  const time = `${(elapsedMs / 1000).toFixed(1)} s`;
  const plain = fields.map(([label, value]) => `${label} ${value}`).join('  ');
  // A redrawn line must fit the terminal: a wrapped one cannot be cleared with \r.
  const columns = tty ? (process.stdout.columns ?? 80) : 120;
  const width = Math.max(5, Math.min(30, columns - 1 - (plain.length + counts.length + time.length + 8)));
  const filled = Math.round((done / view.total_leads) * width);
  const bar = tty
    ? `${paint('32', '█'.repeat(filled))}${'░'.repeat(width - filled)}`
    : `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
  const painted = fields.map(([label, value, color]) => `${label} ${paint(color, String(value))}`).join('  ');
  return `[${bar}] ${counts}  ${painted}  ${time}`;
}

let view: RunView | undefined;
let maxReported = 0;
let lastPrinted = 0;
for (;;) {
  const response = await fetch(`${apiUrl}/runs/${runId}`, { headers });
  if (response.status !== 200) throw new Error(`GET /runs/${runId} answered ${response.status}`);
  view = (await response.json()) as RunView;
  maxReported = Math.max(maxReported, view.in_progress);
  const elapsed = performance.now() - t0;
  const finished = view.status === 'completed';
  if (tty) {
    process.stdout.write(`\r\x1b[2K${progressLine(view, elapsed)}`);
  } else if (finished || elapsed - lastPrinted >= 2_000) {
    // Not a terminal (CI, a log file): a plain line every two seconds instead of redraws.
    console.log(progressLine(view, elapsed));
    lastPrinted = elapsed;
  }
  if (finished) break;
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const totalMs = performance.now() - t0;
if (tty) process.stdout.write('\n');

const ms = (value: number) => (Number.isNaN(value) ? 'n/a' : `${value.toFixed(0)} ms`);
const s = (value: number) => `${(value / 1000).toFixed(1)} s`;

console.log(`\n${paint('1', 'Summary')}`);
console.log(
  `  leads            ${view.total_leads}: completed ${view.completed}, failed ${view.failed}, canceled ${view.canceled}` +
    `  (${Object.entries(view.outcomes)
      .map(([outcome, count]) => `${outcome} ${count}`)
      .join(', ')})`,
);
if (stack?.simulator) {
  summarizeObserved(stack.simulator, runId, cap);
} else {
  console.log(
    `  max live calls   ${maxReported} (dialgate's own count, polled; the simulator is in the other process)`,
  );
  console.log(`  total time       ${s(totalMs)}`);
}
await stack?.stop();
process.exit(0);

function summarizeObserved(sim: TwilioSimulator, run: string, concurrency: number): void {
  const observed = sim.stats().runs[run];
  const calls = sim.calls().filter((call) => call.run === run && call.endedAt !== undefined);
  const durations = calls.map((call) => call.endedAt! - call.createdAt);
  const meanCall = durations.reduce((sum, d) => sum + d, 0) / Math.max(1, durations.length);
  // Numbers refused at create never become calls and hold no slot for long: the ideal counts calls.
  const ideal = Math.ceil(calls.length / concurrency) * meanCall;
  const first = Math.min(...calls.map((call) => call.createdAt));
  const last = Math.max(...calls.map((call) => call.endedAt!));
  const refill = sim.refillLatencies(run).sort((a, b) => a - b);
  const maxLive = observed?.maxLive ?? 0;
  const verdict =
    maxLive <= concurrency
      ? paint('32', `never above the cap of ${concurrency}`)
      : paint('31', 'ABOVE THE CAP');
  console.log(
    `  max live calls   ${paint('1', String(maxLive))} seen by the Twilio simulator (${verdict}); dialgate reported up to ${maxReported}`,
  );
  console.log(
    `  total time       ${s(totalMs)} from POST /runs to completed (first call → last call ended: ${s(last - first)})`,
  );
  console.log(
    `  ideal            ${s(ideal)} = ceil(${calls.length} calls/${concurrency}) × ${ms(meanCall)} mean call (create → final)` +
      `; actual / ideal = ${(totalMs / ideal).toFixed(2)}`,
  );
  console.log(
    `  refill latency   p50 ${ms(percentile(refill, 50))}, p95 ${ms(percentile(refill, 95))}, max ${ms(refill.at(-1) ?? Number.NaN)}` +
      `  (final callback sent → next call created, ${refill.length} refills)`,
  );
}
