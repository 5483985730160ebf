// What we deploy is what we test: `npm start` running the functions from the bundles `cdk synth`
// writes (ESM, with the require banner, everything bundled) instead of the TypeScript sources
// (BUNDLES_FROM), driven over HTTP like the other end-to-end tests, with an external Twilio double.
// A bundling mistake — a missing export, a dynamic require the banner does not cover, a module the
// bundle leaves out — fails here, not in Lambda.
//
// The app is synthesized in-process (the same buildDialgate bin/app.ts runs, the same NodejsFunction
// bundling the CLI triggers) into a temporary cloud assembly outside the repository, so that a bundle
// finds no node_modules to fall back on, as in Lambda; the local stack finds each function's bundle
// there as a deploy does (template Code.S3Key → asset manifest → asset directory). The stack runs as
// its own process so that Node's own loader imports the bundles (vitest's would resolve a module the
// bundle left out from the repository's node_modules).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RunView } from '../../lambdas/core/model.ts';
import { FUNCTIONS, type FunctionName } from '../../lambdas/definitions/resources.ts';
import { bundlesInAssembly } from '../../tools/local/cdk-bundles.ts';
import { freePort } from '../../tools/local/emulators.ts';
import {
  mulberry32,
  startTwilioSimulator,
  type TwilioSimulator,
  twilioSignature,
  weightedOutcomes,
} from '../../tools/twilio-simulator/simulator.ts';
import { synthDialgate } from '../infra/synth.ts';
import { npmStart, type Started, stopNpmStart } from '../support/npm-start.ts';

const FROM = '+15005550006';
/** Twilio's magic number that fails at create (21211): a lead that is never called. */
const INVALID_NUMBER = '+15005550001';

let assemblyDir: string;
let sim: TwilioSimulator;
let started: Started | undefined;

// Two hooks, each with its own allowance: bundling four functions and starting the stack (a JVM among
// it) each take minutes on a loaded 2-core machine.
beforeAll(() => {
  assemblyDir = mkdtempSync(join(tmpdir(), 'dialgate-cdk-out-'));
  // Template.fromStack inside synthDialgate synthesizes the app: the bundles are in assemblyDir now.
  synthDialgate({}, { bundle: true, outdir: assemblyDir });
}, 240_000);

beforeAll(async () => {
  const random = mulberry32(18);
  sim = await startTwilioSimulator({
    ringMs: 60,
    talkMs: 120,
    jitter: 0.5,
    random,
    behavior: weightedOutcomes({ completed: 6, busy: 1, 'no-answer': 1 }, random),
  });
  started = await npmStart({
    PORT: String(await freePort()),
    BUNDLES_FROM: assemblyDir,
    TWILIO_API_BASE_URL: sim.url,
    TWILIO_ACCOUNT_SID: sim.accountSid,
    TWILIO_AUTH_TOKEN: sim.authToken,
    TWILIO_FROM_NUMBER: FROM,
  });
}, 180_000);

afterAll(async () => {
  await stopNpmStart(started);
  await sim?.stop();
  if (assemblyDir) rmSync(assemblyDir, { recursive: true, force: true });
});

async function api(method: string, path: string, body?: unknown) {
  const response = await fetch(`${started!.apiUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function waitForRun(runId: string, done: (view: RunView) => boolean, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await api('GET', `/runs/${runId}`);
    expect(status).toBe(200);
    const view = body as unknown as RunView;
    if (done(view)) return view;
    if (Date.now() > deadline) {
      throw new Error(`run ${runId} not done in time: ${JSON.stringify(view)}\n${started!.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** US numbers in the 415 area code, one per lead. */
const leads = (count: number, offset: number) =>
  Array.from({ length: count }, (_, i) => ({
    phone: `+1415${String(5_550_100 + offset + i).padStart(7, '0')}`,
  }));

describe('npm start on the bundles cdk synth wrote', () => {
  test('finds each function bundle in the cloud assembly, and npm start says it runs them', () => {
    const bundles = bundlesInAssembly(assemblyDir);
    for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
      const { file, exportName } = bundles[name];
      expect(relative(assemblyDir, file), name).toMatch(/^asset\.[0-9a-f]{64}\/index\.mjs$/);
      expect(exportName, name).toBe('handler');
      // The construct's banner: CommonJS dependencies' `require` of Node built-ins works in ESM.
      expect(readFileSync(file, 'utf8').startsWith('import { createRequire'), name).toBe(true);
    }
    expect(started!.output()).toContain(`Code:    the bundles in ${assemblyDir}`);
  });

  test('a 12-lead run with a cap of 3 completes, never more than 3 calls live at the double', async () => {
    // Answered calls stay up until hung up below, so the cap is reached however slowly a loaded
    // machine dispatches; busy and unanswered ones end on their own.
    sim.configure({ talkMs: 60_000 });
    const created = await api('POST', '/runs', {
      concurrency: 3,
      leads: [...leads(11, 0), { phone: INVALID_NUMBER }],
    });
    expect(created.status).toBe(202);
    const runId = created.body.run_id as string;
    await waitForRun(runId, () => (sim.stats().runs[runId]?.live ?? 0) >= 3, 60_000);

    // Then every answered call is hung up as it comes: the run drains to completed.
    const view = await waitForRun(runId, (v) => {
      for (const call of sim.calls())
        if (call.run === runId && call.status === 'in-progress') sim.hangUp(call.sid);
      return v.status === 'completed';
    });

    // The double's own observer: the cap was reached and never passed.
    const observed = sim.stats().runs[runId]!;
    expect(observed.maxLive).toBe(3);
    expect(observed.created).toBe(11);
    expect(observed.live).toBe(0);
    expect(sim.repeatedTos()).toEqual([]);
    expect(view).toMatchObject({ total_leads: 12, queued: 0, in_progress: 0, pending_ingest: 0 });
    expect(view.completed + view.failed + view.canceled).toBe(12);
    const calls = sim.calls().filter((call) => call.run === runId);
    expect(view.completed).toBe(calls.filter((call) => call.status === 'completed').length);
  }, 120_000);

  test('a forged status callback is refused with 403 and changes nothing; the real one frees the slot', async () => {
    // A call that stays up, so that a forged "completed" would free a slot if it were believed.
    sim.configure({ talkMs: 60_000, behavior: () => ({ outcome: 'completed' }) });
    const created = await api('POST', '/runs', { concurrency: 1, leads: leads(2, 50) });
    expect(created.status).toBe(202);
    const runId = created.body.run_id as string;
    await waitForRun(runId, (v) => v.calling === 1, 30_000);
    const live = sim.calls().find((call) => call.run === runId && call.status === 'in-progress')!;

    const callbackUrl = live.statusCallback!;
    expect(callbackUrl.startsWith(started!.webhookUrl)).toBe(true);
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
    expect((await post(twilioSignature('not-the-auth-token', callbackUrl, params))).status).toBe(403);
    expect((await post(twilioSignature(sim.authToken, `${callbackUrl}0`, params))).status).toBe(403);
    const after = (await api('GET', `/runs/${runId}`)).body as unknown as RunView;
    expect(after).toMatchObject({ calling: 1, completed: 0, queued: 1 });
    expect(sim.stats().runs[runId]!.created).toBe(1);

    // The simulator's own, signed callback is accepted: the slot is freed and the next lead called.
    sim.configure({ talkMs: 50 });
    expect(sim.hangUp(live.sid)).toBe(true);
    // The next lead is called at once; with 50 ms calls it may have ended before this poll sees it.
    await waitForRun(runId, (v) => v.completed >= 1 && v.completed + v.in_progress === 2, 30_000);
    for (const call of sim.calls().filter((c) => c.run === runId && c.endedAt === undefined))
      sim.hangUp(call.sid);
    await waitForRun(runId, (v) => v.status === 'completed', 30_000);
    expect(sim.stats().runs[runId]!.maxLive).toBe(1);
  }, 90_000);
});
