// `npm start`: the whole of dialgate on this machine, configured only by environment variables
// (README, "Configuration"). Prints the API, console and webhook URLs when ready; Ctrl-C (SIGINT) or
// SIGTERM stops everything it started, DynamoDB Local's JVM included, and exits 0. If DynamoDB Local or
// the SQS emulator dies, it says which, how and what is lost, stops the rest and exits 1.

import './node-version.ts';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ENV } from '../lambdas/definitions/environment.ts';
import type { InvocationReport } from '../tools/local/lambda-runtime.ts';
import { type ExternalTwilio, type LocalStack, startLocalStack } from '../tools/local/stack.ts';
import {
  type MixOutcome,
  mulberry32,
  parseOutcomeMix,
  REALISTIC_OUTCOMES,
  type SimulatorOptions,
  weightedOutcomes,
} from '../tools/twilio-simulator/simulator.ts';

const startedAt = performance.now();
// Handlers log JSON through Powertools; locally only what needs attention, unless asked for more.
process.env.POWERTOOLS_LOG_LEVEL ??= process.env.LOG_LEVEL ?? 'WARN';
// CloudWatch metrics (EMF JSON, one line per invocation) mean nothing without CloudWatch; opt back in
// with POWERTOOLS_METRICS_DISABLED=false.
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

function fail(message: string): never {
  console.error(`dialgate: ${message}`);
  process.exit(1);
}

function env(name: string): string | undefined {
  const value = process.env[name]?.trim();
  return value === '' ? undefined : value;
}

function numberEnv(name: string, options: { min?: number; max?: number; integer?: boolean } = {}) {
  const raw = env(name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  const { min = 0, max = Number.MAX_SAFE_INTEGER, integer = true } = options;
  if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    fail(`${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got "${raw}")`);
  }
  return value;
}

function externalTwilio(): ExternalTwilio | undefined {
  const baseUrl = env('TWILIO_API_BASE_URL');
  if (baseUrl === undefined) return undefined;
  const needed = ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_FROM_NUMBER'] as const;
  const missing = needed.filter((name) => env(name) === undefined);
  if (missing.length > 0) fail(`TWILIO_API_BASE_URL is set, so ${missing.join(', ')} must be too`);
  return {
    baseUrl,
    accountSid: env('TWILIO_ACCOUNT_SID')!,
    authToken: env('TWILIO_AUTH_TOKEN')!,
    fromNumber: env('TWILIO_FROM_NUMBER')!,
  };
}

/** Calls that look like calls: a few seconds of ringing, several of talking, varied. */
const SIM_DEFAULTS = { ringMs: 2_000, talkMs: 8_000, jitter: 0.5 };

function outcomeMix(): Partial<Record<MixOutcome, number>> {
  const raw = env('SIM_OUTCOMES');
  if (raw === undefined) return REALISTIC_OUTCOMES;
  try {
    return parseOutcomeMix(raw);
  } catch (error) {
    fail(`SIM_OUTCOMES: ${(error as Error).message}`);
  }
}

const mix = outcomeMix();

function simulatorOptions(): SimulatorOptions {
  const seed = numberEnv('SIM_SEED');
  const random = seed === undefined ? Math.random : mulberry32(seed);
  const options: SimulatorOptions = {
    ringMs: numberEnv('SIM_RING_MS') ?? SIM_DEFAULTS.ringMs,
    talkMs: numberEnv('SIM_TALK_MS') ?? SIM_DEFAULTS.talkMs,
    jitter: numberEnv('SIM_JITTER', { max: 1, integer: false }) ?? SIM_DEFAULTS.jitter,
    random,
    behavior: weightedOutcomes(mix, random),
  };
  if (env('SIM_LOG')) options.log = (line) => console.log(`[twilio-sim] ${line}`);
  return options;
}

function describeMix(): string {
  const total = Object.values(mix).reduce((sum, weight) => sum + weight, 0);
  return Object.entries(mix)
    .filter(([, weight]) => weight > 0)
    .map(([outcome, weight]) => `${outcome} ${Math.round((weight / total) * 100)}%`)
    .join(', ');
}

/** EVENTS_WEBHOOK_URL and EVENTS_WEBHOOK_SECRET: both or neither, each as the functions will read it. */
function eventsWebhook(): string | undefined {
  const url = env('EVENTS_WEBHOOK_URL');
  const secret = env('EVENTS_WEBHOOK_SECRET');
  if (url === undefined && secret === undefined) return undefined;
  if (url === undefined || secret === undefined) {
    fail('EVENTS_WEBHOOK_URL and EVENTS_WEBHOOK_SECRET go together: set both, or neither');
  }
  const problems = [
    ['EVENTS_WEBHOOK_URL', ENV.EVENTS_WEBHOOK_URL.safeParse(url)],
    ['EVENTS_WEBHOOK_SECRET', ENV.EVENTS_WEBHOOK_SECRET.safeParse(secret)],
  ] as const;
  for (const [name, parsed] of problems) {
    if (!parsed.success) fail(`${name}: ${parsed.error.issues.map((issue) => issue.message).join('; ')}`);
  }
  return url;
}

const eventsUrl = eventsWebhook();
const twilio = externalTwilio();
const apiKey = env('API_KEY');
const dataDir = env('DATA_DIR');
// A cloud assembly (`npx cdk synth` writes cdk.out): run the functions from its bundles, as deployed.
const bundlesFrom = env('BUNDLES_FROM');
const fromNumber = env('TWILIO_FROM_NUMBER');
const pollers = numberEnv('DISPATCHER_POLLERS', { min: 1, max: 100 });
const reconcileIntervalSeconds = numberEnv('RECONCILE_INTERVAL_SECONDS', { min: 1 });

let stack: LocalStack;
try {
  stack = await startLocalStack({
    port: numberEnv('PORT', { max: 65_535 }) ?? 3000,
    apiKey,
    dataDir,
    bundlesFrom,
    twilio,
    simulator: simulatorOptions(),
    ...(fromNumber ? { fromNumber } : {}),
    ...(pollers ? { pollers } : {}),
    ...(reconcileIntervalSeconds ? { reconcileIntervalSeconds } : {}),
    // Lambda's REPORT line per invocation, for seeing where the time goes.
    ...(env('LAMBDA_REPORTS')
      ? {
          onReport: (r: InvocationReport) =>
            console.log(
              `REPORT ${r.functionName} RequestId: ${r.requestId} Duration: ${r.durationMs.toFixed(2)} ms${r.ok ? '' : ' (failed)'}`,
            ),
        }
      : {}),
    onError: (error, where) =>
      console.error(`[local] ${where}: ${error instanceof Error ? error.message : error}`),
  });
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}

const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
console.log(`dialgate is running locally (ready in ${seconds} s)
  API:     ${stack.apiUrl}${apiKey ? '   (send x-api-key)' : ''}
  Console: ${stack.consoleUrl}
  Webhook: ${stack.webhookUrl}
  Twilio:  ${twilio ? twilio.baseUrl : `simulator at ${stack.endpoints.twilio}\n           calls end ${describeMix()} (SIM_OUTCOMES changes it)`}
  Data:    ${dataDir ?? 'in memory (set DATA_DIR to keep it)'}
  Events:  ${eventsUrl ? `signed webhooks to ${new URL(eventsUrl).origin}${new URL(eventsUrl).pathname}` : 'off (set EVENTS_WEBHOOK_URL and EVENTS_WEBHOOK_SECRET)'}
  Code:    ${bundlesFrom ? `the bundles in ${bundlesFrom}` : 'the TypeScript sources (BUNDLES_FROM=cdk.out runs the bundles)'}
Try:
  curl -s -X POST ${stack.apiUrl}/runs -H 'content-type: application/json'${apiKey ? ' -H "x-api-key: $API_KEY"' : ''} \\
    -d '{"concurrency": 3, "leads": [{"phone": "+972502345678"}, {"phone": "+14155550100"}]}'
Ctrl-C stops everything.`);

let stoppingSince: number | undefined;
/** A second signal sooner than this is the same Ctrl-C relayed (npm passes it on to us), not a new one. */
const RELAYED_SIGNAL_MS = 1_000;
/** How long an emulator's exit waits for a signal that may explain it (the group's Ctrl-C). */
const SIGNAL_GRACE_MS = 250;
async function shutdown(reason: string, code: number): Promise<void> {
  if (stoppingSince !== undefined) {
    // A second Ctrl-C while stopping: the user wants out now.
    if (Date.now() - stoppingSince > RELAYED_SIGNAL_MS) process.exit(130);
    return;
  }
  stoppingSince = Date.now();
  console.log(`\n${reason}: stopping…`);
  await stack.stop().catch((error: unknown) => console.error('dialgate: while stopping:', error));
  // Exit once the line is written: stdout may be a pipe, and process.exit does not wait for it.
  process.stdout.write('stopped.\n', () => process.exit(code));
}

void stack.failure.then(async (failure) => {
  // A Ctrl-C in the terminal reaches the emulators too (they share our process group), and one may be
  // gone before our own SIGINT handler has run: give the signal that moment before calling it a failure.
  await sleep(SIGNAL_GRACE_MS);
  if (stoppingSince !== undefined) return;
  console.error(`dialgate: ${failure.message}`);
  void shutdown(`${failure.service} is gone`, 1);
});

process.on('SIGINT', () => void shutdown('SIGINT', 0));
process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
process.on('SIGHUP', () => void shutdown('SIGHUP', 0));
watchLaunchers();
// A crash must not leave DynamoDB Local's JVM running with nobody to stop it.
process.on('uncaughtException', (error) => {
  console.error('dialgate: crashed:', error);
  void shutdown('crash', 1);
});
process.on('unhandledRejection', (error) => {
  console.error('dialgate: crashed:', error);
  void shutdown('crash', 1);
});

/**
 * `npm start` runs us as npm → sh → node (`node --import tsx`, not the tsx CLI: the CLI relays a
 * Ctrl-C and kills its child with SIGKILL when the child has not said within 60 ms that it got it,
 * which a busy machine's event loop misses, and then nothing is stopped in order). A SIGTERM sent to
 * npm reaches sh, which dies without passing it on, and this process lives on as an orphan with a
 * JVM: so when any of the processes that launched us is gone, stop as if signalled. Linux only (/proc); elsewhere the direct parent.
 */
function watchLaunchers(): void {
  const launchers: number[] = [];
  let pid = process.ppid;
  for (let depth = 0; depth < 3 && pid > 1; depth++) {
    launchers.push(pid);
    try {
      // /proc/PID/stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  const timer = setInterval(() => {
    for (const launcher of launchers) {
      try {
        process.kill(launcher, 0);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ESRCH') {
          clearInterval(timer);
          void shutdown(`launcher (pid ${launcher}) exited`, 0);
          return;
        }
      }
    }
  }, 1_000);
  timer.unref();
}
