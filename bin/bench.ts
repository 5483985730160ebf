// `npm run bench [-- --only refill,ingest --quick --save]`: dialgate's benchmarks on the local stack with
// the Twilio double: refill latency against its floor (and where it goes), slot utilization, ingest,
// scale, AWS cost per 1,000 calls and cold start. Each section runs in its own process (the local
// stack is process-wide); the figures are printed against their targets and written as JSON to
// bench-results/ (gitignored); --save also writes the committed summary docs/bench-latest.json.
// A missed target is reported, not fatal; --strict exits 1 on one. See docs/benchmarks.md.

import './node-version.ts';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { renderSection } from '../tools/bench/report.ts';
import { SECTIONS, type SectionName, type SectionResult } from '../tools/bench/result.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
    pollers: { type: 'string', default: '4' },
    'scale-pollers': { type: 'string', default: '10' },
    'log-level': { type: 'string', default: 'INFO' },
    out: { type: 'string', default: 'bench-results' },
    save: { type: 'boolean', default: false },
    strict: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log(`npm run bench -- [options]
  --only LIST          sections, comma-separated: ${SECTIONS.join(', ')} (default: all)
  --quick              small sizes, for a smoke run (minutes, not tens of minutes)
  --seed N             the Twilio double's seed (call lengths)          default 1
  --pollers N          dispatcher concurrency (SQS pollers)              default 4
  --scale-pollers N    dispatcher concurrency in scale and account       default 10
  --log-level LEVEL    handlers' Powertools log level                    default INFO (as deployed)
  --out DIR            where results go                                  default bench-results
  --save               also write docs/bench-latest.json (committed summary)
  --strict             exit 1 when a figure misses its target`);
  process.exit(0);
}

const selected = (values.only ? values.only.split(',').map((s) => s.trim()) : [...SECTIONS]) as SectionName[];
const unknown = selected.filter((s) => !SECTIONS.includes(s));
if (unknown.length) {
  console.error(`unknown section(s): ${unknown.join(', ')}; choose from ${SECTIONS.join(', ')}`);
  process.exit(2);
}

const outDir = resolve(ROOT, values.out!);
mkdirSync(join(outDir, 'logs'), { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const startedAt = new Date().toISOString();

// `refill` and `cost` come from one workload: run it once for either or both.
const workers = SECTIONS.filter((s) => s !== 'cost' && selected.includes(s));
if (selected.includes('cost') && !workers.includes('refill')) workers.unshift('refill');

console.log(
  `dialgate bench: ${selected.join(', ')}${values.quick ? ' (quick)' : ''}; ${availableParallelism()} CPUs, ` +
    `load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}; node ${process.version}`,
);

if (loadavg()[0]! > availableParallelism()) {
  console.log(
    'note: the machine is busy (1-minute load above its CPU count); latencies will be inflated. ' +
      'Each section reports the load it ran under.',
  );
}

const commit = gitCommit();
const results: SectionResult[] = [];
for (const section of workers) {
  const file = join(outDir, `${section}-${stamp}.json`);
  const log = join(outDir, 'logs', `${section}-${stamp}.log`);
  console.log(`\n… ${section} (handler logs: ${log})`);
  const out = openSync(log, 'w');
  const code = await new Promise<number>((done) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'tools/bench/worker.ts'),
        '--section',
        section,
        '--out',
        file,
        '--seed',
        values.seed!,
        '--pollers',
        values.pollers!,
        '--scale-pollers',
        values['scale-pollers']!,
        '--log-level',
        values['log-level']!,
        '--bundle-dir',
        join(outDir, 'bundles'),
        ...(values.quick ? ['--quick'] : []),
      ],
      // Handler logs (stdout, as Lambda's) and warnings (stderr) both go to the log file.
      { cwd: ROOT, stdio: ['ignore', out, out] },
    );
    const begun = Date.now();
    const beat = setInterval(
      () => console.log(`  … ${section}: ${Math.round((Date.now() - begun) / 1000)} s`),
      30_000,
    );
    child.on('exit', (c) => {
      clearInterval(beat);
      done(c ?? 1);
    });
  });
  closeSync(out);
  if (code !== 0) console.log(tail(log, 20));
  let produced: SectionResult[];
  try {
    produced = JSON.parse(readFileSync(file, 'utf8')) as SectionResult[];
  } catch {
    produced = [
      {
        section,
        completed: false,
        error: `worker exited ${code} without results`,
        startedAt: new Date().toISOString(),
        durationMs: 0,
        quick: values.quick ?? false,
        checks: [],
        notes: [],
        details: {},
      },
    ];
  }
  for (const result of produced) {
    if (!selected.includes(result.section)) continue;
    if (commit) result.commit = commit;
    results.push(result);
    console.log(renderSection(result));
  }
}

const report = {
  startedAt,
  finishedAt: new Date().toISOString(),
  options: {
    only: selected,
    quick: values.quick,
    seed: Number(values.seed),
    pollers: Number(values.pollers),
    scalePollers: Number(values['scale-pollers']),
    logLevel: values['log-level'],
  },
  host: {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model,
    memoryGb: Math.round(totalmem() / 1e9),
    node: process.version,
    loadAtEnd: loadavg(),
  },
  commit,
  sections: results,
};
const json = JSON.stringify(report, null, 2);
writeFileSync(join(outDir, `bench-${stamp}.json`), json);
writeFileSync(join(outDir, 'latest.json'), json);
if (values.save) save(join(ROOT, 'docs/bench-latest.json'));

const misses = results.flatMap((r) =>
  r.checks.filter((c) => c.pass === false).map((c) => `${r.section}: ${c.name}`),
);
const failed = results.filter((r) => !r.completed).map((r) => r.section);
console.log(
  `\n${results.length} section(s); ${misses.length} target(s) missed${misses.length ? `: ${misses.join('; ')}` : ''}` +
    `${failed.length ? `; FAILED: ${failed.join(', ')}` : ''}\nresults: ${join(outDir, `bench-${stamp}.json`)}` +
    (values.save ? ' and docs/bench-latest.json' : ''),
);
process.exit(failed.length > 0 || (values.strict && misses.length > 0) ? 1 : 0);

/**
 * The committed summary: sections run now replace their earlier figures (a section that failed keeps
 * them), so `--only coldstart --save` refreshes just that part. Each section carries its own date,
 * commit and machine load.
 */
function save(file: string): void {
  let sections: SectionResult[] = [];
  try {
    sections = (JSON.parse(readFileSync(file, 'utf8')) as { sections?: SectionResult[] }).sections ?? [];
  } catch {
    // none yet
  }
  for (const result of results.filter((r) => r.completed)) {
    sections = [...sections.filter((s) => s.section !== result.section), result];
  }
  sections.sort((a, b) => SECTIONS.indexOf(a.section) - SECTIONS.indexOf(b.section));
  writeFileSync(file, `${JSON.stringify({ ...report, sections }, null, 2)}\n`);
}

function tail(file: string, lines: number): string {
  const text = readFileSync(file, 'utf8').trimEnd().split('\n');
  return text.slice(-lines).join('\n');
}

function gitCommit(): string | undefined {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'lambdas', 'lib', 'tools'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    return dirty ? `${head} (+ uncommitted changes in lambdas/, lib/ or tools/)` : head;
  } catch {
    return undefined;
  }
}
