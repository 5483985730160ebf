// End to end, as a user runs it: `npm start` as a child process, driven only over HTTP — the API like
// a client, the webhook like Twilio — with an external Twilio double (TWILIO_API_BASE_URL) whose
// observer, not dialgate's counters, says how many calls were live at once. Then Ctrl-C, and no
// process left behind (DynamoDB Local is a JVM: the easiest thing to leak).

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { compileErrors, validate } from '@readme/openapi-parser';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RunView } from '../../lambdas/core/model.ts';
import { WORK_QUEUE } from '../../lambdas/definitions/resources.ts';
import { freePort } from '../../tools/local/emulators.ts';
import { failedRecordIds, startSqsEventSource } from '../../tools/local/sqs-event-source.ts';
import {
  mulberry32,
  startTwilioSimulator,
  type TwilioSimulator,
  twilioSignature,
  weightedOutcomes,
} from '../../tools/twilio-simulator/simulator.ts';
import { testAws } from '../support/aws.ts';
import { enforceContract } from '../support/contract.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FROM = '+15005550006';
/** Twilio's magic number that fails at create (21211): a lead that is never called. */
const INVALID_NUMBER = '+15005550001';

/** The API of the stack started last: every answer it gives these tests must match docs/openapi.json. */
let currentApi: string | undefined;
enforceContract(() => currentApi);

interface Started {
  child: ChildProcess;
  apiUrl: string;
  webhookUrl: string;
  output: () => string;
}

/** `npm start` in its own process group, as a terminal runs it, resolved when it prints its URLs. */
async function npmStart(env: Record<string, string>): Promise<Started> {
  const child = spawn('npm', ['start'], {
    cwd: REPO,
    env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'WARN', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr!.on('data', (chunk) => {
    output += chunk;
  });
  const deadline = Date.now() + 90_000;
  for (;;) {
    const api = /API:\s+(\S+)/.exec(output);
    const webhook = /Webhook:\s+(\S+)/.exec(output);
    if (api && webhook) {
      currentApi = api[1]!;
      return { child, apiUrl: api[1]!, webhookUrl: webhook[1]!, output: () => output };
    }
    if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}):\n${output}`);
    if (Date.now() > deadline) throw new Error(`npm start was not ready in time:\n${output}`);
    await sleep(100);
  }
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Every process under `root`, from the process table (the JVM included). */
function descendants(root: number): number[] {
  const table = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [pid, ppid] of table) {
      if (ppid === parent) {
        found.push(pid);
        queue.push(pid);
      }
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers signal 0; it runs nothing, so it does not count.
    return !/\bZ\b/.test(execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }));
  } catch {
    return false;
  }
}

async function waitUntilGone(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let left = pids.filter(alive);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(200);
    left = left.filter(alive);
  }
  return left;
}

async function stopGroup(started: Started | undefined): Promise<void> {
  // Safety net after a failed test: never leave a stack (and its JVM) running.
  if (started?.child.exitCode === null && started.child.pid) {
    try {
      process.kill(-started.child.pid, 'SIGKILL');
    } catch {}
  }
}

async function api(started: Started, method: string, path: string, body?: unknown, headers = {}) {
  const response = await fetch(`${started.apiUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function waitForRun(
  started: Started,
  runId: string,
  done: (view: RunView) => boolean,
  timeoutMs = 60_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await api(started, 'GET', `/runs/${runId}`);
    expect(status).toBe(200);
    const view = body as unknown as RunView;
    if (done(view)) return view;
    if (Date.now() > deadline) throw new Error(`run ${runId} not done in time: ${JSON.stringify(view)}`);
    await sleep(100);
  }
}

function leads(count: number, offset: number) {
  return Array.from({ length: count }, (_, i) => ({
    phone: `+1415${String(5_550_000 + offset + i).padStart(7, '0')}`,
  }));
}

describe('npm start against an external Twilio double', () => {
  let sim: TwilioSimulator;
  let started: Started | undefined;

  beforeAll(async () => {
    const random = mulberry32(11);
    sim = await startTwilioSimulator({
      ringMs: 80,
      talkMs: 150,
      jitter: 0.5,
      random,
      behavior: weightedOutcomes({ completed: 6, busy: 1, 'no-answer': 1 }, random),
    });
    started = await npmStart({
      PORT: String(await freePort()),
      TWILIO_API_BASE_URL: sim.url,
      TWILIO_ACCOUNT_SID: sim.accountSid,
      TWILIO_AUTH_TOKEN: sim.authToken,
      TWILIO_FROM_NUMBER: FROM,
    });
  }, 120_000);

  afterAll(async () => {
    await stopGroup(started);
    await sim?.stop();
  });

  test('a 30-lead run with a cap of 3 completes, never more than 3 calls live at the double', async () => {
    const body = { concurrency: 3, leads: [...leads(29, 0), { phone: INVALID_NUMBER }] };
    const created = await api(started!, 'POST', '/runs', body);
    expect(created.status).toBe(202);
    const runId = created.body.run_id as string;

    const view = await waitForRun(started!, runId, (v) => v.status === 'completed');

    // The double's own observer: the cap was reached and never passed.
    const observed = sim.stats().runs[runId]!;
    expect(observed.maxLive).toBe(3);
    expect(observed.created).toBe(29);
    expect(observed.live).toBe(0);
    expect(sim.repeatedTos()).toEqual([]);
    const calls = sim.calls().filter((call) => call.run === runId);
    expect(new Set(calls.map((call) => call.to)).size).toBe(29);
    expect(calls.every((call) => call.endedAt !== undefined)).toBe(true);

    // Every lead final, and the counts add up.
    expect(view).toMatchObject({ total_leads: 30, queued: 0, in_progress: 0, pending_ingest: 0 });
    expect(view.completed + view.failed + view.canceled).toBe(30);
    const outcomes = sim.stats().outcomes;
    expect(view.completed).toBe(calls.filter((call) => call.status === 'completed').length);
    expect(view.failed).toBe(30 - view.completed);
    expect(outcomes.busy + outcomes['no-answer']).toBeGreaterThan(0);
  }, 90_000);

  test('a forged status callback is refused with 403 and changes nothing', async () => {
    // Calls that stay up, so that a forged "completed" would free a slot if it were believed.
    sim.configure({ talkMs: 60_000, behavior: () => ({ outcome: 'completed' }) });
    const created = await api(started!, 'POST', '/runs', { concurrency: 1, leads: leads(2, 100) });
    const runId = created.body.run_id as string;
    await waitForRun(started!, runId, (v) => v.calling === 1, 30_000);
    const live = sim.calls().find((call) => call.run === runId && call.status === 'in-progress')!;

    const callbackUrl = live.statusCallback!;
    const params = {
      AccountSid: sim.accountSid,
      CallSid: live.sid,
      CallStatus: 'completed',
      From: FROM,
      To: live.to,
      CallDuration: '5',
    };
    const post = (signature: string) =>
      fetch(callbackUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature },
        body: new URLSearchParams(params).toString(),
      });
    expect(callbackUrl.startsWith(started!.webhookUrl)).toBe(true);
    expect((await post('bm90IGEgc2lnbmF0dXJl')).status).toBe(403);
    expect((await post(twilioSignature('not-the-auth-token', callbackUrl, params))).status).toBe(403);
    // Signed for another URL (another job): refused too.
    expect((await post(twilioSignature(sim.authToken, `${callbackUrl}0`, params))).status).toBe(403);

    const after = (await api(started!, 'GET', `/runs/${runId}`)).body as unknown as RunView;
    expect(after).toMatchObject({ calling: 1, completed: 0, queued: 1 });
    expect(sim.stats().runs[runId]!.created).toBe(1);

    // The real hang-up, signed by the double, does free the slot and the next lead is called.
    sim.configure({ talkMs: 50 });
    expect(sim.hangUp(live.sid)).toBe(true);
    // The next lead is called at once; with 50 ms calls it may have ended before this poll sees it.
    await waitForRun(started!, runId, (v) => v.completed >= 1 && v.completed + v.in_progress === 2, 30_000);
    for (const call of sim.calls().filter((c) => c.run === runId && c.endedAt === undefined))
      sim.hangUp(call.sid);
    await waitForRun(started!, runId, (v) => v.status === 'completed', 30_000);
    expect(sim.stats().runs[runId]!.maxLive).toBe(1);
  }, 90_000);

  test('Ctrl-C (SIGINT to the process group) stops everything it started', async () => {
    const pid = started!.child.pid!;
    const children = descendants(pid);
    expect(children.length).toBeGreaterThanOrEqual(3); // sh, node … the JVM and the SQS emulator
    const exited = once(started!.child, 'exit');
    process.kill(-pid, 'SIGINT');
    const [code, signal] = await exited;
    // npm itself dies of the SIGINT at once (as in a terminal); what matters is what it leaves behind.
    expect(code === 0 || signal === 'SIGINT').toBe(true);
    expect(await waitUntilGone(children, 15_000)).toEqual([]);
    // The last lines may still be in the pipe when the processes are gone.
    if (!started!.child.stdout!.readableEnded) await once(started!.child.stdout!, 'end');
    expect(started!.output()).toContain('stopped.');
    // The emulators get the same Ctrl-C and may exit first: that is the stop, not a failure to report.
    expect(started!.output()).not.toMatch(/exited with code|was killed by|is gone/);
  }, 30_000);
});

describe('npm start with API_KEY and the built-in simulator', () => {
  let started: Started | undefined;

  beforeAll(async () => {
    started = await npmStart({
      PORT: String(await freePort()),
      API_KEY: 'sesame',
      SIM_RING_MS: '50',
      SIM_TALK_MS: '50',
      // Every call answered, so that the run's counts are known in advance.
      SIM_OUTCOMES: 'completed',
    });
  }, 120_000);

  afterAll(() => stopGroup(started));

  test('requests need x-api-key: 401 without, 403 when wrong, through when right', async () => {
    const run = { concurrency: 2, leads: leads(4, 200) };
    const missing = await api(started!, 'POST', '/runs', run);
    expect(missing.status).toBe(401);
    expect(missing.body).toMatchObject({ error: { code: 'unauthorized', message: expect.any(String) } });
    const wrong = await api(started!, 'GET', '/runs/x', undefined, { 'x-api-key': 'open-sesame' });
    expect(wrong.status).toBe(403);
    expect(wrong.body).toMatchObject({ error: { code: 'forbidden', message: expect.any(String) } });

    const created = await api(started!, 'POST', '/runs', run, { 'x-api-key': 'sesame' });
    expect(created.status).toBe(202);
    const runId = created.body.run_id as string;
    const deadline = Date.now() + 30_000;
    let view: Record<string, unknown> = {};
    while (view.status !== 'completed' && Date.now() < deadline) {
      const got = await api(started!, 'GET', `/runs/${runId}`, undefined, { 'x-api-key': 'sesame' });
      expect(got.status).toBe(200);
      view = got.body;
      await sleep(100);
    }
    expect(view).toMatchObject({ status: 'completed', completed: 4, total_leads: 4 });
  }, 60_000);

  test('GET /openapi.json needs no key and is the committed document, valid to a standard validator', async () => {
    const response = await fetch(`${started!.apiUrl}/openapi.json`);
    expect(response.status).toBe(200);
    const served = (await response.json()) as Parameters<typeof validate>[0];
    expect(served).toEqual(JSON.parse(readFileSync(join(REPO, 'docs', 'openapi.json'), 'utf8')));
    const result = await validate(served);
    expect(result.valid, compileErrors(result)).toBe(true);
  });

  test('SIGTERM to npm alone (a process manager) still stops everything', async () => {
    const pid = started!.child.pid!;
    const children = descendants(pid);
    // npm passes SIGTERM to its shell, which dies without passing it on: the stack must notice.
    process.kill(pid, 'SIGTERM');
    expect(await waitUntilGone(children, 20_000)).toEqual([]);
  }, 30_000);
});

/** The process under `root` whose command line matches `pattern` (the JVM, the SQS emulator). */
function findProcess(root: number, pattern: RegExp): number | undefined {
  return descendants(root).find((pid) => {
    try {
      return pattern.test(execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }));
    } catch {
      return false;
    }
  });
}

describe('a plain npm start', () => {
  let started: Started | undefined;
  afterAll(() => stopGroup(started));

  test('calls end in several outcomes, as the banner says, and the failed ones can be listed', async () => {
    // The default mix, seeded, on shorter calls than the default (which look like real calls).
    started = await npmStart({
      PORT: String(await freePort()),
      SIM_SEED: '5',
      SIM_RING_MS: '40',
      SIM_TALK_MS: '80',
    });
    expect(started.output()).toMatch(
      /calls end completed 65%, no-answer 18%, busy 8%, failed 5%, invalid 4%/,
    );
    expect(started.output()).toMatch(/Console: +http:\/\/127\.0\.0\.1:\d+\//);
    const created = await api(started, 'POST', '/runs', {
      concurrency: 3,
      retry: { max_attempts: 1 },
      leads: leads(40, 400),
    });
    expect(created.status).toBe(202);
    const runId = created.body.run_id as string;
    const view = await waitForRun(started, runId, (v) => v.status === 'completed', 90_000);
    const outcomes = Object.keys(view.outcomes).filter((outcome) => view.outcomes[outcome]! > 0);
    expect(outcomes.length).toBeGreaterThanOrEqual(3);
    expect(view.failed).toBeGreaterThan(0);
    expect(view.completed).toBeGreaterThan(view.failed);
    const failed = await api(started, 'GET', `/runs/${runId}/calls?status=failed&limit=100`);
    const calls = failed.body.calls as { status: string; outcome: string }[];
    expect(calls).toHaveLength(view.failed);
    expect(new Set(calls.map((call) => call.outcome)).size).toBeGreaterThanOrEqual(2);
  }, 150_000);
});

describe('npm start supervises its backends', () => {
  const cases = [
    {
      service: 'DynamoDB Local',
      process: /DynamoDBLocal\.jar/,
      lost: /every run, lead and call held in memory is lost/,
    },
    {
      service: 'the SQS emulator',
      process: /sqs-emulator-process\.ts/,
      lost: /messages on the work queue .* are lost/,
    },
  ];
  for (const backend of cases) {
    test(`killing ${backend.service} stops npm start with a message naming it and exit code 1`, async () => {
      let started: Started | undefined;
      try {
        started = await npmStart({ PORT: String(await freePort()), SIM_SEED: '3' });
        const created = await api(started, 'POST', '/runs', { concurrency: 2, leads: leads(3, 300) });
        expect(created.status).toBe(202);
        const pid = findProcess(started.child.pid!, backend.process);
        expect(pid, `no ${backend.service} process under npm start`).toBeDefined();

        const family = descendants(started.child.pid!);
        const exited = once(started.child, 'exit');
        // From here on the stack answers 503 "backend died", a local-stack-only answer that the API's
        // document does not describe: the contract check stops at the kill.
        currentApi = undefined;
        process.kill(pid!, 'SIGKILL');
        // Once the stack has said what happened, no answer may claim that nothing was lost.
        const said = new RegExp(`${backend.service} was killed by SIGKILL`);
        while (!said.test(started.output()) && started.child.exitCode === null) await sleep(50);
        const answers: { status: number; message: string }[] = [];
        while (started.child.exitCode === null) {
          try {
            const got = await api(started, 'GET', `/runs/${created.body.run_id}`);
            answers.push({
              status: got.status,
              message: String((got.body.error as { message?: string })?.message),
            });
          } catch {
            break; // the API is gone: stopping
          }
          await sleep(50);
        }
        const [code] = await exited;
        if (!started.child.stdout!.readableEnded) await once(started.child.stdout!, 'end');
        const output = started.output();
        expect(output).toMatch(said);
        expect(output).toMatch(backend.lost);
        expect(code).toBe(1);
        for (const answer of answers) {
          expect(answer.status).toBe(503);
          expect(answer.message).toMatch(said);
          expect(answer.message).not.toMatch(/nothing was lost/);
        }
        // Nothing left behind: the other backend and the simulator stopped with it.
        expect(await waitUntilGone(family, 15_000)).toEqual([]);
      } finally {
        await stopGroup(started);
      }
    }, 150_000);
  }
});

describe('npm run invoke on the sample events', () => {
  const invoke = (fn: string, ...events: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolvePromise) => {
      const child = spawn('npm', ['run', '-s', 'invoke', '--', fn, ...events], {
        cwd: REPO,
        env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'ERROR' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
      });
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
      });
      child.on('exit', (code) => resolvePromise({ code, stdout, stderr }));
    });

  test('a create-run event is accepted; a signed callback is taken, a forged one refused', async () => {
    const [created, callbacks] = await Promise.all([
      invoke('api', 'events/api-gateway/create-run.json'),
      invoke('webhook', 'function-url/twilio-status-completed', 'function-url/twilio-status-forged'),
    ]);
    for (const result of [created, callbacks]) expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ statusCode: 202 });
    expect(JSON.parse(callbacks.stdout)).toMatchObject([{ statusCode: 200 }, { statusCode: 403 }]);
    // What each invocation changed, on stderr: the run item and the ingest message for a new run; for
    // a callback naming a run this fresh table does not have, nothing, and why.
    expect(created.stderr).toMatch(/changed:\n {2}\+ item RUN#/);
    expect(created.stderr).toMatch(/work queue: \+\d+ message\(s\)/);
    expect(callbacks.stderr).toMatch(
      /twilio-status-completed: \d+ ms\) changed nothing\.\n {2}\(the event names run /,
    );
    // Two stacks (two JVMs) start at once: room for a loaded 2-core machine.
  }, 180_000);

  test('an unknown event name lists the sample events of that function', async () => {
    const result = await invoke('webhook', 'twilio-status-complete');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no event "twilio-status-complete". Sample events for webhook:');
    expect(result.stderr).toContain('  function-url/twilio-status-completed\n');
    expect(result.stderr).not.toContain('api-gateway/');
  });
});

describe("the local SQS event source (Lambda's, emulated)", () => {
  const record = (messageId: string) => ({ messageId }) as SQSRecord;

  test('reads partial batch responses as Lambda does', () => {
    const batch = [record('a'), record('b')];
    expect(failedRecordIds(undefined, batch)).toEqual(new Set());
    expect(failedRecordIds({ batchItemFailures: [] }, batch)).toEqual(new Set());
    expect(failedRecordIds({ batchItemFailures: [{ itemIdentifier: 'b' }] }, batch)).toEqual(new Set(['b']));
    // A response naming a record not in the batch, or no id at all, fails the whole batch.
    expect(failedRecordIds({ batchItemFailures: [{ itemIdentifier: 'zz' }] }, batch)).toEqual(
      new Set(['a', 'b']),
    );
    expect(failedRecordIds({ batchItemFailures: [{ itemIdentifier: '' }] }, batch)).toEqual(
      new Set(['a', 'b']),
    );
    expect(failedRecordIds('oops', batch)).toEqual(new Set(['a', 'b']));
  });

  test('deletes successes, retries failures quickly, moves a poison message to the DLQ, retries a thrown batch', async () => {
    const aws = await testAws();
    const { queueUrl, dlqUrl } = aws.queues;
    const { Attributes } = await aws.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
    );
    const seen: { body: string; receiveCount: number }[] = [];
    let thrown = false;
    const source = startSqsEventSource({
      fn: {
        name: 'test-dispatcher',
        async invoke(event: SQSEvent) {
          for (const r of event.Records) {
            seen.push({ body: r.body, receiveCount: Number(r.attributes.ApproximateReceiveCount) });
          }
          if (!thrown && event.Records.some((r) => r.body === 'throw-once')) {
            thrown = true;
            throw new Error('handler crashed');
          }
          return {
            batchItemFailures: event.Records.filter((r) => r.body === 'poison').map((r) => ({
              itemIdentifier: r.messageId,
            })),
          };
        },
      },
      sqs: aws.sqs,
      queueUrl,
      queueArn: Attributes!.QueueArn!,
      region: 'us-east-1',
      batchSize: WORK_QUEUE.batchSize,
      pollers: 2,
      retryVisibilitySeconds: 1,
      onError: () => {},
    });
    try {
      for (const body of ['ok', 'poison', 'throw-once']) {
        await aws.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
      }
      const deadline = Date.now() + 30_000;
      let parked: string | undefined;
      while (!parked && Date.now() < deadline) {
        const { Messages = [] } = await aws.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: dlqUrl, WaitTimeSeconds: 1 }),
        );
        parked = Messages[0]?.Body;
      }
      expect(parked).toBe('poison');
      const times = (body: string) => seen.filter((s) => s.body === body).map((s) => s.receiveCount);
      expect(times('ok')).toEqual([1]);
      expect(times('throw-once')).toEqual([1, 2]);
      expect(times('poison')).toEqual(Array.from({ length: WORK_QUEUE.maxReceiveCount }, (_, i) => i + 1));
      expect(source.stats()).toMatchObject({ failedInvocations: 1 });
    } finally {
      await source.stop();
      aws.sqs.destroy();
      aws.dynamo.destroy();
    }
  }, 60_000);
});
