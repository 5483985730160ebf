// `npm run chaos [-- --seed N --runs N --leads N]`: the fault-injection suite at full size.
// Prints the seed, what was injected and every invariant's count; exits 1 if any invariant broke.

import './node-version.ts';
import { parseArgs } from 'node:util';
import { DEFAULT_CHAOS, runChaos } from '../tools/chaos/chaos.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: String(Date.now() % 100_000) },
    runs: { type: 'string', default: String(DEFAULT_CHAOS.runs) },
    leads: { type: 'string', default: String(DEFAULT_CHAOS.leadsPerRun) },
  },
});

const report = await runChaos({
  ...DEFAULT_CHAOS,
  seed: Number(values.seed),
  runs: Number(values.runs),
  leadsPerRun: Number(values.leads),
  log: (line) => console.log(line),
});

console.log('');
console.log(`seed                 ${report.seed}   (replay: npm run chaos -- --seed ${report.seed})`);
console.log(
  `leads / runs         ${report.leads} / ${report.runs.length}   in ${(report.durationMs / 1000).toFixed(1)} s`,
);
console.log(
  'injected             ' +
    Object.entries(report.injected)
      .map(([k, v]) => `${k} ${v}`)
      .join(', '),
);
console.log(`cap violations       ${report.capViolations}`);
console.log(`leads called twice   ${report.leadsCalledTwice}`);
console.log(`leads lost           ${report.leadsLost}`);
console.log(`runs completed       ${report.runsCompleted} of ${report.runs.length}`);
console.log(`counters not at zero ${report.countersNotZero}`);
console.log(
  `dead letters         ${report.deadLetters} (lead chunks among them: ${report.deadLetteredLeadChunks})`,
);
for (const run of report.runs) {
  console.log(
    `  run ${run.runId.slice(0, 8)}  cap ${run.cap}  max live ${run.maxLive}  final ${run.final}/${run.leads}  ${run.status}`,
  );
}
console.log(report.ok ? '\nall invariants held' : '\nINVARIANT BROKEN');
process.exit(report.ok ? 0 : 1);
