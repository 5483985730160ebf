// (adapter) A model of DynamoDB's limits for the local stack, which DynamoDB Local does not enforce:
// opt-in (DYNAMO_LIMITS_MODEL=1), used by the scale benchmark and the tests that race many writers.
// A middleware on the SDK client, inside its retry loop (so the SDK's own retries meet it as they
// would meet AWS), that
// - cancels a TransactWriteItems with reason TransactionConflict when one of its items is part of
//   another transaction in flight at the same moment, and refuses a single-item write on such an
//   item with TransactionConflictException (DynamoDB's documented conflict rules). "In flight" is
//   until DynamoDB Local answers, or at most DYNAMO_LIMITS_CONFLICT_WINDOW_MS from when it was sent
//   (DynamoDB Local's answer on a busy machine includes queueing that DynamoDB's would not);
// - throttles a partition key written faster than 1,000 write units a second (read: 3,000), over a
//   sliding second: ProvisionedThroughputExceededException for a single request, a cancellation with
//   reason ThrottlingError for a transaction. Units as DynamoDB bills them: 1 per started KB of the
//   item written, twice in a transaction; reads 1 per started 4 KB (half for eventually consistent).
//   An item's size is the largest this model has seen written to it (a Put's item; an Update adds
//   its values to what it knew), a lower bound of the real size that is exact for slot-path items;
// (DynamoDB Local does honour a transaction's ClientRequestToken: a repeat of a token that succeeded
// is answered with success and not applied again, and a changed request under the same token is
// IdempotentParameterMismatchException, as on AWS; so that needs no model.)
// It also records what it saw: per-key write units per second, the largest item, conflicts (and
// which transactions met), throttles, how long transactions were in flight by shape.

import {
  type DynamoDBClient,
  ProvisionedThroughputExceededException,
  TransactionCanceledException,
  TransactionConflictException,
} from '@aws-sdk/client-dynamodb';

type AttributeValue = Record<string, unknown>;
type Key = Record<string, AttributeValue>;

interface LimitsModelOptions {
  /** Write units a partition key takes per second (DynamoDB: 1,000). */
  writeUnitsPerSecond?: number;
  /** Read units a partition key takes per second (DynamoDB: 3,000). */
  readUnitsPerSecond?: number;
  /**
   * How long a transaction holds its items against others at most, from when it is sent (ms). Unset:
   * until DynamoDB Local answers it, which on a busy machine includes its queueing (tens to hundreds of
   * ms, against ~10-25 ms for a transaction on DynamoDB); set to DynamoDB's own time to model AWS's
   * conflict window rather than this machine's.
   */
  conflictWindowMs?: number;
  now?: () => number;
}

interface LimitsReport {
  conflicts: number;
  writeThrottles: number;
  readThrottles: number;
  /** The most write units any partition key took in one sliding second, and which key. */
  hottestWriteUnitsPerSecond: { partition: string; units: number };
  /** The largest item written, as this model sized it. */
  largestItem: { key: string; bytes: number };
  /** Write units by partition key over the whole run. */
  writeUnitsByPartition: Map<string, number>;
  /** Conflicts by the kind of item that was in another transaction (its sort key's prefix: RUN, JOB, …). */
  conflictsByKind: Map<string, number>;
  /** Requests the handlers sent, by command (tries included): what DynamoDB serves per call. */
  requestsByCommand: Map<string, number>;
  /**
   * How long each transaction sent on was in flight, ms, in the order sent: the window in which
   * another one on its items conflicts (on DynamoDB Local, its answer time on this machine).
   */
  transactionMs: number[];
  /** The same by the transaction's shape (its items' kinds: `Update RUN, Update JOB, ConditionCheck SUPPRESSION`). */
  transactionMsByShape: Map<string, number[]>;
  /** Conflicts by the shapes of the transaction cancelled and of the one in flight, and the item's kind. */
  conflictPairs: Map<string, number>;
}

export class DynamoLimitsModel {
  readonly writeLimit: number;
  readonly readLimit: number;
  readonly #now: () => number;
  /** Items of transactions in flight: "pk|sk" → each transaction holding it (when sent, its shape). */
  readonly #inFlight = new Map<string, { sentAt: number; shape: string }[]>();
  /** How long a transaction holds its items at most, ms; undefined: until DynamoDB Local answers. */
  readonly conflictWindowMs: number | undefined;
  readonly #writes = new Map<string, { at: number; units: number }[]>();
  readonly #reads = new Map<string, { at: number; units: number }[]>();
  readonly #sizes = new Map<string, number>();
  readonly report: LimitsReport = {
    conflicts: 0,
    writeThrottles: 0,
    readThrottles: 0,
    hottestWriteUnitsPerSecond: { partition: '', units: 0 },
    largestItem: { key: '', bytes: 0 },
    writeUnitsByPartition: new Map(),
    conflictsByKind: new Map(),
    requestsByCommand: new Map(),
    transactionMs: [],
    transactionMsByShape: new Map(),
    conflictPairs: new Map(),
  };

  constructor(options: LimitsModelOptions = {}) {
    this.writeLimit = options.writeUnitsPerSecond ?? 1000;
    this.readLimit = options.readUnitsPerSecond ?? 3000;
    this.#now = options.now ?? Date.now;
    this.conflictWindowMs = options.conflictWindowMs;
  }

  /** The transaction in flight that holds the item at `at` (within the conflict window, if one is set). */
  #holder(key: string, at: number): { sentAt: number; shape: string } | undefined {
    const window = this.conflictWindowMs;
    return (this.#inFlight.get(key) ?? []).find(({ sentAt }) => window === undefined || at - sentAt < window);
  }

  /** Which transaction met which, on what kind of item: the shapes of both, the cancelled one first. */
  #notePair(shape: string, holder: string, key: string): void {
    const pair = `${shape} ⟂ ${holder} on ${kindOfKey(key)}`;
    this.report.conflictPairs.set(pair, (this.report.conflictPairs.get(pair) ?? 0) + 1);
  }

  /** Installs the model on `client` (once) and returns it. */
  install(client: DynamoDBClient): DynamoDBClient {
    if (client.middlewareStack.identify().some((entry) => entry.startsWith('dialgateLimitsModel')))
      return client;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as Record<string, unknown>;
        const requests = this.report.requestsByCommand;
        const command = context.commandName ?? 'unknown';
        requests.set(command, (requests.get(command) ?? 0) + 1);
        switch (context.commandName) {
          case 'TransactWriteItemsCommand':
            return this.#transaction(input, () => next(args));
          case 'PutItemCommand':
          case 'UpdateItemCommand':
          case 'DeleteItemCommand':
            return this.#singleWrite(input, () => next(args));
          case 'BatchWriteItemCommand':
            this.#batchWrite(input);
            return next(args);
          case 'GetItemCommand':
            this.#read(String(input.TableName), input.Key as Key, input.ConsistentRead === true);
            return next(args);
          default:
            return next(args);
        }
      },
      // Inside the SDK's retry middleware: its retries of a throttle meet the model again.
      { step: 'deserialize', name: 'dialgateLimitsModel' },
    );
    return client;
  }

  async #transaction<T>(input: Record<string, unknown>, send: () => Promise<T>): Promise<T> {
    const now = this.#now();
    const items = (input.TransactItems ?? []) as Record<string, Record<string, unknown>>[];
    const writes = items.map((entry) => {
      const [kind, op] = Object.entries(entry)[0]!;
      return { kind, key: keyOf(op), size: this.#sizeAfter(kind, op) };
    });
    const shape = shapeOf(writes.map((w) => `${w.kind} ${kindOfKey(w.key)}`));
    const holders = writes.map((w) => this.#holder(w.key, now));
    const conflicting = holders.map((holder) => holder !== undefined);
    if (conflicting.some(Boolean)) {
      this.report.conflicts += 1;
      for (const [i, w] of writes.entries()) if (conflicting[i]) this.#noteConflict(w.key);
      const first = holders.findIndex((holder) => holder !== undefined);
      this.#notePair(shape, holders[first]!.shape, writes[first]!.key);
      throw cancelled(
        conflicting.map((c) => (c ? 'TransactionConflict' : 'None')),
        'Transaction is ongoing for the item',
      );
    }
    const throttled = writes.map(
      (w) =>
        w.kind !== 'ConditionCheck' &&
        this.#wouldThrottle(this.#writes, w.key, 2 * units(w.size, 1024), this.writeLimit, now),
    );
    if (throttled.some(Boolean)) {
      this.report.writeThrottles += 1;
      throw cancelled(
        throttled.map((t) => (t ? 'ThrottlingError' : 'None')),
        'Throughput exceeds the current capacity for one or more partitions',
      );
    }
    const entry = { sentAt: now, shape };
    for (const w of writes) this.#inFlight.set(w.key, [...(this.#inFlight.get(w.key) ?? []), entry]);
    const sentAt = performance.now();
    try {
      const result = await send();
      // Billed only when applied (a cancelled transaction's units are not counted here).
      for (const w of writes) {
        if (w.kind === 'ConditionCheck') continue;
        this.#record(this.#writes, w.key, 2 * units(w.size, 1024), now, true);
        this.#noteSize(w.key, w.size);
      }
      return result;
    } finally {
      const ms = performance.now() - sentAt;
      this.report.transactionMs.push(ms);
      const list = this.report.transactionMsByShape.get(shape) ?? [];
      list.push(ms);
      this.report.transactionMsByShape.set(shape, list);
      for (const w of writes) {
        const left = (this.#inFlight.get(w.key) ?? []).filter((held) => held !== entry);
        if (left.length === 0) this.#inFlight.delete(w.key);
        else this.#inFlight.set(w.key, left);
      }
    }
  }

  async #singleWrite<T>(input: Record<string, unknown>, send: () => Promise<T>): Promise<T> {
    const key = keyOf(input);
    const kind = input.Item ? 'Put' : input.UpdateExpression ? 'Update' : 'Delete';
    const size = this.#sizeAfter(kind, input);
    const holder = this.#holder(key, this.#now());
    if (holder) {
      this.#notePair(`${kind} ${kindOfKey(key)}`, holder.shape, key);
      this.report.conflicts += 1;
      this.#noteConflict(key);
      throw new TransactionConflictException({
        message: 'Transaction is ongoing for the item',
        $metadata: { httpStatusCode: 400 },
      });
    }
    const now = this.#now();
    if (this.#wouldThrottle(this.#writes, key, units(size, 1024), this.writeLimit, now)) {
      this.report.writeThrottles += 1;
      throw throughputExceeded();
    }
    const result = await send();
    this.#record(this.#writes, key, units(size, 1024), now, true);
    this.#noteSize(key, size);
    return result;
  }

  #noteConflict(itemKey: string): void {
    const kind = kindOfKey(itemKey);
    this.report.conflictsByKind.set(kind, (this.report.conflictsByKind.get(kind) ?? 0) + 1);
  }

  #batchWrite(input: Record<string, unknown>): void {
    const now = this.#now();
    const requests = Object.entries(
      (input.RequestItems ?? {}) as Record<string, Record<string, Record<string, unknown>>[]>,
    );
    const writes = requests.flatMap(([table, list]) =>
      list.map((request) => {
        const put = request.PutRequest as Record<string, unknown> | undefined;
        const op = put
          ? { TableName: table, Item: put.Item }
          : { TableName: table, Key: (request.DeleteRequest as Record<string, unknown>).Key };
        return { key: keyOf(op), size: this.#sizeAfter(put ? 'Put' : 'Delete', op) };
      }),
    );
    if (
      writes.some((w) => this.#wouldThrottle(this.#writes, w.key, units(w.size, 1024), this.writeLimit, now))
    ) {
      this.report.writeThrottles += 1;
      throw throughputExceeded();
    }
    for (const w of writes) {
      this.#record(this.#writes, w.key, units(w.size, 1024), now, true);
      this.#noteSize(w.key, w.size);
    }
  }

  #read(table: string, key: Key, consistent: boolean): void {
    const now = this.#now();
    const itemKey = keyOf({ TableName: table, Key: key });
    const cost = units(this.#sizes.get(itemKey) ?? 1, 4096) * (consistent ? 1 : 0.5);
    if (this.#wouldThrottle(this.#reads, itemKey, cost, this.readLimit, now)) {
      this.report.readThrottles += 1;
      throw throughputExceeded();
    }
    this.#record(this.#reads, itemKey, cost, now, false);
  }

  /** The item's size after a write of this kind, as far as this model can know it. */
  #sizeAfter(kind: string, op: Record<string, unknown>): number {
    const key = keyOf(op);
    if (kind === 'Put') return attributesSize(op.Item as Key);
    if (kind === 'Delete' || kind === 'ConditionCheck') return this.#sizes.get(key) ?? 1;
    const values = (op.ExpressionAttributeValues ?? {}) as Key;
    // An update writes the whole item: at least what was known of it, and at least its new values.
    return Math.max(this.#sizes.get(key) ?? 0, attributesSize(op.Key as Key) + attributesSize(values));
  }

  #noteSize(key: string, size: number): void {
    this.#sizes.set(key, Math.max(this.#sizes.get(key) ?? 0, size));
    if (size > this.report.largestItem.bytes) this.report.largestItem = { key, bytes: size };
  }

  /** Throttled if the partition's units over the last second, with these, pass the limit. */
  #wouldThrottle(
    log: Map<string, { at: number; units: number }[]>,
    itemKey: string,
    cost: number,
    limit: number,
    now: number,
  ): boolean {
    const partition = partitionOf(itemKey);
    const entries = (log.get(partition) ?? []).filter((e) => e.at > now - 1000);
    log.set(partition, entries);
    return entries.reduce((sum, e) => sum + e.units, 0) + cost > limit;
  }

  #record(
    log: Map<string, { at: number; units: number }[]>,
    itemKey: string,
    cost: number,
    now: number,
    isWrite: boolean,
  ): void {
    const partition = partitionOf(itemKey);
    const entries = log.get(partition) ?? [];
    entries.push({ at: now, units: cost });
    log.set(partition, entries);
    if (!isWrite) return;
    this.report.writeUnitsByPartition.set(
      partition,
      (this.report.writeUnitsByPartition.get(partition) ?? 0) + cost,
    );
    const second = entries.filter((e) => e.at > now - 1000).reduce((sum, e) => sum + e.units, 0);
    if (second > this.report.hottestWriteUnitsPerSecond.units)
      this.report.hottestWriteUnitsPerSecond = { partition, units: second };
  }
}

/** The model DYNAMO_LIMITS_MODEL=1 asks for, one per process, or undefined when it is unset. */
let shared: DynamoLimitsModel | undefined;
export function limitsModelFromEnv(env: NodeJS.ProcessEnv = process.env): DynamoLimitsModel | undefined {
  if (env.DYNAMO_LIMITS_MODEL !== '1') return undefined;
  const window = Number(env.DYNAMO_LIMITS_CONFLICT_WINDOW_MS);
  shared ??= new DynamoLimitsModel(Number.isFinite(window) && window > 0 ? { conflictWindowMs: window } : {});
  return shared;
}

/** `client` under the limits model when DYNAMO_LIMITS_MODEL=1; else `client`. */
export function withDynamoLimitsModel(client: DynamoDBClient): DynamoDBClient {
  return limitsModelFromEnv()?.install(client) ?? client;
}

function cancelled(codes: string[], message: string): TransactionCanceledException {
  return new TransactionCanceledException({
    message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${codes.join(', ')}]`,
    $metadata: { httpStatusCode: 400 },
    CancellationReasons: codes.map((Code) => (Code === 'None' ? { Code } : { Code, Message: message })),
  });
}

function throughputExceeded(): ProvisionedThroughputExceededException {
  return new ProvisionedThroughputExceededException({
    message: 'The level of configured provisioned throughput for the table was exceeded (limits model)',
    $metadata: { httpStatusCode: 400 },
  });
}

function units(bytes: number, per: number): number {
  return Math.max(1, Math.ceil(bytes / per));
}

function keyOf(op: Record<string, unknown>): string {
  const key = (op.Key ?? op.Item ?? {}) as Key;
  return `${String(op.TableName)}|${scalar(key.pk)}|${scalar(key.sk)}`;
}

function partitionOf(itemKey: string): string {
  return itemKey.slice(0, itemKey.lastIndexOf('|'));
}

function scalar(value: AttributeValue | undefined): string {
  if (!value) return '';
  return String(value.S ?? value.N ?? '');
}

/** DynamoDB's item size: attribute names plus values (strings by UTF-8, numbers by digits, maps +3). */
function attributesSize(item: Key | undefined): number {
  let size = 0;
  for (const [name, value] of Object.entries(item ?? {})) size += Buffer.byteLength(name) + valueSize(value);
  return size;
}

function valueSize(value: AttributeValue): number {
  if (typeof value.S === 'string') return Buffer.byteLength(value.S);
  if (typeof value.N === 'string')
    return Math.min(21, Math.ceil(Math.max(1, value.N.replace(/[-.]/g, '').length) / 2) + 1);
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.M) {
    let size = 3;
    for (const [name, inner] of Object.entries(value.M as Key))
      size += Buffer.byteLength(name) + valueSize(inner) + 1;
    return size;
  }
  if (Array.isArray(value.L))
    return 3 + (value.L as AttributeValue[]).reduce((t, v) => t + valueSize(v) + 1, 0);
  if (Array.isArray(value.SS)) return (value.SS as string[]).reduce((t, s) => t + Buffer.byteLength(s), 0);
  return 0;
}

/** An item's kind from its "pk|sk" key: its sort key's prefix (RUN, SLOTS, JOB, SHARD, …). */
function kindOfKey(itemKey: string): string {
  const sk = itemKey.slice(itemKey.lastIndexOf('|') + 1);
  return /^[A-Z]+/.exec(sk)?.[0] ?? sk;
}

/** A transaction's items' kinds, runs of one kind counted: `Update SLOTS, Update JOB ×10, Update SHARD`. */
function shapeOf(kinds: string[]): string {
  const runs: [string, number][] = [];
  for (const kind of kinds) {
    const last = runs.at(-1);
    if (last && last[0] === kind) last[1] += 1;
    else runs.push([kind, 1]);
  }
  return runs.map(([kind, n]) => (n > 1 ? `${kind} ×${n}` : kind)).join(', ');
}
