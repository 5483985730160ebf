// The performance budgets that are counts, not timings, kept from regressing in `npm test` (timings
// are left to `npm run bench`: shared, noisy machines make them no test's business).
// - The webhook and dispatcher bundles, built as lib/constructs/dialgate-function.ts builds them, stay
//   within 1.5 MB and leave twilio's package index (every REST domain) out.
// - A small refill workload on the local stack, watched by the bench's probe, stays within 16 DynamoDB
//   write units (the scale target, flat in the cap) and 3 read units per call with the per-recipient
//   checks off (SUPPRESSION_CHECK=off, no frequency cap), counted as the bench
//   counts them. A call's floor is 15: ingest 2 (the job and its queued-index entry), acquire 6 (run
//   and job, twice each in a transaction, the queued-index entry out and the live-index entry in), the
//   saved CallSid 1, answered 1, release 5 (run and job, the live-index entry out); each run adds its
//   own item and its chunks' markers, and a refused acquire is billed too.
// - Most refills read nothing before their transactions: the webhook releases without reading the run
//   (requeue_on in the callback URL), and a warm dispatcher acquires a hinted job without reading the
//   run or querying the queue (the refill hint).
//
// The workload runs on a stack of its own (startBenchStack, as the bench does), not on the emulators of
// the global setup: the stack starts its own DynamoDB Local and fauxqs on free ports, and a table of
// its own is what the write-unit count needs (item sizes come from a scan of the whole table). The
// probe patches the SDK's client class and the handlers' middy instances process-wide; vitest runs
// each file in a process of its own (pool 'forks'), so nothing leaks into other files.

import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOptionsFor, constructBundling } from '../../tools/bench/coldstart.ts';
import { costPer1000Calls } from '../../tools/bench/cost.ts';
import {
  type BenchStack,
  createRun,
  leadsFor,
  startBenchStack,
  waitForCalls,
} from '../../tools/bench/harness.ts';
import { now, type Probe, type SdkCall } from '../../tools/bench/probe.ts';
import { isReleaseOf } from '../../tools/bench/refill-path.ts';
import { countUsage, scanItemSizes } from '../../tools/bench/usage.ts';
import { mulberry32 } from '../../tools/twilio-simulator/simulator.ts';

const MB = 1_000_000;

describe('bundle size budget', () => {
  const bundling = constructBundling();

  it('reads every bundling option from the construct', () => {
    expect(bundling.unconfirmed).toEqual([]);
  });

  for (const fn of ['webhook', 'dispatcher'] as const) {
    it(`${fn}: at most 1.5 MB as deployed, without twilio's package index`, async () => {
      // The construct's options, as tools/bench/coldstart.ts applies them; nothing is written to disk.
      const outfile = join(tmpdir(), `dialgate-budget-${fn}`, 'index.mjs');
      const result = await build({ ...buildOptionsFor(bundling, fn, outfile), write: false });
      const code = result.outputFiles.find((file) => file.path === outfile);
      expect(code, 'the bundle itself among esbuild outputs').toBeDefined();
      const bytes = code!.contents.byteLength;
      console.info(`budget: ${fn} bundle ${(bytes / MB).toFixed(3)} MB`);
      expect.soft(bytes / MB, `${fn} bundle, MB`).toBeLessThanOrEqual(1.5);

      // twilio's index requires every REST domain (the 4.7 MB bundles); only its webhooks module may come in.
      const inputs = Object.keys(result.metafile.inputs);
      const rest = inputs.filter((path) => path.includes('node_modules/twilio/lib/rest/'));
      expect.soft(rest.length, `files of twilio/lib/rest/ in the ${fn} bundle, e.g. ${rest[0]}`).toBe(0);
      const index = inputs.filter((path) => /node_modules\/twilio\/lib\/index\.js$/.test(path));
      expect(index, `twilio's package index in the ${fn} bundle`).toEqual([]);
    });
  }
});

describe('DynamoDB budgets of a refill workload', () => {
  const CAP = 3;
  const LEADS = 30;
  let bench: BenchStack;
  let runId: string;
  let calls: number;
  let window: { from: number; to: number };

  beforeAll(async () => {
    // Short calls (about 0.15 s ± 30 %, seeded), so that the run is mostly refills.
    bench = await startBenchStack({
      simulator: { queuedMs: 0, ringMs: 50, talkMs: 100, jitter: 0.3, random: mulberry32(7) },
      logLevel: 'ERROR',
      // The budget is the slot path's own: the per-recipient checks (the suppression list, on by
      // default, and a frequency cap, on one item per number) add 2 write units a call, measured by
      // `npm run bench`.
      functionEnv: { SUPPRESSION_CHECK: 'off' },
    });
    window = { from: now(), to: 0 };
    const created = await createRun(bench.stack.apiUrl, leadsFor(LEADS, 0), CAP);
    runId = created.runId;
    await waitForCalls(bench.sim, [runId], LEADS, 60_000);
    await bench.sim.settled(30_000);
    // The last callbacks' webhook invocations and dispatches finish after the double is settled.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    window.to = now();
    calls = bench.sim.stats().runs[runId]?.created ?? 0;
  }, 120_000);

  afterAll(async () => {
    await bench?.stop();
  });

  it('called every lead once, never more than the cap at a time', () => {
    const stats = bench.sim.stats().runs[runId];
    expect(stats?.created).toBe(LEADS);
    expect(stats?.final).toBe(LEADS);
    expect(bench.sim.repeatedTos()).toEqual([]);
    expect(stats?.maxLive).toBeLessThanOrEqual(CAP);
    expect(stats?.maxLive).toBeGreaterThan(1);
  });

  it('at most 16 write units and 3 read units per call (refused transactions included)', async () => {
    const itemSizes = await scanItemSizes(bench.stack.endpoints.dynamodb, bench.stack.tableName, bench.probe);
    const usage = countUsage(bench.probe, { window, itemSizes });
    const cost = costPer1000Calls(usage, calls);
    console.info(
      `budget: ${cost.dynamoWriteUnitsPerCall} write units per call ` +
        `(${cost.dynamoWriteUnitsPerCallAccepted} without refused writes), ` +
        `${cost.dynamoReadUnitsPerCall} read units per call, over ${calls} calls; refused transactions: ` +
        JSON.stringify(usage.dynamo.refusedTransactions),
    );
    expect(calls).toBe(LEADS);
    expect.soft(cost.dynamoWriteUnitsPerCall, 'write units per call').toBeLessThanOrEqual(16);
    expect.soft(cost.dynamoReadUnitsPerCall, 'read units per call').toBeLessThanOrEqual(3);
  });

  it('most refills read nothing before their release and acquire transactions', () => {
    const refills = followRefills(bench.probe, runId);
    const readFree = refills.filter((r) => r.webhookReadsFirst === 0 && r.dispatcherReadsFirst === 0);
    const share = readFree.length / Math.max(1, refills.length);
    console.info(
      `budget: ${readFree.length} of ${refills.length} followed refills read nothing first ` +
        `(${(100 * share).toFixed(0)} %); webhook read first in ` +
        `${refills.filter((r) => r.webhookReadsFirst > 0).length}, dispatcher in ` +
        `${refills.filter((r) => r.dispatcherReadsFirst > 0).length}`,
    );
    // 30 leads at cap 3: 27 refills at most; a few end with the run or share a dispatcher.
    expect(refills.length).toBeGreaterThanOrEqual(15);
    expect(share).toBeGreaterThanOrEqual(0.8);
  });
});

interface FollowedRefill {
  job: string;
  /** GetItem requests the webhook sent before its release transaction started. */
  webhookReadsFirst: number;
  /** GetItem and Query requests on the run the dispatcher sent before its acquire transaction started. */
  dispatcherReadsFirst: number;
}

/**
 * Each final callback of the run followed as tools/bench/refill-path.ts follows it: the webhook
 * invocation's release transaction, its "dispatch run" message, the dispatcher invocation that
 * received it and that invocation's first acquire on the run. Left out: refills with no acquire
 * (the run's last calls, or another dispatcher took the slot) and dispatches that shared their
 * invocation with another dispatch of the same run (their requests cannot be told apart).
 */
function followRefills(probe: Probe, runId: string): FollowedRefill[] {
  const byInvocation = new Map<number, SdkCall[]>();
  for (const call of probe.calls) {
    if (call.inv === undefined) continue;
    byInvocation.set(call.inv, [...(byInvocation.get(call.inv) ?? []), call]);
  }
  const dispatchesOfRun = new Set<string>();
  for (const call of probe.calls) {
    for (const message of call.sent ?? []) {
      if (message.id && message.type === 'dispatch' && message.runId === runId)
        dispatchesOfRun.add(message.id);
    }
  }
  const runKey = `RUN#${runId}|RUN`;
  const jobPrefix = `RUN#${runId}|JOB#`;
  const refills: FollowedRefill[] = [];
  for (const webhook of probe.invocations) {
    if (webhook.fn !== 'webhook' || webhook.run !== runId || !webhook.job) continue;
    if (!['completed', 'busy', 'no-answer', 'failed', 'canceled'].includes(webhook.callStatus ?? ''))
      continue;
    const calls = byInvocation.get(webhook.id) ?? [];
    const release = calls.find((c) => isReleaseOf(c, runId, webhook.job!));
    const send = calls.find(
      (c) => c.op === 'SendMessage' && c.sent?.[0]?.type === 'dispatch' && c.sent[0].runId === runId,
    );
    const messageId = send?.sent?.[0]?.id;
    if (!release || !messageId) continue;
    const dispatcher = probe.invocations.find(
      (inv) => inv.fn === 'dispatcher' && inv.messageIds?.includes(messageId),
    );
    if (!dispatcher) continue;
    if ((dispatcher.messageIds ?? []).filter((id) => dispatchesOfRun.has(id)).length > 1) continue;
    const dispatcherCalls = byInvocation.get(dispatcher.id) ?? [];
    const acquire = dispatcherCalls.find(
      (c) =>
        c.op === 'TransactWriteItems' && c.ok && c.keys?.[0] === runKey && c.keys[1]?.startsWith(jobPrefix),
    );
    if (!acquire) continue;
    refills.push({
      job: webhook.job,
      webhookReadsFirst: calls.filter((c) => c.op === 'GetItem' && c.t0 < release.t0).length,
      dispatcherReadsFirst: dispatcherCalls.filter(
        (c) =>
          c.t0 < acquire.t0 &&
          ((c.op === 'GetItem' && c.keys?.[0] === runKey) || (c.op === 'Query' && c.queryKey === runId)),
      ).length,
    });
  }
  return refills;
}
