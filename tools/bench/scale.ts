// (bench) Scale: many runs at once, cap 3 each. The double checks the cap per run from the outside
// (its own count of live calls per run), and gives each run's utilization and refill latency.

import { mulberry32 } from '../twilio-simulator/simulator.ts';
import { costPer1000Calls } from './cost.ts';
import { createRun, leadsFor, startBenchStack, waitForCalls } from './harness.ts';
import { watchMachine } from './machine.ts';
import { now } from './probe.ts';
import { analyzeRefillPath } from './refill-path.ts';
import { atMost, figure, type SectionResult, type StackSectionOptions } from './result.ts';
import { round, summarize } from './stats.ts';
import { countUsage, scanItemSizes } from './usage.ts';
import { callsOf, utilizationOf } from './utilization.ts';

export type ScaleOptions = StackSectionOptions;

const CAP = 3;

export async function runScale(options: ScaleOptions): Promise<SectionResult> {
  const runs = options.quick ? 20 : 100;
  const leadsPerRun = options.quick ? 6 : 9;
  // 100 runs × 3 slots = 300 live calls: at 10 s a call that is 30 calls (and ~300 DynamoDB requests) a
  // second, which this stack on a small machine can carry; shorter calls measure the machine instead.
  const talkMs = options.quick ? 2_500 : 9_000;
  const startedAt = new Date().toISOString();
  const machine = watchMachine(options.cpus);
  const t0 = performance.now();
  const bench = await startBenchStack({
    simulator: { queuedMs: 0, ringMs: 1_000, talkMs, jitter: 0.3, random: mulberry32(options.seed) },
    pollers: options.pollers,
    logLevel: options.logLevel,
  });
  const { stack, sim, probe } = bench;
  try {
    const window = { from: now(), to: 0 };
    const created = await Promise.all(
      Array.from({ length: runs }, (_, r) => createRun(stack.apiUrl, leadsFor(leadsPerRun, 200 + r), CAP)),
    );
    const runIds = created.map((c) => c.runId);
    await waitForCalls(sim, runIds, runs * leadsPerRun, 15 * 60_000);
    await sim.settled(60_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    window.to = now();

    const stats = sim.stats();
    const maxLive = runIds.map((id) => stats.runs[id]?.maxLive ?? 0);
    const overCap = maxLive.filter((live) => live > CAP).length;
    const perRun = runIds.map((id) => utilizationOf(callsOf(sim, id), CAP));
    const latency = summarize(runIds.flatMap((id) => sim.refillLatencies(id)));
    const utilization = summarize(perRun.map((u) => u.utilization));
    const steady = summarize(perRun.map((u) => u.steady).filter(Number.isFinite));
    const calls = runIds.reduce((total, id) => total + (stats.runs[id]?.created ?? 0), 0);
    const itemSizes = await scanItemSizes(stack.endpoints.dynamodb, stack.tableName, probe);
    const usage = countUsage(probe, { window, itemSizes, cap: CAP });
    const cost = costPer1000Calls(usage, calls);
    const postAnswer = summarize(created.map((c) => c.answerMs));
    const path = analyzeRefillPath(probe, sim.calls(), new Set(runIds));
    const eventSource = stack.eventSource() as { maxConcurrentInvocations?: number };

    return {
      section: 'scale',
      completed: true,
      startedAt,
      durationMs: round(performance.now() - t0),
      quick: options.quick,
      machine: machine.end(),
      checks: [
        atMost(`cap held: highest live calls in one of ${runs} runs`, Math.max(...maxLive), 'calls', CAP),
        atMost('runs that exceeded their cap', overCap, 'runs', 0),
        figure('utilization per run, median', utilization.p50, ''),
        figure('utilization per run, lowest', utilization.min, ''),
        figure('utilization until last create, median', steady.p50, ''),
        figure('refill latency p50', latency.p50, 'ms'),
        figure('refill latency p95', latency.p95, 'ms'),
        figure('refill latency p99', latency.p99, 'ms'),
        figure('peak live calls, all runs', stats.maxLive, 'calls'),
        figure('DynamoDB write units per call', cost.dynamoWriteUnitsPerCall, 'WRU'),
      ],
      notes: [
        `${runs} runs × ${leadsPerRun} leads at cap ${CAP}, all posted at once; calls ≈ ` +
          `${(1_000 + talkMs) / 1000} s ± 30 %; ` +
          `dispatcher pollers ${options.pollers}` +
          (eventSource.maxConcurrentInvocations
            ? ` (at most ${eventSource.maxConcurrentInvocations} ran at once)`
            : '') +
          '.',
        'Everything (handlers, emulators, the double) shares this machine: past a point the figures measure its CPU.',
      ],
      details: {
        runs,
        leadsPerRun,
        calls,
        postAnswerMs: postAnswer,
        maxLiveHistogram: histogram(maxLive),
        utilization,
        steady,
        latency,
        path,
        usage,
        cost,
        eventSource,
      },
    };
  } finally {
    await bench.stop();
  }
}

function histogram(values: number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const value of values) out[String(value)] = (out[String(value)] ?? 0) + 1;
  return out;
}
