// The order test files start in. Vitest starts the largest files first when it has no timings cached
// (always, on a clean CI checkout); the files that spend minutes waiting on real timers are small, so
// they started last and ran alone at the end (lost-callbacks: ~3 minutes of the reconciler's default
// interval). Started first, they wait while the other worker runs everything else.

import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Files dominated by real-time waits, longest first. */
const LONG_WAITS = ['test/e2e/lost-callbacks.test.ts', 'test/e2e/local-stack.test.ts'];

function rank(spec: TestSpecification): number {
  const index = LONG_WAITS.findIndex((path) => spec.moduleId.endsWith(path));
  return index === -1 ? LONG_WAITS.length : index;
}

export class LongWaitsFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    // Projects run one after another in the base order; within each, long waits go first (a stable sort).
    const projects = [...new Set(sorted.map((spec) => spec.project.name))];
    return projects.flatMap((name) =>
      sorted.filter((spec) => spec.project.name === name).sort((a, b) => rank(a) - rank(b)),
    );
  }
}
