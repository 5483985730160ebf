import { defineConfig } from 'vitest/config';
import { LongWaitsFirst } from './test/support/sequencer.ts';

export default defineConfig({
  test: {
    // Output only from tests that fail: a passing test's logs (the handlers' expected ERROR lines,
    // CDK's synth warnings) are kept back and printed with the failure they may explain.
    silent: 'passed-only',
    env: {
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      POWERTOOLS_METRICS_DISABLED: 'true',
      // Powertools' Logger writes through the global console (not its own stream) in dev mode, so
      // vitest sees its lines and can hold them back with the rest of a passing test's output.
      POWERTOOLS_DEV: 'true',
    },
    // Files that wait minutes on real timers start first, so that none of them is the suite's tail.
    sequence: { sequencer: LongWaitsFirst },
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        // The core against in-memory ports and pure logic: no emulator, milliseconds.
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'emulated',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**'],
          globalSetup: ['test/support/global-setup.ts'],
          // Integration and e2e tests start emulators and servers: give them room on a 2-core machine.
          // Generous: a loaded 2-core CI machine runs the end-to-end ones several times slower than a laptop.
          testTimeout: 180_000,
          // A hook that starts a JVM (DynamoDB Local) waits as long as the emulator's own start bound.
          hookTimeout: 200_000,
        },
      },
    ],
  },
});
