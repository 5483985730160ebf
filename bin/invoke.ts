// `npm run invoke -- <function> <event.json>…`: one handler, one event (or several, in order, on the
// same data), against fresh local emulators (DATA_DIR to reuse what `npm start` kept) and the Twilio
// simulator, like `sam local invoke`. Prints the result as JSON (an array for several events);
// exits 1 if the handler threw.
//   npm run invoke -- api events/api-gateway/create-run.json
//   npm run invoke -- webhook function-url/twilio-status-forged      (the events/ prefix and .json are optional)
//   echo '{"Records": []}' | npm run invoke -- dispatcher -

import './node-version.ts';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FUNCTIONS, type FunctionName } from '../lambdas/definitions/resources.ts';
import { loadFunction, REPO_ROOT } from '../tools/local/lambda-runtime.ts';
import { functionEnvironment, functionName, setEnvironment, startEmulators } from '../tools/local/stack.ts';
import { startTwilioSimulator, type TwilioSimulator } from '../tools/twilio-simulator/simulator.ts';

const usage = `usage: npm run invoke -- <${Object.keys(FUNCTIONS).join('|')}> <event.json | ->…`;
const isFunctionName = (name: string): name is FunctionName => Object.hasOwn(FUNCTIONS, name);

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

function readEvent(argument: string): unknown {
  const text =
    argument === '-'
      ? readFileSync(0, 'utf8')
      : readFileSync(
          [
            argument,
            `${argument}.json`,
            resolve(REPO_ROOT, 'events', argument),
            resolve(REPO_ROOT, 'events', `${argument}.json`),
          ].find((path) => existsSync(path)) ?? fail(`no event file ${argument}\n${usage}`),
          'utf8',
        );
  try {
    return JSON.parse(text);
  } catch (error) {
    return fail(`${argument} is not JSON: ${(error as Error).message}`);
  }
}

const [name, ...eventArguments] = process.argv.slice(2);
if (!name || eventArguments.length === 0) fail(usage);
if (!isFunctionName(name)) fail(`unknown function "${name}"\n${usage}`);
const spec = FUNCTIONS[name];
if (!existsSync(resolve(REPO_ROOT, spec.entry))) fail(`${spec.entry} does not exist yet`);
const events = eventArguments.map(readEvent);

// One invocation is worth reading in full; `npm start` is quieter.
process.env.POWERTOOLS_LOG_LEVEL ??= process.env.LOG_LEVEL ?? 'INFO';
// Metrics (EMF lines) would mix with the result on stdout; POWERTOOLS_METRICS_DISABLED=false shows them.
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

const emulators = await startEmulators({ dataDir: process.env.DATA_DIR || undefined });
let simulator: TwilioSimulator | undefined;
let exitCode = 0;
try {
  const external = process.env.TWILIO_API_BASE_URL;
  simulator = external ? undefined : await startTwilioSimulator();
  setEnvironment({
    ...functionEnvironment(emulators),
    // Nothing listens for callbacks here: the dispatcher only needs a URL to give Twilio.
    WEBHOOK_URL: process.env.WEBHOOK_URL ?? 'http://127.0.0.1:9/',
    TWILIO_FROM_NUMBER: process.env.TWILIO_FROM_NUMBER ?? '+15005550006',
    ...(simulator
      ? {
          TWILIO_API_BASE_URL: simulator.url,
          // The simulator's credentials are the ones the sample callbacks in events/ are signed with.
          TWILIO_ACCOUNT_SID: simulator.accountSid,
          TWILIO_AUTH_TOKEN: simulator.authToken,
        }
      : {}),
  });
  const fn = await loadFunction<unknown, unknown>(functionName(name), spec);
  const results: unknown[] = [];
  for (const event of events) {
    const started = performance.now();
    try {
      results.push((await fn.invoke(event)) ?? null);
    } catch (error) {
      console.error(`${name} threw:`, error);
      results.push({ errorType: (error as Error).name, errorMessage: (error as Error).message });
      exitCode = 1;
    }
    console.error(`(${name}: ${(performance.now() - started).toFixed(0)} ms)`);
  }
  console.log(JSON.stringify(events.length === 1 ? results[0] : results, null, 2));
} finally {
  await simulator?.stop();
  await Promise.allSettled([emulators.sqs.stop(), emulators.dynamo.stop()]);
}
process.exit(exitCode);
