// (bench) The probe: watches the local stack from the outside while a benchmark runs, without a line
// changed in lambdas/ or tools/local/. It
// - wraps `send` on the AWS SDK's client base class (shared by every DynamoDB and SQS client in the
//   process), timing each request, asking DynamoDB for its consumed capacity (ReturnConsumedCapacity
//   INDEXES, which DynamoDB Local answers with AWS's own accounting) and noting keys, message ids and
//   payload sizes;
// - adds two `before` middlewares to each handler's middy instance (the same module instances the
//   local runtime loaded), so that every SDK request is attributed to the invocation that made it
//   (AsyncLocalStorage), and each invocation knows its trigger (callback, SQS message ids, route);
// - takes the REPORT of every invocation (the stack's `onReport`) for counts and billed durations;
// - notes when each status callback reached the webhook's HTTP server (node:diagnostics_channel).
// Clocks: performance.timeOrigin + performance.now(), the Twilio double's own clock.

import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { FUNCTIONS, type FunctionName } from '../../lambdas/definitions/resources.ts';
import { eventBody } from '../../lambdas/handlers/body.ts';
import type { InvocationReport } from '../local/lambda-runtime.ts';

import {
  type AnyInput,
  consumed,
  DYNAMO_OPS,
  describeDynamo,
  describeSqs,
  type Invocation,
  isPollerOp,
  now,
  type Owner,
  READ_OPS,
  type SdkCall,
  type ServerArrival,
  WRITE_OPS,
} from './sdk-calls.ts';

export {
  billedSqsRequests,
  type Invocation,
  now,
  type Owner,
  type SdkCall,
  type ServerArrival,
} from './sdk-calls.ts';

type SmithySend = (this: object, command: unknown, ...rest: unknown[]) => unknown;

export class Probe {
  readonly calls: SdkCall[] = [];
  readonly invocations: Invocation[] = [];
  readonly reports: InvocationReport[] = [];
  /** Webhook HTTP arrivals by the callback's I-Twilio-Idempotency-Token. */
  readonly arrivals = new Map<string, ServerArrival>();
  /** Handlers whose invocations are attributed (their middy instance took the hook). */
  readonly hooked: FunctionName[] = [];
  /** When each calls.create request left its client (node:http or fetch), by invocation. */
  readonly createRequests: { at: number; inv?: number }[] = [];

  readonly #als = new AsyncLocalStorage<Invocation | { bench: true }>();
  readonly #byRequestId = new Map<string, Invocation>();
  readonly #owners = new WeakMap<object, Owner>();
  readonly #gates = new Map<FunctionName, Promise<void>>();
  #nextId = 1;
  #restore: (() => void) | undefined;

  /** Wraps the SDK's send; call before the stack makes its first request. */
  install(): void {
    if (this.#restore) return;
    const protos = new Set<{ send: SmithySend }>([
      Object.getPrototypeOf(DynamoDBClient.prototype),
      Object.getPrototypeOf(SQSClient.prototype),
    ]);
    const restores: (() => void)[] = [];
    for (const proto of protos) {
      const original = proto.send;
      const probe = this;
      proto.send = function patchedSend(this: object, command: unknown, ...rest: unknown[]) {
        // Callback style is not used by dialgate; leave it alone.
        if (rest.some((arg) => typeof arg === 'function')) return original.call(this, command, ...rest);
        const call = probe.#begin(this, command);
        const pending = original.call(this, command, ...rest) as Promise<unknown>;
        return pending.then(
          (output) => {
            probe.#end(call, output, undefined);
            return output;
          },
          (error: unknown) => {
            probe.#end(call, undefined, error);
            throw error;
          },
        );
      };
      restores.push(() => {
        proto.send = original;
      });
    }
    const unsubscribe = this.#watchServer();
    this.#restore = () => {
      for (const restore of restores) restore();
      unsubscribe();
    };
  }

  uninstall(): void {
    this.#restore?.();
    this.#restore = undefined;
  }

  /**
   * Adds the attribution middlewares to every handler the stack loaded. Call after startLocalStack:
   * importing a handler earlier would run its module code before the stack sets the environment.
   */
  async hookHandlers(root: string): Promise<void> {
    for (const fn of Object.keys(FUNCTIONS) as FunctionName[]) {
      const url = pathToFileURL(resolve(root, FUNCTIONS[fn].entry)).href;
      let module: { handler?: { before?: (fn: (request: MiddyRequest) => unknown) => unknown } };
      try {
        module = await import(url);
      } catch {
        continue;
      }
      const handler = module.handler;
      if (typeof handler?.before !== 'function') continue;
      // The first one makes middy await (and holds the invocation while `hold` says so), so that the
      // second one's enterWith lands in the request's own async context, not in the caller's (the
      // local event source or HTTP server).
      handler.before(() => this.#gates.get(fn) ?? Promise.resolve());
      handler.before((request) => {
        this.#als.enterWith(this.#invocation(fn, request));
      });
      this.hooked.push(fn);
    }
  }

  /** For the stack's `onReport`: each invocation's end and billed duration. */
  readonly onReport = (report: InvocationReport): void => {
    this.reports.push(report);
    const fn = (Object.keys(FUNCTIONS) as FunctionName[]).find((name) => report.functionName.endsWith(name));
    let invocation = this.#byRequestId.get(report.requestId);
    if (!invocation && fn) {
      invocation = { id: this.#nextId++, fn, requestId: report.requestId, start: now() - report.durationMs };
      this.invocations.push(invocation);
    }
    if (invocation) {
      invocation.end = now();
      invocation.durationMs = report.durationMs;
      invocation.ok = report.ok;
      this.#byRequestId.delete(report.requestId);
    }
  };

  /**
   * Holds new invocations of `fn` at their start until the returned function is called: the bench's
   * way to keep one function's work from sharing the machine with another's measurement.
   */
  hold(fn: FunctionName): () => void {
    let open!: () => void;
    this.#gates.set(
      fn,
      new Promise<void>((resolve) => {
        open = resolve;
      }),
    );
    return () => {
      this.#gates.delete(fn);
      open();
    };
  }

  /** Runs `work` as the benchmark's own traffic: counted apart, never in the app's cost. */
  asBench<T>(work: () => Promise<T>): Promise<T> {
    return this.#als.run({ bench: true }, work);
  }

  #invocation(fn: FunctionName, request: MiddyRequest): Invocation {
    const requestId = String(request.context?.awsRequestId ?? `local-${this.#nextId}`);
    const invocation: Invocation = { id: this.#nextId++, fn, requestId, start: now() };
    const event = (request.event ?? {}) as Record<string, unknown>;
    if (fn === 'webhook') {
      const headers = (event.headers ?? {}) as Record<string, string>;
      const token = headers['i-twilio-idempotency-token'];
      if (token) invocation.token = token;
      const query = new URLSearchParams(String(event.rawQueryString ?? ''));
      for (const key of ['run', 'job', 'attempt'] as const) {
        const value = query.get(key);
        if (value !== null) invocation[key] = value;
      }
      const body = eventBody({
        body: String(event.body ?? ''),
        isBase64Encoded: event.isBase64Encoded === true,
      });
      const status = new URLSearchParams(body).get('CallStatus');
      if (status) invocation.callStatus = status;
    } else if (fn === 'dispatcher') {
      const records = (event.Records ?? []) as { messageId?: string }[];
      invocation.messageIds = records.map((record) => String(record.messageId));
    } else if (fn === 'api') {
      invocation.method = String(event.httpMethod ?? '');
      invocation.path = String(event.path ?? '');
    }
    this.invocations.push(invocation);
    this.#byRequestId.set(requestId, invocation);
    return invocation;
  }

  #begin(client: object, command: unknown): SdkCall {
    const name = (command as { constructor?: { name?: string } })?.constructor?.name ?? 'Unknown';
    const input = ((command as { input?: AnyInput })?.input ?? {}) as AnyInput;
    const serviceId = String((client as { config?: { serviceId?: string } }).config?.serviceId ?? '');
    const service = /dynamo/i.test(serviceId) ? 'dynamodb' : /sqs/i.test(serviceId) ? 'sqs' : 'other';
    const op = DYNAMO_OPS[name] ?? name.replace(/Command$/, '');
    const store = this.#als.getStore();
    let owner: Owner;
    let inv: number | undefined;
    if (store && 'bench' in store) owner = 'bench';
    else if (store) {
      owner = store.fn;
      inv = store.id;
      this.#owners.set(client, store.fn);
    } else {
      owner =
        this.#owners.get(client) ?? (service === 'sqs' && isPollerOp(op) ? 'event-source' : 'unattributed');
    }
    const call: SdkCall = { service, op, t0: now(), t1: 0, ok: false, owner, ...(inv ? { inv } : {}) };
    if (service === 'dynamodb') describeDynamo(call, input);
    if (service === 'sqs') describeSqs(call, input);
    return call;
  }

  #end(call: SdkCall, output: unknown, error: unknown): void {
    call.t1 = now();
    call.ok = error === undefined;
    if (error !== undefined) {
      call.error = String((error as { name?: string })?.name ?? error);
      const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
      if (reasons) {
        call.refusedItems = reasons.flatMap((reason, i) =>
          reason.Code === 'ConditionalCheckFailed' ? [i] : [],
        );
      }
    }
    const out = (output ?? {}) as AnyInput;
    if (call.service === 'dynamodb') {
      if (call.op === 'Query' && error === undefined) call.returned = Number(out.Count ?? 0);
      const units = consumed(out.ConsumedCapacity);
      if (READ_OPS.has(call.op)) {
        // DynamoDB bills at least one read unit (half when eventually consistent) per request;
        // DynamoDB Local reports 0 for a Query of small items.
        call.readUnits = Math.max(units.total, call.consistent ? 1 : 0.5);
      } else if (WRITE_OPS.has(call.op)) {
        if (error === undefined) {
          call.writeUnits = units.total;
          call.indexWriteUnits = units.indexes;
        } else {
          // A refused conditional write is billed too but reports nothing: 1 unit per item, 2 in a transaction.
          const items = call.op === 'TransactWriteItems' ? (call.items ?? 1) * 2 : 1;
          call.writeUnits = items;
          call.estimated = true;
        }
      }
    }
    if (call.service === 'sqs' && error === undefined) {
      if (call.op === 'SendMessage' && call.sent?.[0]) call.sent[0].id = String(out.MessageId ?? '');
      if (call.op === 'SendMessageBatch' && call.sent) {
        const ids = new Map(
          ((out.Successful ?? []) as { Id?: string; MessageId?: string }[]).map((s) => [s.Id, s.MessageId]),
        );
        call.sent.forEach((message, i) => {
          const id = ids.get(String(i));
          if (id) message.id = id;
        });
      }
      if (call.op === 'ReceiveMessage') {
        const messages = (out.Messages ?? []) as { MessageId?: string; Body?: string }[];
        call.received = messages.map((m) => String(m.MessageId));
        call.bytes = messages.reduce((total, m) => total + Buffer.byteLength(m.Body ?? ''), 0);
      }
    }
    this.calls.push(call);
  }

  #watchServer(): () => void {
    const onStart = (message: unknown) => {
      const request = (message as { request?: IncomingMessage }).request;
      const token = request?.headers['i-twilio-idempotency-token'];
      if (typeof token !== 'string') return;
      this.arrivals.set(token, { port: request?.socket.localPort ?? 0, at: now() });
    };
    const onClientStart = (message: unknown) => {
      const request = (message as { request?: { method?: string; path?: string } }).request;
      if (request?.method !== 'POST' || !/\/Calls\.json(\?|$)/.test(request.path ?? '')) return;
      const store = this.#als.getStore();
      this.createRequests.push({ at: now(), ...(store && 'id' in store ? { inv: store.id } : {}) });
    };
    // fetch (undici) publishes on its own channel: { request: { method, path, origin } }.
    const onFetchCreate = (message: unknown) => onClientStart(message);
    subscribe('http.server.request.start', onStart);
    subscribe('http.client.request.start', onClientStart);
    subscribe('undici:request:create', onFetchCreate);
    return () => {
      unsubscribe('http.server.request.start', onStart);
      unsubscribe('http.client.request.start', onClientStart);
      unsubscribe('undici:request:create', onFetchCreate);
    };
  }
}

interface MiddyRequest {
  event?: unknown;
  context?: { awsRequestId?: string };
}
