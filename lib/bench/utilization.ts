// (bench) Slot utilization: of the slot-time a run had (cap × makespan, first create to last final),
// how much held a live call as the Twilio double saw it (each call's create → final). Two call lengths:
// 0.5 s (refill latency weighs) and 5 s. "Steady" counts only until the last create, when a lead was
// always waiting: the drain at the end (fewer leads than slots) is not the limiter's doing.

import type { SimCall, TwilioSimulator } from '../local/twilio-simulator.ts';
import { mulberry32 } from '../local/twilio-simulator.ts';
import { createRun, leadsFor, startBenchStack, waitForCalls } from './harness.ts';
import { watchMachine } from './machine.ts';
import { atLeast, type Check, figure, type SectionResult } from './result.ts';
import { round, summarize } from './stats.ts';

export interface UtilizationOptions {
  quick: boolean;
  seed: number;
  pollers: number;
  logLevel: string;
  cpus: number;
}

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
  const specs = [
    { label: '0.5 s calls', ringMs: 100, talkMs: 400, leads: options.quick ? 45 : 150, target: 0.95 },
    { label: '5 s calls', ringMs: 1000, talkMs: 4000, leads: options.quick ? 12 : 45, target: 0.99 },
  ];
  const startedAt = new Date().toISOString();
  const machine = watchMachine(options.cpus);
  const t0 = performance.now();
  const bench = await startBenchStack({
    simulator: {
      queuedMs: 0,
      ringMs: specs[0]!.ringMs,
      talkMs: specs[0]!.talkMs,
      jitter: 0.1,
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
      sim.configure({ ringMs: spec.ringMs, talkMs: spec.talkMs, queuedMs: 0, jitter: 0.1 });
      const created = await createRun(stack.apiUrl, leadsFor(spec.leads, 100 + i), CAP);
      await waitForCalls(sim, [created.runId], spec.leads, 15 * 60_000);
      const figures = utilizationOf(callsOf(sim, created.runId), CAP);
      const latency = summarize(sim.refillLatencies(created.runId));
      checks.push(
        atLeast(`utilization, ${spec.label}`, figures.utilization, '', spec.target),
        figure(`utilization until last create, ${spec.label}`, figures.steady, ''),
        figure(`refill p50, ${spec.label}`, latency.p50, 'ms'),
      );
      details[spec.label] = {
        runId: created.runId,
        leads: spec.leads,
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
        `cap ${CAP}; call length ± 10 %; busy time per call = create → final at the double; makespan = ` +
          'first create → last final of the run.',
        'A run ends with fewer leads than slots, so even a perfect limiter loses up to one call length per ' +
          'slot at the end; "until last create" leaves that drain out.',
      ],
      details,
    };
  } finally {
    await bench.stop();
  }
}
