// (bench) Slot utilization: of the slot-time a run had (cap × makespan, first create to last final),
// how much held a live call as the Twilio double saw it (each call's create → final). Two call lengths:
// 0.5 s (refill latency weighs) and 5 s, as the targets name them (every call that long), then again
// with lengths spread ± 10 % for reference: spread calls end at scattered times, so the run's last
// calls leave slots idle while the longest finishes (the drain), which no limiter can avoid. "Until
// last create" counts only while a lead was always waiting, and so leaves the drain out.

import type { SimCall, TwilioSimulator } from '../twilio-simulator/simulator.ts';
import { mulberry32 } from '../twilio-simulator/simulator.ts';
import { createRun, leadsFor, startBenchStack, waitForCalls } from './harness.ts';
import { watchMachine } from './machine.ts';
import { atLeast, type Check, figure, type SectionResult, type StackSectionOptions } from './result.ts';
import { round, summarize } from './stats.ts';

export type UtilizationOptions = StackSectionOptions;

const CAP = 3;

export interface RunUtilization {
  calls: number;
  makespanMs: number;
  busyMs: number;
  utilization: number;
  steady: number;
}

/** Utilization of one run from the double's calls. */
export function utilizationOf(calls: SimCall[], cap: number): RunUtilization {
  const done = calls.filter((c) => c.endedAt !== undefined);
  if (done.length === 0)
    return { calls: 0, makespanMs: 0, busyMs: 0, utilization: Number.NaN, steady: Number.NaN };
  const first = Math.min(...done.map((c) => c.createdAt));
  const last = Math.max(...done.map((c) => c.endedAt!));
  const lastCreate = Math.max(...done.map((c) => c.createdAt));
  const busyMs = done.reduce((total, c) => total + (c.endedAt! - c.createdAt), 0);
  const steadyBusy = done.reduce(
    (total, c) => total + Math.max(0, Math.min(c.endedAt!, lastCreate) - c.createdAt),
    0,
  );
  const makespanMs = last - first;
  return {
    calls: done.length,
    makespanMs: round(makespanMs),
    busyMs: round(busyMs),
    utilization: round(busyMs / (cap * makespanMs), 4),
    steady: lastCreate > first ? round(steadyBusy / (cap * (lastCreate - first)), 4) : Number.NaN,
  };
}

export function callsOf(sim: TwilioSimulator, runId: string): SimCall[] {
  return sim.calls().filter((call) => call.run === runId);
}

export async function runUtilization(options: UtilizationOptions): Promise<SectionResult> {
  const short = { ringMs: 100, talkMs: 400, leads: options.quick ? 45 : 150 };
  const long = { ringMs: 1000, talkMs: 4000, leads: options.quick ? 12 : 45 };
  const specs: {
    label: string;
    ringMs: number;
    talkMs: number;
    leads: number;
    jitter: number;
    target?: number;
  }[] = [
    { label: '0.5 s calls', ...short, jitter: 0, target: 0.95 },
    { label: '5 s calls', ...long, jitter: 0, target: 0.99 },
    { label: '0.5 s ± 10 % calls', ...short, jitter: 0.1 },
    { label: '5 s ± 10 % calls', ...long, jitter: 0.1 },
  ];
  const startedAt = new Date().toISOString();
  const machine = watchMachine(options.cpus);
  const t0 = performance.now();
  const bench = await startBenchStack({
    simulator: {
      queuedMs: 0,
      ringMs: specs[0]!.ringMs,
      talkMs: specs[0]!.talkMs,
      jitter: specs[0]!.jitter,
      random: mulberry32(options.seed),
    },
    pollers: options.pollers,
    logLevel: options.logLevel,
  });
  const { stack, sim } = bench;
  try {
    const checks: Check[] = [];
    const details: Record<string, unknown> = {};
    for (const [i, spec] of specs.entries()) {
      sim.configure({ ringMs: spec.ringMs, talkMs: spec.talkMs, queuedMs: 0, jitter: spec.jitter });
      const created = await createRun(stack.apiUrl, leadsFor(spec.leads, 100 + i), CAP);
      await waitForCalls(sim, [created.runId], spec.leads, 15 * 60_000);
      const figures = utilizationOf(callsOf(sim, created.runId), CAP);
      const latency = summarize(sim.refillLatencies(created.runId));
      checks.push(
        spec.target === undefined
          ? figure(`utilization, ${spec.label}`, figures.utilization, '')
          : atLeast(`utilization, ${spec.label}`, figures.utilization, '', spec.target),
        figure(`utilization until last create, ${spec.label}`, figures.steady, ''),
        figure(`refill p50, ${spec.label}`, latency.p50, 'ms'),
      );
      details[spec.label] = {
        runId: created.runId,
        leads: spec.leads,
        jitter: spec.jitter,
        ...figures,
        maxLive: sim.stats().runs[created.runId]?.maxLive,
        latency,
      };
    }
    return {
      section: 'utilization',
      completed: true,
      startedAt,
      durationMs: round(performance.now() - t0),
      quick: options.quick,
      machine: machine.end(),
      checks,
      notes: [
        `cap ${CAP}; one run per line, one after another; busy time per call = create → final at the ` +
          'double; makespan = first create → last final of the run.',
        'The targets are for calls of exactly 0.5 s and 5 s. With lengths spread ± 10 %, a run ends with ' +
          'fewer leads than slots while its calls end at scattered times, so even a perfect limiter loses ' +
          'up to one call length per slot at the end; "until last create" leaves that drain out.',
      ],
      details,
    };
  } finally {
    await bench.stop();
  }
}
