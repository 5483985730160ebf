import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Handlers log JSON through Powertools; keep test output to what fails.
    env: { POWERTOOLS_LOG_LEVEL: 'ERROR', POWERTOOLS_METRICS_DISABLED: 'true' },
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
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
