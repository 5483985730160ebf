// The README's console screenshot (docs/console.png), taken as a user would see the page: headless
// Chromium (Debian's, driven by playwright-core) on a run of the local stack that has just finished,
// with the simulator's default outcome mix. `npx tsx tools/screenshots/console.ts [out.png]`;
// CHROMIUM_PATH points at another Chromium.

import { resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { REPO_ROOT } from '../local/lambda-runtime.ts';
import { startLocalStack } from '../local/stack.ts';
import { mulberry32, REALISTIC_OUTCOMES, weightedOutcomes } from '../twilio-simulator/simulator.ts';

const out = resolve(process.argv[2] ?? resolve(REPO_ROOT, 'docs', 'console.png'));
process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

const random = mulberry32(58);
const stack = await startLocalStack({
  port: 0,
  simulator: {
    ringMs: 400,
    talkMs: 2_500,
    jitter: 0.5,
    random,
    behavior: weightedOutcomes(REALISTIC_OUTCOMES, random),
  },
});
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
try {
  const names = ['Dana', 'Eli', 'Noa', 'Omer', 'Maya', 'Yoni', 'Tal', 'Shira', 'Avi', 'Lior'];
  const response = await fetch(`${stack.apiUrl}/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      concurrency: 3,
      retry: { max_attempts: 1 },
      leads: Array.from({ length: 30 }, (_, i) => ({
        phone: `+1415${String(5_550_100 + i).padStart(7, '0')}`,
        name: names[i % names.length],
      })),
    }),
  });
  const { run_id: runId } = (await response.json()) as { run_id: string };
  const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
  await page.goto(`${stack.apiUrl}/#/runs/${runId}`);
  // Polled from here: the page's Content-Security-Policy allows no evaluated script.
  const waitFor = async (selector: string, test: (text: string) => boolean, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (
      !test(
        (await page
          .locator(selector)
          .first()
          .textContent()
          .catch(() => null)) ?? '',
      )
    ) {
      if (Date.now() > deadline) throw new Error(`${selector} did not show what was awaited`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  await waitFor('#run-status', (text) => text === 'completed', 300_000);
  // The finished run's own figures, then the calls table's final page.
  await waitFor('#dial-rate', (text) => /^\d/.test(text));
  await page.getByRole('button', { name: 'Refresh' }).last().click();
  await waitFor('#calls-table caption', (text) => text.startsWith('30 calls shown'));
  await page.screenshot({ path: out, fullPage: true });
  console.log(`saved ${out}`);
} finally {
  await browser.close();
  await stack.stop();
}
