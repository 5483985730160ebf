// (bench) One benchmark section in its own process: the local stack is process-wide (its handlers keep
// their clients in module state), so each section gets a fresh one. `bin/bench.ts` starts this with
// `--section NAME --out FILE` and reads the results from FILE; stdout and stderr (the handlers' logs
// among them) go to a log file.

import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { SECTIONS, type SectionName, type SectionResult } from './result.ts';

const { values } = parseArgs({
  options: {
    section: { type: 'string' },
    out: { type: 'string' },
    quick: { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
    pollers: { type: 'string', default: '4' },
    'scale-pollers': { type: 'string', default: '10' },
    'log-level': { type: 'string', default: 'INFO' },
    'bundle-dir': { type: 'string', default: 'bench-results/bundles' },
  },
});

const section = values.section as SectionName;
if (!SECTIONS.includes(section) || !values.out) {
  console.error(`usage: worker --section ${SECTIONS.join('|')} --out FILE`);
  process.exit(2);
}
const common = {
  quick: values.quick ?? false,
  seed: Number(values.seed),
  pollers: Number(values.pollers),
  logLevel: values['log-level'] ?? 'INFO',
  cpus: availableParallelism(),
};

// Each section is imported on its own: a section does not load code (or fail on code) it does not use.
async function run(): Promise<SectionResult[]> {
  switch (section) {
    case 'refill':
    case 'cost':
      return (await import('./refill.ts')).runRefill(common);
    case 'utilization':
      return [await (await import('./utilization.ts')).runUtilization(common)];
    case 'ingest':
      return [await (await import('./ingest.ts')).runIngest(common)];
    case 'scale':
    case 'account':
      return [
        await (await import('./scale.ts')).runScale(
          { ...common, pollers: Number(values['scale-pollers']) },
          section,
        ),
      ];
    case 'coldstart': {
      const { runColdStart } = await import('./coldstart.ts');
      return [await runColdStart({ quick: common.quick, outDir: values['bundle-dir']!, cpus: common.cpus })];
    }
  }
}

const startedAt = new Date().toISOString();
let results: SectionResult[];
try {
  results = await run();
} catch (error) {
  console.error(`bench ${section} failed:`, error);
  results = [
    {
      section,
      completed: false,
      error: String((error as Error)?.stack ?? error).slice(0, 2_000),
      startedAt,
      durationMs: 0,
      quick: common.quick,
      checks: [],
      notes: [],
      details: {},
    },
  ];
}
writeFileSync(values.out, JSON.stringify(results, null, 2));
// Handler modules keep SDK clients (and their sockets) for the life of the process, as Lambda does.
process.exit(0);
