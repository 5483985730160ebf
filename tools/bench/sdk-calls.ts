// (bench) What the probe records of each AWS SDK request and invocation, and how it reads a request:
// the DynamoDB operation, its keys and index writes, its consumed capacity; the SQS message ids and
// payload sizes.

import type { FunctionName } from '../../lambdas/definitions/resources.ts';
import { TABLE_SCHEMA } from '../../lambdas/definitions/resources.ts';

export function now(): number {
  return performance.timeOrigin + performance.now();
}

export type Owner = FunctionName | 'event-source' | 'bench' | 'unattributed';

export interface Invocation {
  id: number;
  fn: FunctionName;
  requestId: string;
  /** When the handler itself started (after the runtime stand-in and the handler's other middlewares). */
  start: number;
  /** From the REPORT: when the invocation ended, and its duration as Lambda would bill it. */
  end?: number;
  durationMs?: number;
  ok?: boolean;
  /** Webhook: the callback's idempotency token, its ids and status. */
  token?: string;
  run?: string;
  job?: string;
  attempt?: string;
  callStatus?: string;
  /** Dispatcher: the SQS message ids of its batch. */
  messageIds?: string[];
  /** API: method and path. */
  method?: string;
  path?: string;
}

export interface SentMessage {
  id?: string;
  type?: string;
  runId?: string;
  releasedAt?: string;
  delaySeconds?: number;
  /** A dispatch: with a hint of next jobs, with an account slot handed to its run, or neither. */
  dispatch?: 'hinted' | 'empty hint' | 'handed' | 'plain';
}

export interface SdkCall {
  service: 'dynamodb' | 'sqs' | 'other';
  /** The API operation: GetItem, TransactWriteItems, SendMessage, ReceiveMessage… */
  op: string;
  t0: number;
  t1: number;
  ok: boolean;
  error?: string;
  /** TransactWriteItems refused: which items' conditions failed (indexes in request order). */
  refusedItems?: number[];
  owner: Owner;
  /** The invocation that made it, when it came from a handler. */
  inv?: number;
  /** DynamoDB: "pk|sk" of every item named (transactions and batches: in request order). */
  keys?: string[];
  index?: string;
  /** DynamoDB Query: the partition key value asked for. */
  queryKey?: string;
  /** DynamoDB Query: items returned. */
  returned?: number;
  consistent?: boolean;
  items?: number;
  /** TransactWriteItems: index writes each item causes (an index key set or removed, or put with it). */
  itemIndexWrites?: number[];
  /** Capacity units as DynamoDB Local reported them (table + indexes). */
  readUnits?: number;
  writeUnits?: number;
  /** The share of writeUnits spent on global secondary indexes. */
  indexWriteUnits?: number;
  /** True when the units are an estimate (a refused conditional write reports none). */
  estimated?: boolean;
  /** SQS: messages sent (with their ids once answered) and received. */
  sent?: SentMessage[];
  received?: string[];
  /** SQS payload bytes (billing counts each 64 KB chunk as one request). */
  bytes?: number;
}

/** One Function URL request as the webhook's HTTP server saw it arrive. */
export interface ServerArrival {
  port: number;
  at: number;
}

export const DYNAMO_OPS: Record<string, string> = {
  GetCommand: 'GetItem',
  PutCommand: 'PutItem',
  UpdateCommand: 'UpdateItem',
  DeleteCommand: 'DeleteItem',
  QueryCommand: 'Query',
  ScanCommand: 'Scan',
  BatchGetCommand: 'BatchGetItem',
  BatchWriteCommand: 'BatchWriteItem',
  TransactWriteCommand: 'TransactWriteItems',
  TransactGetCommand: 'TransactGetItems',
};
export const READ_OPS = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem', 'TransactGetItems']);
export const WRITE_OPS = new Set([
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'BatchWriteItem',
  'TransactWriteItems',
]);

export type AnyInput = Record<string, unknown>;

export function isPollerOp(op: string): boolean {
  return op === 'ReceiveMessage' || op === 'DeleteMessageBatch' || op === 'ChangeMessageVisibilityBatch';
}

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { S?: unknown }).S === 'string') {
    return (value as { S: string }).S;
  }
  return undefined;
}

function keyOf(item: unknown): string {
  const record = (item ?? {}) as Record<string, unknown>;
  return `${text(record.pk) ?? '?'}|${text(record.sk) ?? '?'}`;
}

export function describeDynamo(call: SdkCall, input: AnyInput): void {
  if (READ_OPS.has(call.op) || WRITE_OPS.has(call.op)) input.ReturnConsumedCapacity ??= 'INDEXES';
  if (input.ConsistentRead === true) call.consistent = true;
  if (input.Key) call.keys = [keyOf(input.Key)];
  if (input.Item) call.keys = [keyOf(input.Item)];
  if (call.op === 'TransactWriteItems') {
    const items = (input.TransactItems ?? []) as Record<string, { Key?: unknown; Item?: unknown }>[];
    call.items = items.length;
    call.keys = items.map((item) => {
      const action = item.Put ?? item.Update ?? item.Delete ?? item.ConditionCheck;
      return keyOf(action?.Key ?? action?.Item);
    });
    call.itemIndexWrites = items.map(indexWrites);
  }
  if (call.op === 'BatchWriteItem') {
    type WriteRequest = { PutRequest?: { Item?: unknown }; DeleteRequest?: { Key?: unknown } };
    const requests = Object.values((input.RequestItems ?? {}) as Record<string, WriteRequest[]>).flat();
    call.items = requests.length;
    call.keys = requests.map((request) => keyOf(request.PutRequest?.Item ?? request.DeleteRequest?.Key));
  }
  if (call.op === 'Query') {
    if (typeof input.IndexName === 'string') call.index = input.IndexName;
    const values = Object.values((input.ExpressionAttributeValues ?? {}) as Record<string, unknown>);
    const first = values.map(text).find((value) => value !== undefined);
    if (first !== undefined) call.queryKey = first;
  }
}

/** Index writes a transaction item causes: one per index whose key it puts, sets or removes. */
function indexWrites(item: Record<string, Record<string, unknown> | undefined>): number {
  let writes = 0;
  for (const index of TABLE_SCHEMA.indexes) {
    if (item.Put) {
      const attributes = (item.Put.Item ?? {}) as Record<string, unknown>;
      if (index.partitionKey in attributes && index.sortKey in attributes) writes += 1;
    } else if (item.Update) {
      const names = Object.values((item.Update.ExpressionAttributeNames ?? {}) as Record<string, string>);
      const expression = String(item.Update.UpdateExpression ?? '');
      const named = (attribute: string) =>
        names.includes(attribute) || new RegExp(`\\b${attribute}\\b`).test(expression);
      if (named(index.partitionKey) || named(index.sortKey)) writes += 1;
    }
  }
  return writes;
}

export function describeSqs(call: SdkCall, input: AnyInput): void {
  const parse = (body: unknown): SentMessage => {
    try {
      const parsed = JSON.parse(String(body)) as {
        type?: string;
        runId?: string;
        releasedAt?: string;
        next?: unknown[];
        handedShard?: number | null;
      };
      const dispatch =
        parsed.handedShard !== undefined
          ? 'handed'
          : Array.isArray(parsed.next)
            ? parsed.next.length > 0
              ? 'hinted'
              : 'empty hint'
            : 'plain';
      return {
        ...(parsed.type ? { type: parsed.type } : {}),
        ...(parsed.runId ? { runId: parsed.runId } : {}),
        ...(parsed.releasedAt ? { releasedAt: parsed.releasedAt } : {}),
        ...(parsed.type === 'dispatch' ? { dispatch } : {}),
      };
    } catch {
      return {};
    }
  };
  if (call.op === 'SendMessage') {
    const message = parse(input.MessageBody);
    if (typeof input.DelaySeconds === 'number') message.delaySeconds = input.DelaySeconds;
    call.sent = [message];
    call.bytes = Buffer.byteLength(String(input.MessageBody ?? ''));
  }
  if (call.op === 'SendMessageBatch') {
    const entries = (input.Entries ?? []) as { MessageBody?: string }[];
    call.sent = entries.map((entry) => parse(entry.MessageBody));
    call.bytes = entries.reduce((total, entry) => total + Buffer.byteLength(entry.MessageBody ?? ''), 0);
  }
}

export function consumed(value: unknown): { total: number; indexes: number } {
  const list = (Array.isArray(value) ? value : value ? [value] : []) as {
    CapacityUnits?: number;
    GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }>;
  }[];
  let total = 0;
  let indexes = 0;
  for (const entry of list) {
    total += entry.CapacityUnits ?? 0;
    for (const index of Object.values(entry.GlobalSecondaryIndexes ?? {}))
      indexes += index.CapacityUnits ?? 0;
  }
  return { total, indexes };
}

/** SQS bills each 64 KB chunk of a request's payload as one request. */
export function billedSqsRequests(call: SdkCall): number {
  return Math.max(1, Math.ceil((call.bytes ?? 0) / 65_536));
}
