// (bench) Scale, under the DynamoDB limits model (lambdas/adapters/dynamo-limits.ts: conflicts and
// per-partition throttling, which DynamoDB Local does not enforce). Runs at caps 3, 20, 100 and 500,
// then runs under an account cap, each workload in its own measured window: write units per call,
// the largest item on the slot path, the hottest partition's write units per second (measured, and
// projected at 5,000 live 60-second calls), refill latency, utilization, conflicts and throttles. The
// Twilio double checks every cap from outside (its own count of calls live at once, per run).
// Calls are shortened (a few seconds) so that a run cycles its slots many times in a bench's minutes.

import { limitsModelFromEnv } from '../../lambdas/adapters/dynamo-limits.ts';
import { accountShardCaps } from '../../lambdas/core/account-shards.ts';
import { mulberry32 } from '../twilio-simulator/simulator.ts';
import { costPer1000Calls } from './cost.ts';
import { type BenchStack, createRun, leadsFor, startBenchStack, waitForCalls } from './harness.ts';
import { watchMachine } from './machine.ts';
import { now } from './probe.ts';
import {
  atLeast,
  atMost,
  type Check,
  figure,
  type SectionResult,
  type StackSectionOptions,
} from './result.ts';
import { round, summarize } from './stats.ts';
import { countUsage, scanItemSizes } from './usage.ts';
import { callsOf, utilizationOf } from './utilization.ts';

export type ScaleOptions = StackSectionOptions;

interface Workload {
  label: string;
  cap: number;
  runs: number;
  leadsPerRun: number;
}

/** Slots whose filling from empty is timed (a newly free cap of 200). */
const FILL_SLOTS = 200;

/** The partition limit DynamoDB enforces: write units a second per partition. */
const PARTITION_WRITE_LIMIT = 1000;

export async function runScale(options: ScaleOptions): Promise<SectionResult> {
  // Every DynamoDB client the handlers make in this process goes through the model.
  process.env.DYNAMO_LIMITS_MODEL = '1';
  const model = limitsModelFromEnv()!;
  const q = options.quick;
  const talkMs = q ? 2_000 : 4_000;
  const perCap: Workload[] = [
    { label: 'cap 3', cap: 3, runs: q ? 4 : 10, leadsPerRun: q ? 9 : 15 },
    { label: 'cap 20', cap: 20, runs: q ? 1 : 2, leadsPerRun: q ? 60 : 100 },
    { label: 'cap 100', cap: 100, runs: 1, leadsPerRun: q ? 200 : 400 },
    { label: 'cap 500', cap: 500, runs: 1, leadsPerRun: q ? 600 : 1_500 },
  ];
  const accountCap = q ? 300 : 1_000;
  const withAccount: Workload = {
    label: `account cap ${accountCap}`,
    cap: q ? 150 : 500,
    runs: q ? 3 : 3,
    leadsPerRun: q ? 250 : 800,
  };
  const startedAt = new Date().toISOString();
  const machine = watchMachine(options.cpus);
  const t0 = performance.now();
  const results: Record<string, unknown>[] = [];
  const checks: Check[] = [];
  try {
    for (const [workloads, env] of [
      [perCap, { MAX_CONCURRENCY: '500' }],
      [[withAccount], { MAX_CONCURRENCY: '500', ACCOUNT_MAX_CONCURRENT_CALLS: String(accountCap) }],
    ] as const) {
      const bench = await startBenchStack({
        simulator: { queuedMs: 0, ringMs: 500, talkMs, jitter: 0.3, random: mulberry32(options.seed) },
        pollers: options.pollers,
        logLevel: options.logLevel,
        functionEnv: env,
      });
      try {
        for (const workload of workloads) results.push(await measure(bench, workload, model));
      } finally {
        await bench.stop();
      }
    }
  } catch (error) {
    return {
      section: 'scale',
      completed: false,
      error: String((error as Error)?.stack ?? error),
      startedAt,
      durationMs: round(performance.now() - t0),
      quick: q,
      machine: machine.end(),
      checks,
      notes: [],
      details: { results },
    };
  }

  for (const r of results) {
    const label = String(r.label);
    checks.push(
      atMost(
        `${label}: highest live calls in one run (cap ${r.cap})`,
        Number(r.maxLive),
        'calls',
        Number(r.cap),
      ),
    );
    const accountOn = label.startsWith('account');
    checks.push(
      atMost(`${label}: write units per call`, Number(r.writeUnitsPerCall), 'WCU', accountOn ? 20 : 16),
    );
    checks.push(atMost(`${label}: largest item on the slot path`, Number(r.largestSlotItem), 'bytes', 2048));
    checks.push(
      figure(
        `${label}: hottest partition, write units a second`,
        Number(r.hottestWriteUnitsPerSecond),
        'WCU/s',
      ),
    );
    checks.push(
      figure(
        `${label}: time to fill ${r.fillSlots} free slots from the first create`,
        Number(r.fillMs),
        'ms',
      ),
    );
    checks.push(figure(`${label}: refill latency p50`, Number(r.refillP50), 'ms'));
    checks.push(figure(`${label}: utilization per run, median`, Number(r.utilization), ''));
    checks.push(figure(`${label}: transaction conflicts (retried)`, Number(r.conflicts), ''));
    checks.push(figure(`${label}: throttles (retried)`, Number(r.throttles), ''));
    if (accountOn)
      checks.push(
        atMost(`${label}: highest live calls across the account`, Number(r.maxLiveAll), 'calls', accountCap),
      );
  }
  // At 5,000 live 60-second calls: 83 calls a second. A run's partition takes its own calls (at most
  // 500 live: 8.3 a second); a shard (50 live) 0.83 a second; the pace item (with CPS) every create.
  const worst = results.reduce((max, r) => Math.max(max, Number(r.runPartitionUnitsPerCall)), 0);
  const shardUnits = Number(results.at(-1)?.shardUnitsPerCall ?? 4);
  const projected = {
    runPartition: round((worst * (500 / 60)) / PARTITION_WRITE_LIMIT, 3),
    shard: round((shardUnits * (50 / 60)) / PARTITION_WRITE_LIMIT, 3),
    paceItem: round((2 * (5_000 / 60)) / PARTITION_WRITE_LIMIT, 3),
  };
  checks.push(
    atMost(
      "at 5,000 live 60 s calls: a cap-500 run's partition, share of 1,000 WCU/s",
      projected.runPartition,
      '',
      0.3,
    ),
  );
  checks.push(
    atMost('at 5,000 live 60 s calls: one account shard, share of 1,000 WCU/s', projected.shard, '', 0.3),
  );
  checks.push(
    atMost(
      'at 5,000 live 60 s calls: the pace item (every create), share of 1,000 WCU/s',
      projected.paceItem,
      '',
      0.3,
    ),
  );
  checks.push(
    atLeast(
      'every lead called once (leads called twice)',
      -Number(results.reduce((t, r) => t + Number(r.calledTwice), 0)),
      '',
      0,
    ),
  );

  return {
    section: 'scale',
    completed: true,
    startedAt,
    durationMs: round(performance.now() - t0),
    quick: q,
    machine: machine.end(),
    checks,
    notes: [
      `Under the DynamoDB limits model (DYNAMO_LIMITS_MODEL=1). Calls ≈ ${(500 + talkMs) / 1000} s ± 30 % ` +
        '(shortened: a bench cannot wait for 60-second calls); the projection at 5,000 live 60-second calls ' +
        'scales the measured write units per call to that call rate.',
      `Workloads: ${[...perCap, withAccount].map((w) => `${w.label}: ${w.runs} × ${w.leadsPerRun} leads at cap ${w.cap}`).join('; ')}; ` +
        `account shards ${accountShardCaps(accountCap).length} of ${accountShardCaps(accountCap)[0]}. Dispatcher pollers ${options.pollers}.`,
      'Everything (handlers, emulators, the double) shares this machine: past a point the figures measure its CPU.',
    ],
    details: { results, projected },
  };
}

async function measure(
  bench: BenchStack,
  workload: Workload,
  model: NonNullable<ReturnType<typeof limitsModelFromEnv>>,
) {
  const { stack, sim, probe } = bench;
  const before = { ...model.report, hottest: 0 };
  model.report.hottestWriteUnitsPerSecond = { partition: '', units: 0 };
  const partitionsBefore = new Map(model.report.writeUnitsByPartition);
  const window = { from: now(), to: 0 };
  const created = await Promise.all(
    Array.from({ length: workload.runs }, (_, r) =>
      createRun(stack.apiUrl, leadsFor(workload.leadsPerRun, 300 + r + workload.cap), workload.cap),
    ),
  );
  const runIds = created.map((c) => c.runId);
  const liveAllBefore = sim.stats().maxLive;
  await waitForCalls(sim, runIds, workload.runs * workload.leadsPerRun, 20 * 60_000);
  await sim.settled(60_000);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  window.to = now();
  const stats = sim.stats();
  const calls = runIds.reduce((total, id) => total + (stats.runs[id]?.created ?? 0), 0);
  const itemSizes = await scanItemSizes(stack.endpoints.dynamodb, stack.tableName, probe);
  const usage = countUsage(probe, { window, itemSizes });
  const cost = costPer1000Calls(usage, calls);
  const slotItems = [...itemSizes.entries()].filter(([key]) => /\|(RUN|SHARD|PACE|LIMITS|JOB#.*)$/.test(key));
  const largest = slotItems.reduce((max, [, size]) => Math.max(max, size), 0);
  const perRun = runIds.map((id) => utilizationOf(callsOf(sim, id), workload.cap));
  const latency = summarize(runIds.flatMap((id) => sim.refillLatencies(id)));
  const written = new Map<string, number>();
  for (const [partition, units] of model.report.writeUnitsByPartition)
    written.set(partition, units - (partitionsBefore.get(partition) ?? 0));
  const runPartitionUnits = runIds.map(
    (id) => [...written.entries()].find(([p]) => p.endsWith(`|RUN#${id}`))?.[1] ?? 0,
  );
  const shardUnits = [...written.entries()]
    .filter(([p]) => /\|ACCOUNT#[^|]*#\d+$/.test(p))
    .reduce((t, [, u]) => t + u, 0);
  // How fast an empty cap fills: from a run's first create to its 200th (or its cap-th, when the cap
  // is smaller), read from the double's timeline: the acquires come in waves, many in a transaction.
  const fillTimes = runIds.map((id) => {
    const creates = sim
      .timeline()
      .filter((event) => event.kind === 'create' && event.run === id)
      .map((event) => event.at)
      .sort((a, b) => a - b);
    const nth = Math.min(FILL_SLOTS, workload.cap, creates.length);
    return nth > 0 ? creates[nth - 1]! - creates[0]! : 0;
  });
  const perNumber = new Map<string, number>();
  for (const id of runIds)
    for (const call of callsOf(sim, id)) perNumber.set(call.to, (perNumber.get(call.to) ?? 0) + 1);
  return {
    label: workload.label,
    cap: workload.cap,
    runs: workload.runs,
    calls,
    maxLive: Math.max(...runIds.map((id) => stats.runs[id]?.maxLive ?? 0)),
    maxLiveAll: Math.max(stats.maxLive, liveAllBefore),
    writeUnitsPerCall: cost.dynamoWriteUnitsPerCall,
    largestSlotItem: largest,
    hottestWriteUnitsPerSecond: model.report.hottestWriteUnitsPerSecond.units,
    hottestPartition: model.report.hottestWriteUnitsPerSecond.partition.split('|')[1],
    runPartitionUnitsPerCall: round(Math.max(...runPartitionUnits) / Math.max(1, calls / workload.runs), 2),
    shardUnitsPerCall: round(shardUnits / Math.max(1, calls), 2),
    fillSlots: Math.min(FILL_SLOTS, workload.cap),
    fillMs: round(Math.max(...fillTimes)),
    refillP50: latency.p50,
    refillP95: latency.p95,
    utilization: summarize(perRun.map((u) => u.utilization)).p50,
    conflicts: model.report.conflicts - before.conflicts,
    throttles:
      model.report.writeThrottles - before.writeThrottles + model.report.readThrottles - before.readThrottles,
    calledTwice: [...perNumber.values()].filter((n) => n > 1).length,
  };
}
