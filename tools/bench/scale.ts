// (bench) Scale, under the DynamoDB limits model (lambdas/adapters/dynamo-limits.ts: conflicts and
// per-partition throttling, which DynamoDB Local does not enforce). Runs at caps 3, 20, 100 and 500,
// then runs under an account cap, each workload in its own measured window: write units per call,
// the largest item on the slot path, the hottest partition's write units per second (measured, and
// projected at 5,000 live 60-second calls), refill latency, utilization, conflicts and throttles. The
// Twilio double checks every cap from outside (its own count of calls live at once, per run).
// Calls last 30 s (± 10 %), as the issue's utilization target names; each run has leads for three to
// four rounds of its cap, so refills happen while a lead is always waiting. --quick shortens calls.
// The floor (one transaction, one SQS hand-off, one create) is measured on the same stack before and
// after its workloads, so the refill ratio compares like with like on a noisy machine.

import { limitsModelFromEnv } from '../../lambdas/adapters/dynamo-limits.ts';
import { accountShardCaps } from '../../lambdas/core/account-shards.ts';
import { refillLatencies } from '../twilio-simulator/observer.ts';
import { mulberry32 } from '../twilio-simulator/simulator.ts';
import { costPer1000Calls, recipientCheckUnits } from './cost.ts';
import { emptyFloorSamples, type FloorResult, floorOf, measureFloor } from './floor.ts';
import { type BenchStack, createRun, leadsFor, startBenchStack, waitForCalls } from './harness.ts';
import { watchMachine } from './machine.ts';
import { now, type SdkCall } from './probe.ts';
import { analyzeRefillPath, type RefillPath } from './refill-path.ts';
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
  /** The account cap the runs share; utilization and refills are then counted account-wide. */
  accountCap?: number;
}

/** Slots whose filling from empty is timed (a newly free cap of 200). */
const FILL_SLOTS = 200;

/** The partition limit DynamoDB enforces: write units a second per partition. */
const PARTITION_WRITE_LIMIT = 1000;

/**
 * `scale`: one stack, runs at caps 3, 20, 100 and 500, no account cap. `account`: one stack with the
 * account cap on, three runs sharing it. Each is a section of its own because a section's process
 * keeps one local stack (the handlers' clients live in module state, as in Lambda).
 */
export async function runScale(options: ScaleOptions, section: 'scale' | 'account'): Promise<SectionResult> {
  // Every DynamoDB client the handlers make in this process goes through the model.
  process.env.DYNAMO_LIMITS_MODEL = '1';
  const model = limitsModelFromEnv()!;
  const q = options.quick;
  const ringMs = 500;
  const talkMs = q ? 4_500 : 29_500;
  const jitter = q ? 0.3 : 0.1;
  const perCap: Workload[] = [
    { label: 'cap 3', cap: 3, runs: q ? 4 : 10, leadsPerRun: q ? 9 : 12 },
    { label: 'cap 20', cap: 20, runs: q ? 1 : 2, leadsPerRun: q ? 60 : 80 },
    { label: 'cap 100', cap: 100, runs: 1, leadsPerRun: q ? 200 : 300 },
    { label: 'cap 500', cap: 500, runs: 1, leadsPerRun: q ? 600 : 1_500 },
  ];
  // SCALE_ACCOUNT_CAP=200: the account workload scaled down (three runs of half the account cap, as
  // many leads as at 1,000), to tell what the design does from what this machine can serve.
  // SCALE_ACCOUNT_RUNS=25 SCALE_ACCOUNT_RUN_CAP=10: many small runs instead (three rounds of leads
  // each), whose own caps the account's share of each often reaches.
  const accountCap = Number(process.env.SCALE_ACCOUNT_CAP ?? (q ? 300 : 1_000));
  const accountRuns = Number(process.env.SCALE_ACCOUNT_RUNS ?? 3);
  const accountRunCap = process.env.SCALE_ACCOUNT_RUN_CAP
    ? Number(process.env.SCALE_ACCOUNT_RUN_CAP)
    : undefined;
  const withAccount: Workload = {
    label: `account cap ${accountCap}`,
    cap: accountRunCap ?? (q ? 150 : Math.min(500, Math.ceil(accountCap / 2))),
    runs: accountRuns,
    leadsPerRun: accountRunCap ? accountRunCap * 3 : q ? 250 : Math.round(accountCap * 0.8),
    accountCap,
  };
  const floorRounds = q ? 10 : 30;
  const startedAt = new Date().toISOString();
  const machine = watchMachine(options.cpus);
  const t0 = performance.now();
  const results: Record<string, unknown>[] = [];
  const checks: Check[] = [];
  // SCALE_CAPS=100,500: only those caps' workloads (to look into one without the others' minutes).
  const only = process.env.SCALE_CAPS?.split(',').map(Number);
  const [workloads, env] =
    section === 'scale'
      ? [perCap.filter((w) => !only || only.includes(w.cap)), { MAX_CONCURRENCY: '500' }]
      : [[withAccount], { MAX_CONCURRENCY: '500', ACCOUNT_MAX_CONCURRENT_CALLS: String(accountCap) }];
  try {
    {
      const bench = await startBenchStack({
        simulator: { queuedMs: 0, ringMs, talkMs, jitter, random: mulberry32(options.seed) },
        pollers: options.pollers,
        logLevel: options.logLevel,
        functionEnv: env,
      });
      try {
        await warmUp(bench, q, { ringMs, talkMs });
        const floorSamples = emptyFloorSamples();
        await measureFloor(bench, floorRounds, floorSamples);
        const measured: Record<string, unknown>[] = [];
        for (const workload of workloads) measured.push(await measure(bench, workload, model));
        await measureFloor(bench, floorRounds, floorSamples);
        const floor = floorOf(floorSamples);
        for (const r of measured) results.push(withFloor(r, floor));
      } finally {
        await bench.stop();
      }
    }
  } catch (error) {
    return {
      section,
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

  const checkUnits = recipientCheckUnits();
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
      atMost(
        `${label}: write units per call`,
        Number(r.writeUnitsPerCall),
        'WCU',
        (accountOn ? 20 : 16) + checkUnits,
        `budget ${accountOn ? 20 : 16} + ${checkUnits} for the recipient checks; ` +
          `refused writes ${r.refusedWriteUnitsPerCall}; ` +
          Object.entries(r.writeUnitsPerCallBy as Record<string, number>)
            .filter(([, units]) => units >= 0.05)
            .map(([what, units]) => `${what} ${units}`)
            .join(', '),
      ),
    );
    const refused = r.refusedTransactionsPerCall as Record<string, number>;
    checks.push(perCallFigure(`${label}: refused transactions per call`, refused, refused, 0.01));
    checks.push(atMost(`${label}: largest item on the slot path`, Number(r.largestSlotItem), 'bytes', 2048));
    checks.push(
      figure(
        `${label}: hottest partition, write units a second`,
        Number(r.hottestWriteUnitsPerSecond),
        'WCU/s',
      ),
    );
    checks.push(
      Number(r.fillSlots) >= FILL_SLOTS
        ? atMost(
            `${label}: time to fill ${r.fillSlots} free slots from the first create`,
            Number(r.fillMs),
            'ms',
            2_000,
          )
        : figure(
            `${label}: time to fill ${r.fillSlots} free slots from the first create`,
            Number(r.fillMs),
            'ms',
          ),
    );
    checks.push(
      atMost(
        `${label}: refill p50 / floor`,
        Number(r.refillRatio),
        '×',
        2,
        `refill p50 ${r.refillP50} ms, floor ${r.floorMs} ms`,
      ),
    );
    const path = r.refillPath as ReturnType<typeof pathSummary> | undefined;
    if (path)
      checks.push(
        figure(
          `${label}: refills followed end to end (p50)`,
          path.followed,
          '',
          `${path.totalP50} ms; other path ${path.otherPath}, nothing left ${path.nothingLeft}, not followed ${path.notFollowed}; mean ms: ` +
            Object.entries(path.segmentsMeanMs)
              .map(([segment, ms]) => `${segment} ${ms}`)
              .join(', '),
        ),
      );
    checks.push(
      atLeast(
        `${label}: utilization until the last create, median of runs`,
        Number(r.utilizationSteady),
        '',
        0.98,
      ),
    );
    checks.push(figure(`${label}: utilization with the drain, median of runs`, Number(r.utilization), ''));
    checks.push(
      figure(
        `${label}: transaction conflicts (retried)`,
        Number(r.conflicts),
        '',
        String(r.conflictsOn || ''),
      ),
    );
    checks.push(pairsFigure(`${label}: conflicts by the transactions that met`, r.conflictPairs as Pairs));
    if (r.shardConflictPaths)
      checks.push(pairsFigure(`${label}: shard conflicts by what sent them`, r.shardConflictPaths as Pairs));
    const inFlight = r.transactionMs as { p50: number; p95: number; p99: number };
    checks.push(
      figure(
        `${label}: a transaction in flight, p50`,
        inFlight.p50,
        'ms',
        `p95 ${inFlight.p95} ms, p99 ${inFlight.p99} ms: the window in which another transaction on its items conflicts; ` +
          `by shape, p50 (n): ${Object.entries(
            r.transactionMsByShape as Record<string, { n: number; p50: number }>,
          )
            .map(([shape, s]) => `[${shape}] ${s.p50} ms (${s.n})`)
            .join('; ')}`,
      ),
    );
    checks.push(figure(`${label}: throttles (retried)`, Number(r.throttles), ''));
    // By what they did; the rarest (under 0.05 a call) left out.
    checks.push(
      perCallFigure(
        `${label}: DynamoDB requests per call`,
        r.requestsPerCall as Record<string, number>,
        r.requestsPerCallBy as Record<string, number>,
        0.05,
      ),
    );
    if (accountOn)
      checks.push(
        atMost(`${label}: highest live calls across the account`, Number(r.maxLiveAll), 'calls', accountCap),
      );
  }
  // At 5,000 live 60-second calls: 83 calls a second. A run's partition takes its own calls (at most
  // 500 live: 8.3 a second); a shard (50 live) 0.83 a second; the pace item (with CPS) every create.
  const projected: Record<string, number> = {};
  if (section === 'scale') {
    const worst = results.reduce((max, r) => Math.max(max, Number(r.runPartitionUnitsPerCall)), 0);
    projected.runPartition = round((worst * (500 / 60)) / PARTITION_WRITE_LIMIT, 3);
    checks.push(
      atMost(
        "at 5,000 live 60 s calls: a cap-500 run's partition, share of 1,000 WCU/s",
        projected.runPartition,
        '',
        0.3,
      ),
    );
  } else {
    const shardUnits = Number(results.at(-1)?.shardUnitsPerCall ?? 4);
    projected.shard = round((shardUnits * (50 / 60)) / PARTITION_WRITE_LIMIT, 3);
    projected.paceItem = round((2 * (5_000 / 60)) / PARTITION_WRITE_LIMIT, 3);
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
  }
  checks.push(
    atLeast(
      'every lead called once (leads called twice)',
      -Number(results.reduce((t, r) => t + Number(r.calledTwice), 0)),
      '',
      0,
    ),
  );

  return {
    section,
    completed: true,
    startedAt,
    durationMs: round(performance.now() - t0),
    quick: q,
    machine: machine.end(),
    checks,
    notes: [
      `Under the DynamoDB limits model (DYNAMO_LIMITS_MODEL=1${model.conflictWindowMs === undefined ? '' : `, a transaction holding its items ${model.conflictWindowMs} ms at most: DYNAMO_LIMITS_CONFLICT_WINDOW_MS`}). Calls ≈ ${(ringMs + talkMs) / 1000} s ± ${jitter * 100} %; ` +
        'the projection at 5,000 live 60-second calls scales the measured write units per call to that call rate.',
      'Utilization is busy slot time over cap × time; "until the last create" counts only while a lead was ' +
        "waiting (the drain at the end, up to one call length per slot, is no limiter's to avoid). " +
        `The floor: ${floorRounds} samples of each round trip before and ${floorRounds} after each stack's workloads.`,
      `Workloads: ${workloads.map((w) => `${w.label}: ${w.runs} × ${w.leadsPerRun} leads at cap ${w.cap}`).join('; ')}; ` +
        (section === 'account'
          ? `account shards ${accountShardCaps(accountCap).length} of ${accountShardCaps(accountCap)[0]}. `
          : '') +
        `Dispatcher pollers ${options.pollers}.`,
      'Everything (handlers, emulators, the double) shares this machine: past a point the figures measure its CPU.',
      ...(q
        ? []
        : [
            `Before the floor and the workloads, a warm-up run on the same stack, counted nowhere (cap ${WARM_UP.cap}, ` +
              `${WARM_UP.leads} leads of ~${(WARM_UP.ringMs + WARM_UP.talkMs) / 1000} s calls): DynamoDB Local's JVM ` +
              'answers its first minutes of work several times slower than it does warm, and DynamoDB on AWS has no such warm-up.',
          ]),
    ],
    details: { results, projected },
  };
}

/** The warm-up run: cap 100, 600 leads of calls ~1.5 s long; counted nowhere. */
const WARM_UP = { cap: 100, leads: 600, ringMs: 500, talkMs: 1_000 };

/**
 * A run through the whole stack before anything is measured. DynamoDB Local's JVM compiles its hot
 * paths over its first minutes of work, and until then answers several times slower: the same cap-500
 * workload measured first on a fresh stack had transactions in flight 110 ms at p50, and 34 ms right
 * after a cap-100 workload. DynamoDB on AWS has no such warm-up, and the workloads after the first
 * were measured warm: without this, whichever came first paid for the emulator's start.
 */
async function warmUp(bench: BenchStack, quick: boolean, calls: { ringMs: number; talkMs: number }) {
  if (quick) return;
  const { stack, sim } = bench;
  sim.configure({ ringMs: WARM_UP.ringMs, talkMs: WARM_UP.talkMs });
  try {
    const { runId } = await createRun(stack.apiUrl, leadsFor(WARM_UP.leads, 999), WARM_UP.cap);
    await waitForCalls(sim, [runId], WARM_UP.leads, 5 * 60_000);
    await sim.settled(60_000);
  } finally {
    sim.configure(calls);
  }
}

function withFloor(result: Record<string, unknown>, floor: FloorResult): Record<string, unknown> {
  return {
    ...result,
    floorMs: floor.floorMs,
    refillRatio: round(Number(result.refillP50) / floor.floorMs, 2),
  };
}

async function measure(
  bench: BenchStack,
  workload: Workload,
  model: NonNullable<ReturnType<typeof limitsModelFromEnv>>,
) {
  const { stack, sim, probe } = bench;
  const before = {
    ...model.report,
    conflictsByKind: new Map(model.report.conflictsByKind),
    requestsByCommand: new Map(model.report.requestsByCommand),
    transactionsSent: model.report.transactionMs.length,
    byShape: new Map([...model.report.transactionMsByShape].map(([shape, list]) => [shape, list.length])),
    pairs: new Map(model.report.conflictPairs),
    hottest: 0,
  };
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
  // Under an account cap the runs share the slots: a call one run ends may be refilled by another, so
  // slots and refills are counted across the runs, against the account cap.
  const perRun =
    workload.accountCap === undefined
      ? runIds.map((id) => utilizationOf(callsOf(sim, id), workload.cap))
      : [
          utilizationOf(
            runIds.flatMap((id) => callsOf(sim, id)),
            workload.accountCap,
          ),
        ];
  const latency = summarize(
    workload.accountCap === undefined
      ? runIds.flatMap((id) => sim.refillLatencies(id))
      : refillLatencies(
          sim
            .timeline()
            .filter((event) => event.run !== undefined && runIds.includes(event.run))
            .map((event) => ({ ...event, run: 'account' })),
        ),
  );
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
    // Where the units go, per call: which function wrote what (refused conditional writes included).
    writeUnitsPerCallBy: Object.fromEntries(
      Object.entries(usage.dynamo.writeUnitsBy)
        .sort((a, b) => b[1] - a[1])
        .map(([what, units]) => [what, round(units / Math.max(1, calls), 2)]),
    ),
    refusedWriteUnitsPerCall: round(usage.dynamo.refusedWriteUnits / Math.max(1, calls), 2),
    // Refused transactions per call, by what sent them and which items refused (conflicts included).
    refusedTransactionsPerCall: Object.fromEntries(
      Object.entries(usage.dynamo.refusedTransactions)
        .sort((a, b) => b[1] - a[1])
        .map(([what, n]) => [what, round(n / Math.max(1, calls), 2)]),
    ),
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
    utilizationSteady: summarize(perRun.map((u) => u.steady)).p50,
    conflicts: model.report.conflicts - before.conflicts,
    // How long a transaction was in flight (the window another one on its items conflicts in): on
    // AWS ~10-25 ms; here, DynamoDB Local's answer time on this machine under the workload.
    transactionMs: summarize(model.report.transactionMs.slice(before.transactionsSent)),
    // The same by shape (the release's and the acquire's apart), those sent during this workload.
    transactionMsByShape: Object.fromEntries(
      [...model.report.transactionMsByShape]
        .map(([shape, list]) => [shape, summarize(list.slice(before.byShape.get(shape) ?? 0))] as const)
        .filter(([, summary]) => summary.n >= 10)
        .map(([shape, summary]) => [shape, { n: summary.n, p50: summary.p50, mean: summary.mean }]),
    ),
    // Which items the conflicts were on (RUN: run items, SLOTS: their counters, JOB, SHARD, …).
    conflictsOn: [...model.report.conflictsByKind]
      .map(([kind, n]) => [kind, n - (before.conflictsByKind.get(kind) ?? 0)] as const)
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([kind, n]) => `${kind} ${n}`)
      .join(', '),
    // Which transactions met which (the cancelled one first), the most frequent.
    conflictPairs: mostFrequent(
      new Map([...model.report.conflictPairs].map(([pair, n]) => [pair, n - (before.pairs.get(pair) ?? 0)])),
    ),
    throttles:
      model.report.writeThrottles - before.writeThrottles + model.report.readThrottles - before.readThrottles,
    // DynamoDB requests the handlers sent per call, by command (tries included): the local table's load.
    requestsPerCall: Object.fromEntries(
      [...model.report.requestsByCommand]
        .map(
          ([command, n]) =>
            [command.replace(/Command$/, ''), n - (before.requestsByCommand.get(command) ?? 0)] as const,
        )
        .filter(([, n]) => n > 0)
        .sort((a, b) => b[1] - a[1])
        .map(([command, n]) => [command, round(n / Math.max(1, calls), 2)]),
    ),
    // The same by what each request did (which function, which operation on which item or index).
    requestsPerCallBy: Object.fromEntries(
      Object.entries(usage.dynamo.requestsBy)
        .sort((a, b) => b[1] - a[1])
        .map(([what, n]) => [what, round(n / Math.max(1, calls), 2)]),
    ),
    calledTwice: [...perNumber.values()].filter((n) => n > 1).length,
    ...(workload.accountCap === undefined ? {} : { shardConflictPaths: shardConflictPaths(probe, window) }),
    // Where a run's refills spent their time (single runs: under an account cap a freed slot may go
    // to another run, which the path's analysis does not follow).
    ...(workload.accountCap === undefined
      ? { refillPath: pathSummary(analyzeRefillPath(probe, sim.calls(), new Set(runIds))) }
      : {}),
  };
}

/**
 * Conflicts on account shards by what sent the two transactions: each refused attempt on a shard item
 * is paired with another request on that item in flight when it was sent, and each side is named by
 * its function and, for a dispatcher, the dispatch it was working on (a refill's hint, an account
 * slot handed to its run, an empty hint, a plain dispatch, a lead chunk).
 */
function shardConflictPaths(probe: BenchStack['probe'], window: { from: number; to: number }) {
  const dispatchOf = new Map<string, string>();
  for (const call of probe.calls)
    for (const message of call.sent ?? [])
      if (message.id) dispatchOf.set(message.id, message.dispatch ?? message.type ?? '?');
  const invocations = new Map(probe.invocations.map((inv) => [inv.id, inv]));
  const pathOf = (call: SdkCall) => {
    const inv = call.inv === undefined ? undefined : invocations.get(call.inv);
    if (!inv) return 'other';
    if (inv.fn !== 'dispatcher') return inv.fn;
    const kinds = [...new Set((inv.messageIds ?? []).map((id) => dispatchOf.get(id) ?? '?'))];
    return `dispatcher (${kinds.sort().join(' + ')})`;
  };
  const onShard = (call: SdkCall) => call.keys?.filter((key) => /\|SHARD$/.test(key)) ?? [];
  const shardCalls = probe.calls.filter(
    (c) => c.op === 'TransactWriteItems' && c.t0 >= window.from && c.t0 <= window.to && onShard(c).length > 0,
  );
  const pairs = new Map<string, number>();
  // When they came: a burst at the first fill, or all along.
  const tenths = Array<number>(10).fill(0);
  const span = Math.max(1, window.to - window.from);
  for (const refused of shardCalls) {
    // A conflict: cancelled with no item's condition failed.
    if (refused.ok || refused.error !== 'TransactionCanceledException' || refused.refusedItems?.length)
      continue;
    tenths[Math.min(9, Math.floor(((refused.t0 - window.from) / span) * 10))]! += 1;
    const keys = onShard(refused);
    const holder = shardCalls.find(
      (c) =>
        c !== refused && c.t0 <= refused.t0 && c.t1 >= refused.t0 && onShard(c).some((k) => keys.includes(k)),
    );
    // Within one invocation (a batch's records side by side) or between two.
    const where = holder && holder.inv !== undefined && holder.inv === refused.inv ? ', one invocation' : '';
    const pair = `${pathOf(refused)} ⟂ ${holder ? pathOf(holder) : 'none seen'}${where}`;
    pairs.set(pair, (pairs.get(pair) ?? 0) + 1);
  }
  return { ...mostFrequent(pairs), tenths, windowS: Math.round(span / 1000) };
}

/** Counted pairs: how many in all, and the eight most frequent (and, for some, how many in each tenth of the window). */
interface Pairs {
  total: number;
  top: Record<string, number>;
  tenths?: number[];
  windowS?: number;
}

function mostFrequent(counts: Map<string, number>): Pairs {
  const counted = [...counts].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  return {
    total: counted.reduce((sum, [, n]) => sum + n, 0),
    top: Object.fromEntries(counted.slice(0, 8)),
  };
}

function pairsFigure(name: string, pairs: Pairs): Check {
  const top = Object.entries(pairs.top).map(([pair, n]) => `${n}× ${pair}`);
  const over = pairs.tenths ? `; by tenth of the ${pairs.windowS} s window: ${pairs.tenths.join(', ')}` : '';
  return figure(name, pairs.total, '', `the most frequent: ${top.join('; ')}${over}`);
}

/** A per-call figure: the sum of `perCall`, detailed by `byWhat` (those under `min` a call left out). */
function perCallFigure(
  name: string,
  perCall: Record<string, number>,
  byWhat: Record<string, number>,
  min: number,
): Check {
  const total = round(
    Object.values(perCall).reduce((sum, n) => sum + n, 0),
    2,
  );
  const detail = Object.entries(byWhat)
    .filter(([, n]) => n >= min)
    .map(([what, n]) => `${what} ${n}`)
    .join(', ');
  return figure(name, total, '', detail);
}

/** A refill path's counts and its segments' means, largest first (those under 0.5 ms left out). */
function pathSummary(path: RefillPath) {
  return {
    followed: path.followed,
    otherPath: path.otherPath,
    nothingLeft: path.nothingLeft,
    notFollowed: path.notFollowed,
    totalP50: path.total.p50,
    segmentsMeanMs: Object.fromEntries(
      Object.entries(path.segments)
        .filter(([, s]) => s.mean >= 0.5)
        .sort((a, b) => b[1].mean - a[1].mean)
        .map(([name, s]) => [name, round(s.mean, 1)]),
    ),
  };
}
