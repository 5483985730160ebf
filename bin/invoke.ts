// `npm run invoke -- <function> <event.json>…`: one handler, one event (or several, in order, on the
// same data), against fresh local emulators (DATA_DIR to reuse what `npm start` kept) and the Twilio
// simulator, like `sam local invoke`. Prints the result as JSON (an array for several events) on
// stdout, and on stderr what each invocation changed: table items added, removed or changed (a slot
// released, a job's state), and messages put on the work queue. Exits 1 if the handler threw.
//   npm run invoke -- api events/api-gateway/create-run.json
//   npm run invoke -- webhook function-url/twilio-status-forged      (the events/ prefix and .json are optional)
//   echo '{"Records": []}' | npm run invoke -- dispatcher -

import './node-version.ts';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { FUNCTIONS, type FunctionName, TABLE_SCHEMA } from '../lambdas/definitions/resources.ts';
import { LOCAL_AWS } from '../tools/local/emulators.ts';
import { loadFunction, REPO_ROOT } from '../tools/local/lambda-runtime.ts';
import { functionEnvironment, functionName, setEnvironment, startEmulators } from '../tools/local/stack.ts';
import { startTwilioSimulator, type TwilioSimulator } from '../tools/twilio-simulator/simulator.ts';

const usage = `usage: npm run invoke -- <${Object.keys(FUNCTIONS).join('|')}> <event.json | ->…`;
const isFunctionName = (name: string): name is FunctionName => Object.hasOwn(FUNCTIONS, name);

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

/** Which folder of events/ holds each function's sample events. */
const EVENT_FOLDERS: Record<string, string> = {
  api: 'api-gateway',
  webhook: 'function-url',
  dispatcher: 'sqs',
  reconciler: 'eventbridge',
  events: 'dynamodb-stream',
};

/** The sample events under events/, as `folder/name` (what the command line takes). */
function sampleEvents(folder?: string): string[] {
  const root = resolve(REPO_ROOT, 'events');
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = resolve(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.json')) found.push(relative(root, path).replace(/\.json$/, ''));
    }
  };
  walk(folder ? resolve(root, folder) : root);
  return found.sort();
}

function readEvent(argument: string): unknown {
  // A bare name is looked for in the function's own folder of events/ too (`create-run`).
  const folder = EVENT_FOLDERS[name ?? ''] ?? '';
  const found = [
    argument,
    `${argument}.json`,
    resolve(REPO_ROOT, 'events', argument),
    resolve(REPO_ROOT, 'events', `${argument}.json`),
    resolve(REPO_ROOT, 'events', folder, `${argument}.json`),
  ].find((path) => existsSync(path));
  if (argument !== '-' && found === undefined) {
    const folder = EVENT_FOLDERS[name ?? ''];
    const listed = sampleEvents(
      folder && existsSync(resolve(REPO_ROOT, 'events', folder)) ? folder : undefined,
    );
    fail(
      `no event "${argument}". Sample events${folder ? ` for ${name}` : ''}:\n  ${listed.join('\n  ')}\n${usage}`,
    );
  }
  const text = argument === '-' ? readFileSync(0, 'utf8') : readFileSync(found!, 'utf8');
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
    // The events function puts what it derives on the delivery queue (there is no bus locally).
    EVENTS_QUEUE_URL: emulators.eventsQueueUrl,
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
  const watcher = changeWatcher(emulators);
  try {
    for (const [i, event] of events.entries()) {
      const before = await watcher.snapshot();
      const started = performance.now();
      try {
        results.push((await fn.invoke(event)) ?? null);
      } catch (error) {
        console.error(`${name} threw:`, error);
        results.push({ errorType: (error as Error).name, errorMessage: (error as Error).message });
        exitCode = 1;
      }
      const ms = (performance.now() - started).toFixed(0);
      const changes = watcher.describe(before, await watcher.snapshot());
      console.error(
        `(${name} on ${eventArguments[i]}: ${ms} ms) ${changes.length ? 'changed:' : 'changed nothing.'}`,
      );
      for (const change of changes) console.error(`  ${change}`);
      const run = runNamedBy(event);
      if (
        changes.length === 0 &&
        run !== undefined &&
        ![...before.items.keys()].some((key) => key.includes(run))
      )
        console.error(
          `  (the event names run ${run}, which this table does not hold: there was no slot to release ` +
            'and no job to move. DATA_DIR points invoke at the data of an `npm start` that has it.)',
        );
    }
  } finally {
    watcher.close();
  }
  console.log(JSON.stringify(events.length === 1 ? results[0] : results, null, 2));
} finally {
  await simulator?.stop();
  await Promise.allSettled([emulators.sqs.stop(), emulators.dynamo.stop()]);
}
process.exit(exitCode);

/** The run a callback's URL names (`?run=…`), or a message body's `runId`. */
function runNamedBy(event: unknown): string | undefined {
  const query = (event as { rawQueryString?: unknown })?.rawQueryString;
  if (typeof query === 'string') return new URLSearchParams(query).get('run') ?? undefined;
  return undefined;
}

interface Snapshot {
  items: Map<string, Record<string, unknown>>;
  queued: number;
}

/**
 * What an invocation did, read from the outside: the table before and after (a fresh stack's table
 * is small enough to scan) and the work queue's message count.
 */
function changeWatcher(emulators: Awaited<ReturnType<typeof startEmulators>>) {
  const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: emulators.dynamo.endpoint });
  const documents = DynamoDBDocumentClient.from(dynamo);
  const sqs = new SQSClient({ ...LOCAL_AWS, endpoint: emulators.sqs.endpoint });
  const { partitionKey, sortKey } = TABLE_SCHEMA;
  const keyOf = (item: Record<string, unknown>) => `${item[partitionKey]} ${item[sortKey]}`;
  // Phone numbers never reach the terminal whole, as in the functions' logs.
  const show = (name: string, value: unknown) => {
    const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
    const masked = name.toLowerCase().includes('phone')
      ? text.replace(/(\+\d{3})\d+(\d{2})/g, '$1*******$2')
      : text;
    return masked.length > 60 ? `${masked.slice(0, 57)}...` : masked;
  };
  return {
    async snapshot(): Promise<Snapshot> {
      const items = new Map<string, Record<string, unknown>>();
      let start: Record<string, unknown> | undefined;
      do {
        const page = await documents.send(
          new ScanCommand({ TableName: emulators.tableName, ...(start ? { ExclusiveStartKey: start } : {}) }),
        );
        for (const item of page.Items ?? []) items.set(keyOf(item), item);
        start = page.LastEvaluatedKey;
      } while (start);
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: emulators.queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      const queued =
        Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
        Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
      return { items, queued };
    },
    describe(before: Snapshot, after: Snapshot): string[] {
      const lines: string[] = [];
      for (const [key, item] of after.items) {
        const old = before.items.get(key);
        if (!old) {
          const status = item.status === undefined ? '' : ` (status ${show('status', item.status)})`;
          lines.push(`+ item ${key}${status}`);
          continue;
        }
        const names = new Set([...Object.keys(old), ...Object.keys(item)]);
        const diffs = [...names]
          .filter((attribute) => JSON.stringify(old[attribute]) !== JSON.stringify(item[attribute]))
          .map((attribute) =>
            attribute in item
              ? `${attribute} ${attribute in old ? `${show(attribute, old[attribute])} → ` : ''}${show(attribute, item[attribute])}`
              : `${attribute} removed`,
          );
        if (diffs.length > 0) lines.push(`~ item ${key}: ${diffs.join(', ')}`);
      }
      for (const key of before.items.keys()) if (!after.items.has(key)) lines.push(`- item ${key}`);
      const sent = after.queued - before.queued;
      if (sent !== 0) lines.push(`work queue: ${sent > 0 ? '+' : ''}${sent} message(s)`);
      return lines;
    },
    close() {
      dynamo.destroy();
      sqs.destroy();
    },
  };
}
