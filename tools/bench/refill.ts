// (bench) Refill latency, its floor, where it goes, and what each call costs on AWS: a few runs at
// cap 3 with short calls, one after another, on the local stack with the Twilio double. The double's
// own timestamps give "final callback sent → next calls.create received"; the floor is measured
// against the same emulators and double, half before and half after the workload.

import { fstatSync } from 'node:fs';
import { mulberry32 } from '../twilio-simulator/simulator.ts';
import { costPer1000Calls, PRICE_NOTES, recipientCheckUnits } from './cost.ts';
import { emptyFloorSamples, floorOf, measureFloor } from './floor.ts';
import { createRun, leadsFor, startBenchStack, waitForCalls } from './harness.ts';
import { watchMachine } from './machine.ts';
import { now } from './probe.ts';
import { analyzeRefillPath } from './refill-path.ts';
import { atMost, figure, type SectionResult, type StackSectionOptions } from './result.ts';
import { round, summarize } from './stats.ts';
import { countUsage, scanItemSizes } from './usage.ts';

export type RefillOptions = StackSectionOptions;

const CAP = 3;

/** Two results from one workload: `refill` (latency, floor, path) and `cost` (what it consumed). */
export async function runRefill(options: RefillOptions): Promise<[SectionResult, SectionResult]> {
  const runs = options.quick ? 1 : 3;
  const leadsPerRun = options.quick ? 80 : 180;
  const floorRounds = options.quick ? 30 : 100;
  const startedAt = new Date().toISOString();
  const machine = watchMachine(options.cpus);
  const t0 = performance.now();
  const bench = await startBenchStack({
    // Short calls (about 0.3 s), so that a run is mostly refills; ± 30 % so that a run's calls end apart.
    simulator: { queuedMs: 0, ringMs: 100, talkMs: 200, jitter: 0.3, random: mulberry32(options.seed) },
    pollers: options.pollers,
    logLevel: options.logLevel,
  });
  const { stack, sim, probe } = bench;
  try {
    const floorSamples = emptyFloorSamples();
    await measureFloor(bench, Math.ceil(floorRounds / 2), floorSamples);

    const logStart = stdoutBytes();
    const window = { from: now(), to: 0 };
    const runIds: string[] = [];
    const answerMs: number[] = [];
    for (let r = 0; r < runs; r++) {
      const created = await createRun(stack.apiUrl, leadsFor(leadsPerRun, r), CAP);
      runIds.push(created.runId);
      answerMs.push(created.answerMs);
      await waitForCalls(sim, [created.runId], leadsPerRun, 10 * 60_000);
    }
    await sim.settled(30_000);
    // The last callbacks' webhook invocations and dispatches finish after the double is settled.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    window.to = now();
    const logEnd = stdoutBytes();

    await measureFloor(bench, Math.floor(floorRounds / 2), floorSamples);
    const floor = floorOf(floorSamples);

    const latencies = runIds.flatMap((id) => sim.refillLatencies(id));
    const latency = summarize(latencies);
    const stats = sim.stats();
    const maxLive = Math.max(...runIds.map((id) => stats.runs[id]?.maxLive ?? 0));
    const calls = runIds.reduce((total, id) => total + (stats.runs[id]?.created ?? 0), 0);
    const path = analyzeRefillPath(probe, sim.calls(), new Set(runIds));

    const itemSizes = await scanItemSizes(stack.endpoints.dynamodb, stack.tableName, probe);
    const usage = countUsage(probe, { window, itemSizes });
    const logBytes = logStart !== undefined && logEnd !== undefined ? logEnd - logStart : undefined;
    const cost = costPer1000Calls(usage, calls, logBytes === undefined ? {} : { logBytes });
    const ratio = round(latency.p50 / floor.floorMs, 2);

    const refillChecks = [
      atMost('refill latency p50', latency.p50, 'ms', 25),
      atMost('refill p50 / floor', ratio, '×', 2, `floor ${floor.floorMs} ms`),
      figure('refill latency p95', latency.p95, 'ms'),
      figure('refill latency p99', latency.p99, 'ms'),
      figure('floor (txn + SQS send→receive + create)', floor.floorMs, 'ms'),
      figure('path floor (every round trip on the path)', floor.pathFloorMs, 'ms'),
      atMost('cap held (max live per run)', maxLive, 'calls', CAP),
    ];
    const checkUnits = recipientCheckUnits();
    const costChecks = [
      atMost(
        'DynamoDB write units per call',
        cost.dynamoWriteUnitsPerCall,
        'WRU',
        // The slot-state budget: a call's floor is 15 (two of them the live index's), plus retries.
        16 + checkUnits,
        `refused transactions counted at 2 units per item; budget 16 + ${checkUnits} for the recipient checks`,
      ),
      figure(
        'DynamoDB write units per call, refused writes left out',
        cost.dynamoWriteUnitsPerCallAccepted,
        'WRU',
      ),
      figure('DynamoDB read units per call', cost.dynamoReadUnitsPerCall, 'RRU'),
      figure('AWS cost per 1,000 calls', cost.awsUsdPer1000Calls, 'USD'),
      figure('Twilio per 1,000 calls (1 min each)', cost.twilioUsdPer1000Calls, 'USD'),
    ];
    const workload =
      `${runs} run(s) × ${leadsPerRun} leads at cap ${CAP}, calls ≈ 0.3 s ± 30 %, every call answered ` +
      '(4 status callbacks each); runs one after another; dispatcher pollers ' +
      `${options.pollers}; handler log level ${options.logLevel}.`;
    const durationMs = round(performance.now() - t0);
    const state = machine.end();
    const refill: SectionResult = {
      section: 'refill',
      completed: true,
      startedAt,
      durationMs,
      quick: options.quick,
      machine: state,
      checks: refillChecks,
      notes: [
        workload,
        `Refill latency from the double: ${latency.n} final callbacks paired with the next create in their run.`,
        `Path breakdown: ${path.followed} refills followed along their own dispatch message; ` +
          `${path.otherPath} filled by a dispatcher already working on the run; ${path.nothingLeft} ` +
          `with no lead left; ${path.notFollowed} not followed.`,
        `Floor: ${floor.samples} samples of each round trip, half before and half after the workload.`,
      ],
      details: {
        runs: runIds,
        leadsPerRun,
        cap: CAP,
        calls,
        postAnswerMs: answerMs.map((ms) => round(ms)),
        latency,
        floor,
        ratio,
        path,
        simulator: { createRequests: stats.createRequests, callbacks: stats.callbacks },
        eventSource: stack.eventSource(),
      },
    };
    const costResult: SectionResult = {
      section: 'cost',
      completed: true,
      startedAt,
      durationMs,
      quick: options.quick,
      machine: state,
      checks: costChecks,
      notes: [`Counted over the refill workload: ${workload}`, ...PRICE_NOTES],
      details: {
        calls,
        usage,
        cost,
        itemSizes: sizeSummary(itemSizes),
        logBytesPerCall: logBytes === undefined ? undefined : round(logBytes / Math.max(1, calls)),
      },
    };
    return [refill, costResult];
  } finally {
    await bench.stop();
  }
}

/** Largest item of each kind (run, job, chunk marker) as DynamoDB sizes it: what the write units rest on. */
function sizeSummary(sizes: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, size] of sizes) {
    if (key.startsWith('BENCH#')) continue;
    const sk = key.slice(key.indexOf('|') + 1);
    const kind = sk === 'RUN' ? 'run' : (sk.split('#')[0] ?? sk).toLowerCase();
    out[kind] = Math.max(out[kind] ?? 0, size);
  }
  return out;
}

/** Bytes written to this process's stdout so far, when it is a file (the handlers' logs go there). */
export function stdoutBytes(): number | undefined {
  try {
    const stat = fstatSync(1);
    return stat.isFile() ? stat.size : undefined;
  } catch {
    return undefined;
  }
}
