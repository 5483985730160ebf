// (bench) What the app consumed while a workload ran, counted from the probe: DynamoDB read and write
// units, SQS requests, Lambda invocations and billed GB-seconds, API Gateway requests. Only the app's
// own traffic counts: the benchmark's requests (the floor, its GET polling) are left out.
//
// DynamoDB units: DynamoDB Local reports AWS's accounting for single-item requests and for
// BatchWriteItem (each put's units plus its index entries, as AWS bills them), but for
// TransactWriteItems it reports one item's worth whatever the number of items, so transactions are
// computed here by AWS's rule: each item costs 2 write units per started KB of the larger of its
// before and after images, plus one write unit per index write it causes. Item sizes come from a scan
// of the table when the workload ends (a job is then at its largest; a run item holds only counters,
// whatever its cap, since its holders are the live jobs themselves).

import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { FUNCTIONS, type FunctionName } from '../../lambdas/definitions/resources.ts';
import { LOCAL_AWS } from '../local/emulators.ts';
import { billedSqsRequests, type Invocation, type Probe, type SdkCall } from './probe.ts';
import { round } from './stats.ts';

export interface Window {
  from: number;
  to: number;
}

export interface LambdaUsage {
  invocations: number;
  totalMs: number;
  /** Lambda bills each invocation's duration rounded up to the millisecond. */
  billedMs: number;
  gbSeconds: number;
  memoryMb: number;
  meanMs: number;
}

export interface Usage {
  dynamo: {
    requests: Record<string, number>;
    readUnits: number;
    writeUnits: number;
    /** Write units by what the request did (owner, operation, purpose). */
    writeUnitsBy: Record<string, number>;
    readUnitsBy: Record<string, number>;
    /** Requests by what they did (owner, operation, purpose), tries and refusals included. */
    requestsBy: Record<string, number>;
    /** Of writeUnits: index writes (counted at one unit each; DynamoDB Local counts them twice in a transaction). */
    indexWriteUnits: number;
    /** Of writeUnits: refused conditional writes, which report no units (estimated). */
    refusedWriteUnits: number;
    /** Refused transactions by what they were and which item's condition failed. */
    refusedTransactions: Record<string, number>;
  };
  sqs: {
    requests: Record<string, number>;
    /** Requests as billed: each 64 KB chunk of payload counts once. */
    billedRequests: number;
    /** Long polls that came back empty: an artifact of the local 1 s poll (see cost notes). */
    emptyReceives: number;
  };
  lambda: Partial<Record<FunctionName, LambdaUsage>>;
  /** API Gateway requests the app needed (POST /runs and run controls; the bench's own GETs excluded). */
  apiRequests: number;
  benchApiRequests: number;
}

/** Size of every item in the table by "pk|sk", as DynamoDB bills it. */
export async function scanItemSizes(
  endpoint: string,
  tableName: string,
  probe: Probe,
): Promise<Map<string, number>> {
  return probe.asBench(async () => {
    const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint });
    const sizes = new Map<string, number>();
    try {
      let start: Record<string, AttributeValue> | undefined;
      do {
        const page = await client.send(
          new ScanCommand({ TableName: tableName, ...(start ? { ExclusiveStartKey: start } : {}) }),
        );
        for (const item of page.Items ?? []) {
          sizes.set(`${item.pk?.S}|${item.sk?.S}`, itemSize(item));
        }
        start = page.LastEvaluatedKey;
      } while (start);
    } finally {
      client.destroy();
    }
    return sizes;
  });
}

/** DynamoDB's item size: attribute names plus values (strings by UTF-8, numbers by digits, maps +3). */
export function itemSize(item: Record<string, AttributeValue>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += Buffer.byteLength(name) + valueSize(value);
  return size;
}

function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S);
  if (value.N !== undefined) {
    const digits = value.N.replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
    return Math.min(21, Math.ceil(Math.max(1, digits.length) / 2) + 1);
  }
  if (value.B !== undefined) return value.B.length;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.M !== undefined) {
    let size = 3;
    for (const [name, inner] of Object.entries(value.M))
      size += Buffer.byteLength(name) + valueSize(inner) + 1;
    return size;
  }
  if (value.L !== undefined) return 3 + value.L.reduce((total, inner) => total + valueSize(inner) + 1, 0);
  if (value.SS !== undefined) return value.SS.reduce((total, s) => total + Buffer.byteLength(s), 0);
  if (value.NS !== undefined) return value.NS.reduce((total, n) => total + valueSize({ N: n }), 0);
  return 0;
}

export interface UsageOptions {
  window: Window;
  itemSizes: Map<string, number>;
}

export function countUsage(probe: Probe, options: UsageOptions): Usage {
  const { window, itemSizes } = options;
  const inWindow = (t: number) => t >= window.from && t <= window.to;
  const invocations = new Map(probe.invocations.map((inv) => [inv.id, inv]));
  // The bench's own API requests (its GET polling) are not the app's cost.
  const isBenchApi = (inv: Invocation | undefined) => inv?.fn === 'api' && inv.method === 'GET';
  const units = (key: string) => {
    const size = itemSizes.get(key) ?? 1024;
    return Math.max(1, Math.ceil(size / 1024));
  };

  const usage: Usage = {
    dynamo: {
      requests: {},
      readUnits: 0,
      writeUnits: 0,
      writeUnitsBy: {},
      readUnitsBy: {},
      requestsBy: {},
      indexWriteUnits: 0,
      refusedWriteUnits: 0,
      refusedTransactions: {},
    },
    sqs: { requests: {}, billedRequests: 0, emptyReceives: 0 },
    lambda: {},
    apiRequests: 0,
    benchApiRequests: 0,
  };
  const add = (record: Record<string, number>, key: string, n: number) => {
    record[key] = round((record[key] ?? 0) + n, 3);
  };

  for (const call of probe.calls) {
    if (!inWindow(call.t0) || call.owner === 'bench' || call.owner === 'unattributed') continue;
    const inv = call.inv === undefined ? undefined : invocations.get(call.inv);
    if (isBenchApi(inv)) continue;
    if (call.service === 'dynamodb') {
      add(usage.dynamo.requests, call.op, 1);
      const label = purpose(call, inv);
      add(usage.dynamo.requestsBy, label, 1);
      if (call.readUnits !== undefined) {
        usage.dynamo.readUnits += call.readUnits;
        add(usage.dynamo.readUnitsBy, label, call.readUnits);
      }
      let write = call.writeUnits ?? 0;
      if (call.op === 'TransactWriteItems' && call.ok) {
        const indexUnits = (call.itemIndexWrites ?? []).reduce((total, n) => total + n, 0);
        write = (call.keys ?? []).reduce((total, key) => total + 2 * units(key), 0) + indexUnits;
        usage.dynamo.indexWriteUnits += indexUnits;
      } else if (call.ok) {
        usage.dynamo.indexWriteUnits += call.indexWriteUnits ?? 0;
      }
      if (call.estimated) usage.dynamo.refusedWriteUnits += write;
      if (call.op === 'TransactWriteItems' && !call.ok) {
        const failed = (call.refusedItems ?? []).map((i) =>
          i === 0 ? 'run item' : i === 1 ? 'job item' : `item ${i}`,
        );
        add(usage.dynamo.refusedTransactions, `${label}: ${failed.join(' + ') || call.error}`, 1);
      }
      if (write > 0) {
        usage.dynamo.writeUnits += write;
        add(usage.dynamo.writeUnitsBy, label, write);
      }
    } else if (call.service === 'sqs') {
      add(usage.sqs.requests, call.op, 1);
      if (call.op === 'ReceiveMessage' && (call.received?.length ?? 0) === 0) {
        usage.sqs.emptyReceives += 1;
        continue;
      }
      usage.sqs.billedRequests += billedSqsRequests(call);
    }
  }

  for (const inv of probe.invocations) {
    if (inv.end === undefined || !inWindow(inv.start)) continue;
    if (isBenchApi(inv)) {
      usage.benchApiRequests += 1;
      continue;
    }
    if (inv.fn === 'api') usage.apiRequests += 1;
    const memoryMb = FUNCTIONS[inv.fn].memoryMb;
    const entry = usage.lambda[inv.fn] ?? {
      invocations: 0,
      totalMs: 0,
      billedMs: 0,
      gbSeconds: 0,
      memoryMb,
      meanMs: 0,
    };
    const ms = inv.durationMs ?? 0;
    entry.invocations += 1;
    entry.totalMs += ms;
    entry.billedMs += Math.ceil(ms);
    entry.gbSeconds += (Math.ceil(ms) / 1000) * (memoryMb / 1024);
    usage.lambda[inv.fn] = entry;
  }
  for (const entry of Object.values(usage.lambda)) {
    entry.meanMs = round(entry.totalMs / Math.max(1, entry.invocations));
    entry.totalMs = round(entry.totalMs);
    entry.gbSeconds = round(entry.gbSeconds, 4);
  }
  usage.dynamo.readUnits = round(usage.dynamo.readUnits, 2);
  usage.dynamo.writeUnits = round(usage.dynamo.writeUnits, 2);
  return usage;
}

/** What a DynamoDB request was for, from who made it and what it touched. */
function purpose(call: SdkCall, inv: Invocation | undefined): string {
  const owner = call.owner;
  const first = call.keys?.[0] ?? '';
  const sk = first.slice(first.indexOf('|') + 1);
  if (call.op === 'TransactWriteItems') {
    if (sk.startsWith('CHUNK#')) return `${owner}: ingest chunk (TransactWriteItems)`;
    if (owner === 'webhook') {
      return inv?.callStatus === 'in-progress'
        ? 'webhook: answered → calling (TransactWriteItems)'
        : 'webhook: release (TransactWriteItems)';
    }
    if (owner === 'dispatcher' && sk === 'RUN') return 'dispatcher: acquire or release (TransactWriteItems)';
    return `${owner}: TransactWriteItems`;
  }
  if (call.op === 'Query') return `${owner}: Query ${call.index ?? 'table'}`;
  const what = sk.startsWith('JOB#') ? 'job' : sk === 'RUN' ? 'run' : sk.split('#')[0] || 'item';
  return `${owner}: ${call.op} ${what}`;
}
