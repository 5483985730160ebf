// dialgate's core wired by hand for tests that need to move time: the real DynamoDB store (DynamoDB
// Local), the real Twilio adapter against the Twilio double, the real status-callback core behind a
// small webhook server, and a work queue in memory whose delayed messages come due on an injected
// clock. The clock runs with real time and jumps when a test says so: hours pass without sleeping.

import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { TwilioTelephony } from '../../lambdas/adapters/twilio-telephony.ts';
import { applyAmdCallback } from '../../lambdas/core/amd-callback.ts';
import { isAmdCallback, parseCallbackIds } from '../../lambdas/core/callback-url.ts';
import { applyStatusCallback } from '../../lambdas/core/callbacks.ts';
import { createRun } from '../../lambdas/core/create-run.ts';
import { type DispatchDeps, handleWorkMessage } from '../../lambdas/core/dispatch.ts';
import type {
  Clock,
  DispatchRequest,
  LeadChunk,
  Log,
  WorkMessage,
  WorkQueue,
} from '../../lambdas/core/ports.ts';
import { isTwilioCallStatus } from '../../lambdas/core/states.ts';
import {
  type CallScript,
  type SimulatorOptions,
  startTwilioSimulator,
  type TwilioSimulator,
} from '../../tools/twilio-simulator/simulator.ts';
import { handlerEnvironment, type TestAws, testAws } from './aws.ts';

export class JumpingClock implements Clock {
  readonly #realStart = Date.now();
  #offset: number;
  constructor(start: Date) {
    this.#offset = start.getTime() - this.#realStart;
  }
  now(): Date {
    return new Date(Date.now() + this.#offset);
  }
  /** Moves time forward at once. */
  advance(ms: number): void {
    this.#offset += ms;
  }
  /** Moves time forward to `to` (never back). */
  jumpTo(to: Date): void {
    this.#offset += Math.max(0, to.getTime() - this.now().getTime());
  }
}

interface Pending {
  message: WorkMessage;
  dueAt: number;
}

/** SQS as the core sees it: messages, some held back until their delay has passed on the clock. */
class MemoryQueue implements WorkQueue {
  readonly pending: Pending[] = [];
  constructor(private readonly clock: Clock) {}
  async sendLeadChunks(runId: string, chunks: LeadChunk[]): Promise<void> {
    const dueAt = this.clock.now().getTime();
    for (const c of chunks)
      this.pending.push({ message: { type: 'ingest', runId, chunk: c.chunk, jobs: c.jobs }, dueAt });
  }
  async requestDispatch(runId: string, request: DispatchRequest = {}): Promise<void> {
    // What the message holds, as the SQS queue sends it: the hint, and a slot handed or carried.
    const { delaySeconds = 0, releasedAt: _at, ...message } = request;
    this.pending.push({
      message: { type: 'dispatch', runId, ...message },
      dueAt: this.clock.now().getTime() + delaySeconds * 1000,
    });
  }
  takeDue(): WorkMessage[] {
    const now = this.clock.now().getTime();
    const due = this.pending.filter((p) => p.dueAt <= now);
    for (const p of due) this.pending.splice(this.pending.indexOf(p), 1);
    return due.map((p) => p.message);
  }
}

/**
 * A double whose calls go as the test scripts them: per number, how each of its calls goes (by call
 * number, from 1); a number with no script answers and talks briefly.
 */
export function scriptedSimulator(): {
  scripts: Record<string, (n: number) => CallScript>;
  options: SimulatorOptions;
} {
  const scripts: Record<string, (n: number) => CallScript> = {};
  const callsTo: Record<string, number> = {};
  const options: SimulatorOptions = {
    queuedMs: 0,
    ringMs: 20,
    talkMs: 30,
    behavior: ({ to }) => {
      callsTo[to] = (callsTo[to] ?? 0) + 1;
      return scripts[to]?.(callsTo[to]) ?? { outcome: 'completed' };
    },
  };
  return { scripts, options };
}

const quietLog: Log = { debug() {}, info() {}, warn() {}, error() {} };

export interface Harness {
  clock: JumpingClock;
  store: DynamoRunStore;
  twilio: TwilioSimulator;
  queue: MemoryQueue;
  deps: DispatchDeps;
  aws: TestAws;
  createRun(body: unknown): Promise<string>;
  /** Resolves once nothing is due, nothing is being processed and no call is live. */
  idle(timeoutMs?: number): Promise<void>;
  /** Errors thrown while processing messages or callbacks (a test expects none). */
  errors: unknown[];
  /**
   * The environment that points the API handler at this harness's table, queue and double: a test
   * that reads through the real API (`route`) sets it before its first request, when the handler
   * reads its configuration.
   */
  apiEnvironment(): Record<string, string>;
  stop(): Promise<void>;
}

export async function startHarness(options: { start: Date; simulator?: SimulatorOptions }): Promise<Harness> {
  const aws = await testAws();
  const clock = new JumpingClock(options.start);
  const store = new DynamoRunStore(aws.dynamo, {
    tableName: aws.tableName,
    accountName: `LIMITS-${randomUUID()}`,
  });
  const queue = new MemoryQueue(clock);
  const twilio = await startTwilioSimulator(options.simulator ?? {});
  const telephony = new TwilioTelephony({
    credentials: { accountSid: twilio.accountSid, authToken: twilio.authToken },
    apiBaseUrl: twilio.url,
  });
  const errors: unknown[] = [];
  let inFlight = 0;

  // The webhook: the real callback cores (status, and answering-machine detection's verdict, which
  // redirects a machine to the run's voicemail) behind a plain server (signatures are the webhook's
  // own test).
  const webhook: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      inFlight += 1;
      try {
        const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
        const ids = parseCallbackIds(query);
        const status = params.get('CallStatus') ?? '';
        const answeredBy = params.get('AnsweredBy') ?? undefined;
        if (ids && isAmdCallback(query)) {
          await applyAmdCallback(
            { store, callControl: telephony, log: quietLog },
            { ...ids, callSid: params.get('CallSid') ?? '', answeredBy: answeredBy ?? '' },
          );
        } else if (ids && isTwilioCallStatus(status)) {
          await applyStatusCallback(
            { store, queue, clock, log: quietLog },
            {
              ...ids,
              callSid: params.get('CallSid') ?? '',
              callStatus: status,
              ...(answeredBy === undefined ? {} : { answeredBy }),
            },
          );
        }
        res.writeHead(200).end();
      } catch (error) {
        errors.push(error);
        res.writeHead(500).end();
      } finally {
        inFlight -= 1;
      }
    });
  });
  webhook.listen(0, '127.0.0.1');
  await once(webhook, 'listening');
  const webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/twilio/status`;

  const deps: DispatchDeps = {
    store,
    queue,
    telephony,
    clock,
    log: quietLog,
    calls: {
      from: '+15005550006',
      webhookUrl,
      ringTimeoutSeconds: 30,
      timeLimitSeconds: 600,
      content: { twiml: '<Response><Say>hi</Say></Response>' },
    },
  };

  // The event source: every due message handed to a dispatcher, as many at once as are due.
  let running = true;
  const pump = (async () => {
    while (running) {
      for (const message of queue.takeDue()) {
        inFlight += 1;
        handleWorkMessage(deps, message)
          .catch((error) => errors.push(error))
          .finally(() => {
            inFlight -= 1;
          });
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();

  const busy = () => {
    const now = clock.now().getTime();
    const { live, callbacks } = twilio.stats();
    return inFlight > 0 || queue.pending.some((p) => p.dueAt <= now) || live > 0 || callbacks.inFlight > 0;
  };

  return {
    clock,
    store,
    twilio,
    queue,
    deps,
    aws,
    errors,
    apiEnvironment: () => ({
      ...handlerEnvironment(aws),
      TWILIO_ACCOUNT_SID: twilio.accountSid,
      TWILIO_AUTH_TOKEN: twilio.authToken,
      TWILIO_API_BASE_URL: twilio.url,
    }),
    async createRun(body) {
      const view = await createRun(
        {
          store,
          queue,
          clock,
          limits: { defaultConcurrency: 3, maxConcurrency: 10, maxLeads: 1000 },
          policy: {
            allowedFrom: ['+15005550006'],
            twimlUrlPrefixes: ['https://twiml.example.com/'],
            maxTwimlBytes: 4000,
          },
          newRunId: randomUUID,
        },
        body,
      );
      return view.run_id;
    },
    async idle(timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      let quietSince: number | undefined;
      for (;;) {
        if (busy()) quietSince = undefined;
        else quietSince ??= Date.now();
        if (quietSince !== undefined && Date.now() - quietSince >= 150) return;
        if (Date.now() > deadline) throw new Error(`harness not idle after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async stop() {
      running = false;
      await pump;
      webhook.close();
      webhook.closeAllConnections();
      await twilio.stop();
      aws.dynamo.destroy();
      aws.sqs.destroy();
    },
  };
}
