// The whole of dialgate on one machine: DynamoDB Local and the SQS emulator with the table and queues
// the CDK app defines, the same handlers behind local stand-ins for API Gateway, the Function URL,
// the SQS event source and the reconciler's schedule, and a Twilio simulator unless a
// Twilio-compatible endpoint is given. Used by `npm start`, `npm run demo`, `npm run invoke`,
// and by tests and benchmarks.
//
// Handlers read their configuration from process.env once, like a cold start, and the module cache
// makes this process their one container: so one stack per process.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type {
  APIGatewayProxyEvent,
  APIGatewayProxyEventV2,
  APIGatewayProxyResult,
  APIGatewayProxyResultV2,
  DynamoDBBatchResponse,
  DynamoDBStreamEvent,
  ScheduledEvent,
  SQSBatchResponse,
  SQSEvent,
} from 'aws-lambda';
import {
  EVENTS_DELIVERY,
  FUNCTIONS,
  type FunctionName,
  RECONCILER_SCHEDULE_MINUTES,
  serviceName,
  WORK_QUEUE,
} from '../../lambdas/definitions/resources.ts';
import {
  type SimulatorOptions,
  startTwilioSimulator,
  type TwilioSimulator,
} from '../twilio-simulator/simulator.ts';
import { bundlesInAssembly } from './cdk-bundles.ts';
import {
  createTable,
  createWorkQueues,
  LOCAL_AWS,
  type RunningService,
  type ServiceExit,
  startDynamoDbLocal,
  startSqsEmulator,
} from './emulators.ts';
import { createEventsQueues, type EventsPipeline, startEventsPipeline } from './events-pipeline.ts';
import { startFunctionUrl } from './function-url.ts';
import {
  type FunctionSource,
  type InvocationReport,
  type LocalFunction,
  loadFunction,
  REPO_ROOT,
} from './lambda-runtime.ts';
import { startRestApi } from './rest-api.ts';
import { type EventSourceStats, type RunningEventSource, startSqsEventSource } from './sqs-event-source.ts';

/** A Twilio-compatible endpoint to call instead of the built-in simulator. */
export interface ExternalTwilio {
  baseUrl: string;
  accountSid: string;
  authToken: string;
  fromNumber: string;
}

export interface LocalStackOptions {
  /** The API's port; 0 picks a free one. Default 3000. */
  port?: number;
  /** Address the API and the webhook listen on. Default 127.0.0.1 (nothing is exposed). */
  host?: string;
  /** When set, API requests must carry it in `x-api-key` (401 without, 403 when wrong). */
  apiKey?: string | undefined;
  /** Keeps DynamoDB and SQS data across restarts; in memory when unset. */
  dataDir?: string | undefined;
  /** Twilio-compatible endpoint; when unset the built-in simulator runs. */
  twilio?: ExternalTwilio | undefined;
  simulator?: SimulatorOptions;
  /** Caller id for the simulator's calls. */
  fromNumber?: string;
  /** Concurrent SQS pollers, i.e. the dispatcher's concurrency. Default 4. */
  pollers?: number;
  /**
   * Seconds before a failed work record is retried, in place of the wait the dispatcher sets from
   * WORK_QUEUE.retryScheduleSeconds (tests that fail records on purpose shorten it). Unset: the
   * dispatcher's own wait, as on AWS.
   */
  retryVisibilitySeconds?: number;
  /** How often the reconciler runs; default the CDK app's schedule (RECONCILER_SCHEDULE_MINUTES). */
  reconcileIntervalSeconds?: number;
  /** Function settings (DEFAULT_CONCURRENCY, RING_TIMEOUT_SECONDS, …) on top of process.env. */
  functionEnv?: Record<string, string>;
  tableName?: string;
  queueName?: string;
  stage?: string;
  /** Called after every invocation of every function, like Lambda's REPORT log line. */
  onReport?: (report: InvocationReport) => void;
  /**
   * A cloud assembly (`cdk synth`'s output directory, e.g. `cdk.out`): the functions run from the
   * bundles in it, as deployed, instead of from the TypeScript sources.
   */
  bundlesFrom?: string | undefined;
  /** Where failures inside the local plumbing are reported; console.error by default. */
  onError?: (error: unknown, where: string) => void;
}

/** A backend process that exited under a running stack: which one, how, and what it took with it. */
export interface BackendFailure extends ServiceExit {
  /** One sentence for a person: the service, how it ended, what is lost or kept. */
  message: string;
}

export interface LocalStack {
  apiUrl: string;
  /** The web console's address (the API's own origin). */
  consoleUrl: string;
  /**
   * Resolves when DynamoDB Local or the SQS emulator exits without being asked to. From then on the
   * API answers 503 with the same message; the stack does not restart it (its port and, without a
   * data directory, its data are gone).
   */
  failure: Promise<BackendFailure>;
  webhookUrl: string;
  /** The built-in Twilio simulator, when it runs. */
  simulator?: TwilioSimulator;
  endpoints: { dynamodb: string; sqs: string; twilio: string };
  tableName: string;
  queueUrl: string;
  dlqUrl: string;
  /** The webhook delivery queue and its dead-letter queue (used when EVENTS_WEBHOOK_URL is set). */
  eventsQueueUrl: string;
  eventsDlqUrl: string;
  /** The events pipeline (table stream → events → delivery queue → webhook), when a webhook is set. */
  events?: EventsPipeline;
  /** The module file each function was loaded from: a TypeScript entry, or a bundle. */
  functionFiles: Partial<Record<FunctionName, string>>;
  eventSource(): EventSourceStats;
  stop(): Promise<void>;
}

/** Twilio's magic "valid" test caller id. */
const DEFAULT_FROM = '+15005550006';

let running = false;

export interface Emulators {
  dynamo: RunningService;
  sqs: RunningService;
  tableName: string;
  queueUrl: string;
  dlqUrl: string;
  eventsQueueUrl: string;
  eventsQueueArn: string;
  eventsDlqUrl: string;
}

/** DynamoDB Local and fauxqs, with the table and queues made; shared by the stack and `npm run invoke`. */
export async function startEmulators(options: {
  dataDir?: string | undefined;
  tableName?: string;
  queueName?: string;
}): Promise<Emulators> {
  const dataDir = options.dataDir ? resolve(options.dataDir) : undefined;
  const started: RunningService[] = [];
  try {
    const [dynamo, sqs] = await Promise.all([
      startDynamoDbLocal(dataDir ? { dataDir: resolve(dataDir, 'dynamodb') } : {}).then((s) => {
        started.push(s);
        return s;
      }),
      startSqsEmulator({ childProcess: true, ...(dataDir ? { dataDir: resolve(dataDir, 'sqs') } : {}) }).then(
        (s) => {
          started.push(s);
          return s;
        },
      ),
    ]);
    const tableName = options.tableName ?? 'dialgate';
    await createTable(dynamo.endpoint, tableName);
    const queueName = options.queueName ?? 'dialgate-work';
    const [{ queueUrl, dlqUrl }, events] = await Promise.all([
      createWorkQueues(sqs.endpoint, queueName),
      createEventsQueues(sqs.endpoint, `${queueName}-events`),
    ]);
    return { dynamo, sqs, tableName, queueUrl, dlqUrl, ...events };
  } catch (error) {
    // A half-started stack must not leave a JVM behind.
    await Promise.allSettled(started.map((s) => s.stop()));
    throw error;
  }
}

/** The environment every function sees: AWS endpoints and resource names, as the CDK app sets them. */
export function functionEnvironment(emulators: Emulators): Record<string, string> {
  return {
    AWS_REGION: LOCAL_AWS.region,
    AWS_ACCESS_KEY_ID: LOCAL_AWS.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_AWS.credentials.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: emulators.dynamo.endpoint,
    AWS_ENDPOINT_URL_SQS: emulators.sqs.endpoint,
    TABLE_NAME: emulators.tableName,
    QUEUE_URL: emulators.queueUrl,
  };
}

export function setEnvironment(env: Record<string, string>): void {
  Object.assign(process.env, env);
  // Locally the credentials come from the environment; a leftover secret id would send the
  // handlers to Secrets Manager, and a session token would not match the local keys.
  delete process.env.TWILIO_SECRET_ID;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}

/** Shutdown phases, in order: triggers first (no new invocations), then what the handlers talk to. */
const PHASES = ['triggers', 'servers', 'clients', 'backends'] as const;
type Phase = (typeof PHASES)[number];

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  if (running) {
    throw new Error('A local stack is already running in this process (handlers are process-wide).');
  }
  running = true;
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 3000;
  const onError = options.onError ?? ((error, where) => console.error(`[local] ${where}:`, error));
  const stops = new Map<Phase, (() => Promise<unknown>)[]>(PHASES.map((phase) => [phase, []]));
  const onStop = (phase: Phase, stop: () => Promise<unknown>) => stops.get(phase)!.push(stop);
  const stopAll = async () => {
    for (const phase of PHASES) {
      const list = stops.get(phase)!.splice(0);
      await Promise.all(list.map((stop) => stop().catch((error) => onError(error, `stopping ${phase}`))));
    }
  };

  let down: BackendFailure | undefined;
  try {
    // The servers listen first: a taken PORT fails in milliseconds rather than after the JVM starts,
    // and the webhook's URL is part of the handlers' configuration. A request that comes early waits
    // for the handlers to load.
    const loaded = deferred<Handlers>();
    const [api, webhook] = await Promise.all([
      startRestApi({
        fn: loaded.promise.then((h) => h.api),
        port,
        host,
        stage: options.stage ?? 'local',
        apiKey: options.apiKey,
        unavailable: () => down?.message,
        onError: (error) => onError(error, 'api'),
      }).then(
        (server) => {
          onStop('servers', () => server.stop());
          return server;
        },
        (error: NodeJS.ErrnoException) => {
          throw error.code === 'EADDRINUSE' ? new Error(`Port ${port} is in use: set PORT.`) : error;
        },
      ),
      startFunctionUrl({
        fn: loaded.promise.then((h) => h.webhook),
        port: 0,
        host,
        onError: (error) => onError(error, 'webhook'),
      }).then((server) => {
        onStop('servers', () => server.stop());
        return server;
      }),
    ]);

    const [emulators, simulator] = await Promise.all([
      startEmulators(options).then((e) => {
        onStop('backends', () => e.sqs.stop());
        onStop('backends', () => e.dynamo.stop());
        return e;
      }),
      options.twilio
        ? undefined
        : startTwilioSimulator(options.simulator ?? {}).then((sim) => {
            onStop('backends', () => sim.stop());
            return sim;
          }),
    ]);

    const twilio: ExternalTwilio = options.twilio ?? {
      baseUrl: simulator!.url,
      accountSid: simulator!.accountSid,
      authToken: simulator!.authToken,
      fromNumber: options.fromNumber ?? DEFAULT_FROM,
    };
    // Events go out only to a webhook locally (there is no bus): without one, nothing reads the stream.
    const eventsOut = Boolean(options.functionEnv?.EVENTS_WEBHOOK_URL ?? process.env.EVENTS_WEBHOOK_URL);
    setEnvironment({
      ...(eventsOut
        ? {
            // The local retry schedule: as many tries as in AWS, minutes instead of a day.
            EVENTS_RETRY_SCHEDULE_SECONDS:
              process.env.EVENTS_RETRY_SCHEDULE_SECONDS ??
              EVENTS_DELIVERY.localRetryScheduleSeconds.join(','),
            EVENTS_QUEUE_URL: emulators.eventsQueueUrl,
          }
        : {}),
      ...options.functionEnv,
      ...functionEnvironment(emulators),
      WEBHOOK_URL: webhook.url,
      TWILIO_API_BASE_URL: twilio.baseUrl,
      TWILIO_ACCOUNT_SID: twilio.accountSid,
      TWILIO_AUTH_TOKEN: twilio.authToken,
      TWILIO_FROM_NUMBER: twilio.fromNumber,
    });
    if (!eventsOut) delete process.env.EVENTS_QUEUE_URL;

    const handlers = await loadHandlers(
      options.onReport,
      options.bundlesFrom ? bundlesInAssembly(options.bundlesFrom) : undefined,
      eventsOut,
    );
    loaded.resolve(handlers);

    const sqs = new SQSClient({
      ...LOCAL_AWS,
      endpoint: emulators.sqs.endpoint,
      useQueueUrlAsEndpoint: false,
    });
    onStop('clients', async () => sqs.destroy());
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: emulators.queueUrl, AttributeNames: ['QueueArn'] }),
    );
    const eventSource: RunningEventSource = startSqsEventSource({
      fn: handlers.dispatcher,
      sqs,
      queueUrl: emulators.queueUrl,
      queueArn: Attributes!.QueueArn!,
      region: LOCAL_AWS.region,
      batchSize: WORK_QUEUE.batchSize,
      pollers: options.pollers ?? 4,
      retryVisibilitySeconds: options.retryVisibilitySeconds,
      onError,
    });
    onStop('triggers', () => eventSource.stop());

    let events: EventsPipeline | undefined;
    if (handlers.events && handlers.delivery) {
      events = await startEventsPipeline({
        dynamoEndpoint: emulators.dynamo.endpoint,
        sqsEndpoint: emulators.sqs.endpoint,
        tableName: emulators.tableName,
        queues: emulators,
        events: handlers.events,
        delivery: handlers.delivery,
        onError,
      });
      onStop('triggers', () => events!.stop());
    }

    if (handlers.reconciler) {
      const schedule = startSchedule(
        handlers.reconciler,
        (options.reconcileIntervalSeconds ?? RECONCILER_SCHEDULE_MINUTES * 60) * 1000,
        onError,
      );
      onStop('triggers', () => schedule.stop());
    }

    const dataDir = options.dataDir ? resolve(options.dataDir) : undefined;
    const failure = Promise.race([emulators.dynamo.died, emulators.sqs.died]).then((exit) => {
      down = { ...exit, message: describeFailure(exit, dataDir) };
      return down;
    });

    return {
      apiUrl: api.url,
      consoleUrl: `${api.url}/`,
      failure,
      webhookUrl: webhook.url,
      ...(simulator ? { simulator } : {}),
      endpoints: { dynamodb: emulators.dynamo.endpoint, sqs: emulators.sqs.endpoint, twilio: twilio.baseUrl },
      tableName: emulators.tableName,
      queueUrl: emulators.queueUrl,
      dlqUrl: emulators.dlqUrl,
      eventsQueueUrl: emulators.eventsQueueUrl,
      eventsDlqUrl: emulators.eventsDlqUrl,
      ...(events ? { events } : {}),
      functionFiles: handlers.files,
      eventSource: () => eventSource.stats(),
      async stop() {
        await stopAll();
        running = false;
      },
    };
  } catch (error) {
    await stopAll();
    running = false;
    throw error;
  }
}

function describeFailure(exit: ServiceExit, dataDir: string | undefined): string {
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  const dynamo = exit.service === 'DynamoDB Local';
  const lost = dataDir
    ? `its data is kept in ${resolve(dataDir, dynamo ? 'dynamodb' : 'sqs')}; npm start again picks it up`
    : dynamo
      ? 'every run, lead and call held in memory is lost (set DATA_DIR to keep data across restarts)'
      : 'the messages on the work queue (leads not ingested yet, dispatch wake-ups) are lost, so runs ' +
        'in progress may never finish (set DATA_DIR to keep data across restarts)';
  return `${exit.service} ${how}: ${lost}.`;
}

interface Handlers {
  api: LocalFunction<APIGatewayProxyEvent, APIGatewayProxyResult>;
  webhook: LocalFunction<APIGatewayProxyEventV2, APIGatewayProxyResultV2>;
  dispatcher: LocalFunction<SQSEvent, SQSBatchResponse | undefined>;
  reconciler?: LocalFunction<ScheduledEvent, unknown>;
  events?: LocalFunction<DynamoDBStreamEvent, DynamoDBBatchResponse | undefined>;
  delivery?: LocalFunction<SQSEvent, SQSBatchResponse | undefined>;
  files: Partial<Record<FunctionName, string>>;
}

/** Lambda's function name: the service name, as the CDK app names each function's logs and metrics. */
export function functionName(name: FunctionName): string {
  return serviceName(name);
}

async function loadHandlers(
  onReport?: (report: InvocationReport) => void,
  bundles?: Record<FunctionName, FunctionSource>,
  eventsOut = false,
): Promise<Handlers> {
  // The bundle `cdk synth` wrote, else the TypeScript entry the construct bundles.
  const sourceOf = (name: FunctionName): FunctionSource =>
    bundles?.[name] ?? { file: resolve(REPO_ROOT, FUNCTIONS[name].entry), exportName: 'handler' };
  const load = <E, R>(name: FunctionName) =>
    loadFunction<E, R>(functionName(name), FUNCTIONS[name], onReport, sourceOf(name));
  const [api, webhook, dispatcher] = await Promise.all([
    load<APIGatewayProxyEvent, APIGatewayProxyResult>('api'),
    load<APIGatewayProxyEventV2, APIGatewayProxyResultV2>('webhook'),
    load<SQSEvent, SQSBatchResponse | undefined>('dispatcher'),
  ]);
  // Optional so that the stack runs on a tree where the reconciler is not written yet.
  const reconciler = existsSync(sourceOf('reconciler').file)
    ? await load<ScheduledEvent, unknown>('reconciler')
    : undefined;
  const [events, delivery] = eventsOut
    ? await Promise.all([
        load<DynamoDBStreamEvent, DynamoDBBatchResponse | undefined>('events'),
        load<SQSEvent, SQSBatchResponse | undefined>('delivery'),
      ])
    : [];
  const loaded: FunctionName[] = [
    'api',
    'webhook',
    'dispatcher',
    ...(reconciler ? ['reconciler' as const] : []),
    ...(events ? ['events' as const, 'delivery' as const] : []),
  ];
  const files = Object.fromEntries(loaded.map((name) => [name, sourceOf(name).file]));
  return {
    api,
    webhook,
    dispatcher,
    ...(reconciler ? { reconciler } : {}),
    ...(events && delivery ? { events, delivery } : {}),
    files,
  };
}

/** An EventBridge rate schedule: one invocation at a time, the next one interval after the last ended. */
export function startSchedule(
  fn: LocalFunction<ScheduledEvent, unknown>,
  intervalMs: number,
  onError: (error: unknown, where: string) => void,
): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();
  let stopped = false;
  const tick = () => {
    current = fn
      .invoke(scheduledEvent(fn.name))
      .then(
        () => undefined,
        (error) => onError(error, `${fn.name} (scheduled)`),
      )
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  timer = setTimeout(tick, intervalMs);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
    },
  };
}

export function scheduledEvent(functionName: string): ScheduledEvent {
  return {
    version: '0',
    id: crypto.randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '000000000000',
    time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: LOCAL_AWS.region,
    resources: [`arn:aws:events:${LOCAL_AWS.region}:000000000000:rule/${functionName}-schedule`],
    detail: {},
  };
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
