// The local stand-in for Lambda's DynamoDB stream event source mapping with ReportBatchItemFailures:
// reads the table's stream on DynamoDB Local (shard by shard, a child shard after its parent), invokes
// the function with the DynamoDBStreamEvent Lambda would build, and on a failure reads the shard on
// from the failed record (the records before it are done), after a pause that doubles up to a cap —
// Lambda retries a failed batch the same way, blocking the shard, until the record expires.

import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type Shard,
  type _Record as StreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { LOCAL_AWS } from './emulators.ts';
import type { LocalFunction } from './lambda-runtime.ts';

export interface StreamSourceOptions {
  fn: LocalFunction<DynamoDBStreamEvent, DynamoDBBatchResponse | undefined>;
  endpoint: string;
  streamArn: string;
  batchSize: number;
  /** How often an idle shard is read again; Lambda polls a stream about four times a second. */
  pollIntervalMs?: number;
  /** First pause after a failed batch; doubled on each failure in a row, up to maxRetryDelayMs. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  onError?: (error: unknown, where: string) => void;
}

export interface StreamSourceStats {
  invocations: number;
  records: number;
  /** Batches that failed (reported or thrown) and were read again. */
  failedBatches: number;
}

export interface RunningStreamSource {
  stats(): StreamSourceStats;
  stop(): Promise<void>;
}

/** How often the stream's shards are listed again while some are open. */
const SHARD_REFRESH_MS = 5_000;

interface ShardState {
  id: string;
  parent?: string | undefined;
  iterator?: string | undefined;
  /** The shard is closed and read to its end. */
  done: boolean;
  failures: number;
  notBefore: number;
}

export function startDynamoDbStreamSource(options: StreamSourceOptions): RunningStreamSource {
  const client = new DynamoDBStreamsClient({ ...LOCAL_AWS, endpoint: options.endpoint });
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const retryDelayMs = options.retryDelayMs ?? 500;
  const maxRetryDelayMs = options.maxRetryDelayMs ?? 10_000;
  const stats: StreamSourceStats = { invocations: 0, records: 0, failedBatches: 0 };
  const shards = new Map<string, ShardState>();
  const report = (error: unknown, where: string) => options.onError?.(error, where);
  let stopping = false;
  let describedAt = 0;
  let wake: (() => void) | undefined;

  async function describeShards(): Promise<Shard[]> {
    const all: Shard[] = [];
    let ExclusiveStartShardId: string | undefined;
    do {
      const { StreamDescription } = await client.send(
        new DescribeStreamCommand({ StreamArn: options.streamArn, ExclusiveStartShardId }),
      );
      all.push(...(StreamDescription?.Shards ?? []));
      ExclusiveStartShardId = StreamDescription?.LastEvaluatedShardId;
    } while (ExclusiveStartShardId);
    return all;
  }

  /**
   * DynamoDB Local stamps records to the minute; AWS to the second. A record's time is the second it
   * was first read here instead (kept, so that a record read again carries the same time).
   */
  const readAt = new Map<string, number>();
  function firstRead(record: StreamRecord): number {
    const sequence = record.dynamodb?.SequenceNumber ?? '';
    let seconds = readAt.get(sequence);
    if (seconds === undefined) {
      seconds = Math.floor(Date.now() / 1000);
      readAt.set(sequence, seconds);
      // Only records that may be read again matter: those of the last few batches.
      if (readAt.size > 10_000) readAt.delete(readAt.keys().next().value!);
    }
    return seconds;
  }

  async function addShards(): Promise<void> {
    for (const shard of await describeShards()) {
      if (shards.has(shard.ShardId!)) continue;
      shards.set(shard.ShardId!, {
        id: shard.ShardId!,
        parent: shard.ParentShardId,
        done: false,
        failures: 0,
        notBefore: 0,
      });
    }
  }

  async function iteratorAt(shardId: string, sequenceNumber?: string): Promise<string | undefined> {
    const { ShardIterator } = await client.send(
      new GetShardIteratorCommand({
        StreamArn: options.streamArn,
        ShardId: shardId,
        ...(sequenceNumber
          ? { ShardIteratorType: 'AT_SEQUENCE_NUMBER', SequenceNumber: sequenceNumber }
          : { ShardIteratorType: 'TRIM_HORIZON' }),
      }),
    );
    return ShardIterator;
  }

  /** Reads one batch of one shard and hands it to the function; true when it read any record. */
  async function readShard(shard: ShardState): Promise<boolean> {
    shard.iterator ??= await iteratorAt(shard.id);
    if (!shard.iterator) {
      shard.done = true;
      return false;
    }
    const { Records = [], NextShardIterator } = await client.send(
      new GetRecordsCommand({ ShardIterator: shard.iterator, Limit: options.batchSize }),
    );
    if (Records.length === 0) {
      shard.iterator = NextShardIterator;
      if (!NextShardIterator) shard.done = true;
      return false;
    }
    const records = Records.map((record) => toLambdaRecord(record, options.streamArn, firstRead(record)));
    stats.invocations += 1;
    stats.records += records.length;
    let failedAt: number | undefined;
    try {
      const result = await options.fn.invoke({ Records: records });
      failedAt = firstFailed(result, records);
    } catch (error) {
      report(error, `${options.fn.name} invocation`);
      failedAt = 0;
    }
    if (failedAt === undefined) {
      shard.iterator = NextShardIterator;
      if (!NextShardIterator) shard.done = true;
      shard.failures = 0;
      return true;
    }
    // Read on from the failed record, after a pause.
    stats.failedBatches += 1;
    shard.failures += 1;
    shard.notBefore = Date.now() + Math.min(maxRetryDelayMs, retryDelayMs * 2 ** (shard.failures - 1));
    shard.iterator = await iteratorAt(shard.id, records[failedAt]!.dynamodb!.SequenceNumber!);
    return true;
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      let busy = false;
      try {
        // New shards appear as DynamoDB rolls them over (every few hours): looked for now and then.
        const open = [...shards.values()].filter((shard) => !shard.done).length;
        if (open === 0 || Date.now() - describedAt > SHARD_REFRESH_MS) {
          describedAt = Date.now();
          await addShards();
        }
        for (const shard of shards.values()) {
          if (shard.done || stopping || Date.now() < shard.notBefore) continue;
          // A child shard is read once its parent is done (or gone), as Lambda keeps a key's order.
          const parent = shard.parent ? shards.get(shard.parent) : undefined;
          if (parent && !parent.done) continue;
          if (await readShard(shard)) busy = true;
        }
      } catch (error) {
        if (stopping) return;
        report(error, 'reading the table stream');
      }
      if (!busy) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pollIntervalMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  }

  const running = loop();
  return {
    stats: () => ({ ...stats }),
    async stop() {
      stopping = true;
      wake?.();
      await running;
      client.destroy();
    },
  };
}

/** The index of the first record Lambda would read again, or undefined when the batch succeeded. */
function firstFailed(result: unknown, records: DynamoDBRecord[]): number | undefined {
  const failures = (result as Partial<DynamoDBBatchResponse> | undefined)?.batchItemFailures;
  if (!Array.isArray(failures) || failures.length === 0) return undefined;
  const ids = new Set(failures.map((failure) => failure.itemIdentifier));
  const index = records.findIndex((record) => ids.has(record.dynamodb?.SequenceNumber ?? ''));
  // An identifier that names no record of the batch fails the whole batch, as in Lambda.
  return index === -1 ? 0 : index;
}

/** The SDK's record → the one Lambda delivers (its creation time in epoch seconds). */
function toLambdaRecord(record: StreamRecord, streamArn: string, createdSeconds: number): DynamoDBRecord {
  const d = record.dynamodb ?? {};
  return {
    eventID: record.eventID ?? '',
    eventName: record.eventName as DynamoDBRecord['eventName'],
    eventVersion: record.eventVersion ?? '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: record.awsRegion ?? LOCAL_AWS.region,
    eventSourceARN: streamArn,
    dynamodb: {
      ApproximateCreationDateTime: createdSeconds,
      Keys: d.Keys as never,
      ...(d.NewImage ? { NewImage: wireImage(d.NewImage) } : {}),
      ...(d.OldImage ? { OldImage: wireImage(d.OldImage) } : {}),
      SequenceNumber: d.SequenceNumber ?? '',
      SizeBytes: d.SizeBytes ?? 0,
      StreamViewType: d.StreamViewType as NonNullable<DynamoDBRecord['dynamodb']>['StreamViewType'],
    },
  };
}

type WireValue = Record<string, unknown>;

/**
 * An image as Lambda's JSON carries it. Read through the SDK's streams client, an empty map comes
 * back as `{}` with its type lost (a non-empty one keeps `M`); on the wire, and so in Lambda's event,
 * it is `{"M":{}}`. No other attribute type can be an empty object.
 */
function wireImage(image: Record<string, unknown>): never {
  const fix = (value: unknown): unknown => {
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as WireValue);
    if (entries.length === 0) return { M: {} };
    const [[type, inner]] = entries as [[string, unknown]];
    if (type === 'M') return { M: fixMap(inner as WireValue) };
    if (type === 'L') return { L: (inner as unknown[]).map(fix) };
    return value;
  };
  const fixMap = (map: WireValue): WireValue =>
    Object.fromEntries(Object.entries(map).map(([name, value]) => [name, fix(value)]));
  return fixMap(image) as never;
}
