// (bench) What every benchmark section shares: the local stack with the probe attached, leads and runs
// over the real HTTP API, waiting on the Twilio double, and the machine's state while it all ran.

import { REPO_ROOT } from '../local/lambda-runtime.ts';
import { type LocalStack, startLocalStack } from '../local/stack.ts';
import type { SimulatorOptions, TwilioSimulator } from '../twilio-simulator/simulator.ts';
import { areaPrefix, usNumber } from './numbers.ts';
import { now, Probe } from './probe.ts';

export interface BenchStack {
  stack: LocalStack;
  sim: TwilioSimulator;
  probe: Probe;
  stop(): Promise<void>;
}

export interface BenchStackOptions {
  simulator: SimulatorOptions;
  /** The dispatcher's concurrency (SQS pollers). */
  pollers?: number;
  functionEnv?: Record<string, string>;
  /** Powertools log level of the handlers; INFO is what a deployed function logs. */
  logLevel?: string;
}

/** The local stack, in this process, with the probe on every SDK client and handler. */
export async function startBenchStack(options: BenchStackOptions): Promise<BenchStack> {
  const probe = new Probe();
  probe.install();
  const errors: string[] = [];
  const stack = await startLocalStack({
    port: 0,
    pollers: options.pollers ?? 4,
    simulator: options.simulator,
    functionEnv: {
      POWERTOOLS_LOG_LEVEL: options.logLevel ?? 'INFO',
      ...options.functionEnv,
    },
    onReport: probe.onReport,
    onError: (error, where) => {
      if (errors.length < 20) errors.push(`${where}: ${String((error as Error)?.message ?? error)}`);
    },
  });
  await probe.hookHandlers(REPO_ROOT);
  if (probe.hooked.length < 3) {
    console.error(
      `bench: only ${probe.hooked.join(', ') || 'no'} handler(s) could be hooked; attribution is partial`,
    );
  }
  return {
    stack,
    sim: stack.simulator!,
    probe,
    async stop() {
      await stack.stop();
      probe.uninstall();
      if (errors.length > 0)
        console.error(`bench: ${errors.length} local stack error(s), first: ${errors[0]}`);
    },
  };
}

/** `count` distinct, valid E.164 numbers for one run (an area code of its own keeps runs apart). */
export function leadsFor(count: number, runIndex: number): { phone: string }[] {
  const prefix = areaPrefix(runIndex);
  return Array.from({ length: count }, (_, i) => ({ phone: usNumber(prefix, i) }));
}

export interface CreatedRun {
  runId: string;
  /** From sending the request to the 202 answer, ms. */
  answerMs: number;
  sentAt: number;
}

export async function createRun(
  apiUrl: string,
  leads: { phone: string }[],
  concurrency: number,
): Promise<CreatedRun> {
  const body = JSON.stringify({ concurrency, leads });
  const sentAt = now();
  const res = await fetch(`${apiUrl}/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  const text = await res.text();
  const answerMs = now() - sentAt;
  if (res.status !== 202) throw new Error(`POST /runs: HTTP ${res.status} ${text.slice(0, 300)}`);
  return { runId: (JSON.parse(text) as { run_id: string }).run_id, answerMs, sentAt };
}

export interface RunView {
  run_id: string;
  status: string;
  total_leads: number;
  pending_ingest: number;
  queued: number;
  completed: number;
  failed: number;
  canceled: number;
}

export async function getRun(apiUrl: string, runId: string): Promise<RunView> {
  const res = await fetch(`${apiUrl}/runs/${runId}`);
  if (!res.ok) throw new Error(`GET /runs/${runId}: HTTP ${res.status}`);
  return (await res.json()) as RunView;
}

/** Polls GET /runs/{id} until `done` holds; returns the moment it was first seen to hold. */
export async function waitForRun(
  apiUrl: string,
  runId: string,
  done: (view: RunView) => boolean,
  timeoutMs: number,
  intervalMs = 250,
): Promise<{ at: number; view: RunView }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await getRun(apiUrl, runId);
    if (done(view)) return { at: now(), view };
    if (Date.now() > deadline)
      throw new Error(`run ${runId} not done after ${timeoutMs} ms: ${JSON.stringify(view)}`);
    await sleep(intervalMs);
  }
}

/**
 * Resolves when at least `calls` calls of `runIds` are final at the double. Polls, rather than the
 * double's waitFor, whose predicate would run on every state change of every call.
 */
export async function waitForCalls(sim: TwilioSimulator, runIds: string[], calls: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const runs = sim.stats().runs;
    const final = runIds.reduce((total, id) => total + (runs[id]?.final ?? 0), 0);
    if (final >= calls) return;
    if (Date.now() > deadline) throw new Error(`${final} of ${calls} calls final after ${timeoutMs} ms`);
    await sleep(100);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
