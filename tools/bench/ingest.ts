// (bench) Ingest: how long POST /runs takes to answer a 10,000-lead run, and how long until a
// 100,000-lead run is all queued (every chunk turned into jobs: GET shows pending_ingest 0). The runs
// have cap 1 and the double's calls last ten minutes, so that dialing costs next to nothing meanwhile.

import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoRunStore } from '../../lambdas/adapters/dynamo-run-store.ts';
import { jobIdFor } from '../../lambdas/core/model.ts';
import { keys } from '../../lambdas/definitions/table-schema.ts';
import { LOCAL_AWS } from '../local/emulators.ts';
import { createRun, leadsFor, startBenchStack, waitForRun } from './harness.ts';
import { watchMachine } from './machine.ts';
import type { Probe, SdkCall } from './probe.ts';
import { atMost, figure, type SectionResult, type StackSectionOptions } from './result.ts';
import { round, type Summary, summarize } from './stats.ts';
import { countUsage, itemSize } from './usage.ts';

export type IngestOptions = Omit<StackSectionOptions, 'seed'>;

export async function runIngest(options: IngestOptions): Promise<SectionResult> {
  const big = options.quick ? 20_000 : 100_000;
  const startedAt = new Date().toISOString();
  const machine = watchMachine(options.cpus);
  const t0 = performance.now();
  const bench = await startBenchStack({
    simulator: { queuedMs: 0, ringMs: 1_000, talkMs: 600_000 },
    pollers: options.pollers,
    logLevel: options.logLevel,
    functionEnv: { MAX_LEADS_PER_RUN: String(Math.max(100_000, big)) },
  });
  const { stack, probe } = bench;
  try {
    // A first, small run: the API's first invocation builds its clients and opens connections, as a
    // cold Lambda would; the figures below are for a warm function.
    const warm = await createRun(stack.apiUrl, leadsFor(10, 2), 1);
    await waitForRun(stack.apiUrl, warm.runId, (v) => v.pending_ingest === 0, 60_000, 100);

    // What ingesting one chunk costs DynamoDB Local when it runs alone (no other traffic).
    const chunkFloor = await chunkIngestFloor(
      stack.endpoints.dynamodb,
      stack.tableName,
      probe,
      options.quick ? 5 : 15,
    );

    // 10,000 leads. The answer is timed with the dispatcher held at its start (as if its Lambda had not
    // scaled out yet): here the API, the dispatcher and the SQS emulator share one process and one
    // DynamoDB Local, which on AWS they do not; then the dispatcher goes and the leads are queued.
    const release = probe.hold('dispatcher');
    let small: Awaited<ReturnType<typeof createRun>>;
    try {
      small = await createRun(stack.apiUrl, leadsFor(10_000, 0), 1);
    } finally {
      release();
    }
    const smallQueued = await waitForRun(
      stack.apiUrl,
      small.runId,
      (v) => v.pending_ingest === 0,
      5 * 60_000,
      100,
    );
    const smallPost = apiBreakdown(probe.invocations, probe.calls, 'POST', small.sentAt);

    // 100,000 leads (20,000 with --quick).
    const large = await createRun(stack.apiUrl, leadsFor(big, 1), 1);
    const largeQueued = await waitForRun(
      stack.apiUrl,
      large.runId,
      (v) => v.pending_ingest === 0,
      10 * 60_000,
      200,
    );
    const allQueuedMs = round(largeQueued.at - large.sentAt);
    const inLarge = (c: SdkCall) =>
      c.owner === 'dispatcher' && c.t0 >= large.sentAt && c.t0 <= largeQueued.at;
    // Each chunk: a claim, its jobs in BatchWriteItem of ≤ 25 (conditional PutItem only after a failed
    // batch or a takeover), and the transaction that marks it done and adds the counters.
    const ingestTxns = probe.calls.filter(
      (c) => inLarge(c) && c.op === 'TransactWriteItems' && c.keys?.[0]?.includes('|CHUNK#'),
    );
    const batchWrites = probe.calls.filter((c) => inLarge(c) && c.op === 'BatchWriteItem');
    const jobPuts = probe.calls.filter(
      (c) => inLarge(c) && c.op === 'PutItem' && c.keys?.[0]?.includes('|JOB#'),
    );
    // Write units of the large run's ingest: its chunks' markers, job writes and finishing
    // transactions. Markers and jobs are under 1 KB; the run item's size is read, as a transaction's
    // units rest on it (no scan of the whole table needed).
    const runKey = `${keys.run(large.runId).pk}|${keys.run(large.runId).sk}`;
    const runSize = await itemSizeOf(stack.endpoints.dynamodb, stack.tableName, probe, keys.run(large.runId));
    const usage = countUsage(probe, {
      window: { from: large.sentAt, to: largeQueued.at },
      itemSizes: new Map(runSize === undefined ? [] : [[runKey, runSize]]),
    });
    const ingestWriteUnitsBy = Object.fromEntries(
      Object.entries(usage.dynamo.writeUnitsBy).filter(([label]) =>
        /^dispatcher: (PutItem CHUNK|UpdateItem CHUNK|BatchWriteItem job|PutItem job|ingest chunk)/.test(
          label,
        ),
      ),
    );
    const ingestWriteUnits = round(
      Object.values(ingestWriteUnitsBy).reduce((total, units) => total + units, 0),
      2,
    );
    const dispatches = probe.invocations.filter((i) => i.fn === 'dispatcher' && i.start >= large.sentAt);

    return {
      section: 'ingest',
      completed: true,
      startedAt,
      durationMs: round(performance.now() - t0),
      quick: options.quick,
      machine: machine.end(),
      checks: [
        figure('POST /runs answer, 10 leads, first request', round(warm.answerMs), 'ms'),
        atMost('POST /runs answer, 10,000 leads', round(small.answerMs), 'ms', 1_000, 'ingest held back'),
        figure('10,000 leads all queued', round(smallQueued.at - small.sentAt), 'ms'),
        figure(
          `POST /runs answer, ${big.toLocaleString('en-US')} leads`,
          round(large.answerMs),
          'ms',
          'while its first chunks are ingested in the same process',
        ),
        options.quick
          ? figure(`${big.toLocaleString('en-US')} leads all queued (--quick)`, allQueuedMs, 'ms')
          : atMost('100,000 leads all queued', allQueuedMs, 'ms', 60_000),
        figure('ingest rate', round(big / (allQueuedMs / 1000)), 'leads/s'),
        figure(
          'DynamoDB write units per lead, ingest',
          round(ingestWriteUnits / big, 3),
          'WRU',
          "job put 1 + queued-index entry 1, plus each chunk's claim and finishing transaction",
        ),
        figure('one 90-lead chunk ingested alone on the emulator', chunkFloor.p50, 'ms'),
        figure('ingest rate, one chunk at a time', round((90 * 1000) / chunkFloor.p50), 'leads/s'),
      ],
      notes: [
        'Leads go on SQS in chunks of 90 (SendMessageBatch of 10, 8 batches in flight). The dispatcher ' +
          'claims each chunk (a conditional put of its marker), writes its jobs with BatchWriteItem (4 of ' +
          '≤ 25, sent once, within 10 s of the claim) and adds the counters in one 2-item transaction.',
        `Dispatcher pollers ${options.pollers} (its concurrency here; Lambda would scale out further), ` +
          `batch size 10; cap 1 and 10-minute calls keep dialing out of the way.`,
      ],
      details: {
        chunkFloor,
        small: { runId: small.runId, answerMs: round(small.answerMs), post: smallPost },
        large: {
          runId: large.runId,
          leads: big,
          answerMs: round(large.answerMs),
          allQueuedMs,
          post: apiBreakdown(probe.invocations, probe.calls, 'POST', large.sentAt),
          chunkFinishTransactions: {
            count: ingestTxns.length,
            durationMs: summarize(ingestTxns.map((c) => c.t1 - c.t0)),
          },
          batchWrites: {
            count: batchWrites.length,
            failed: batchWrites.filter((c) => !c.ok).length,
            durationMs: summarize(batchWrites.map((c) => c.t1 - c.t0)),
          },
          conditionalJobPuts: jobPuts.length,
          ingestWriteUnits,
          ingestWriteUnitsBy,
          runItemBytes: runSize,
          writeUnitsWhileIngesting: usage.dynamo.writeUnitsBy,
          dispatcherInvocations: dispatches.length,
          dispatcherDurationMs: summarize(dispatches.map((i) => i.durationMs ?? 0)),
        },
        eventSource: stack.eventSource(),
      },
    };
  } finally {
    await bench.stop();
  }
}

/** The API invocation that answered the POST sent at `after`: its duration and requests by kind. */
function apiBreakdown(
  invocations: { id: number; fn: string; method?: string; start: number; durationMs?: number }[],
  calls: SdkCall[],
  method: string,
  after: number,
): Record<string, unknown> | undefined {
  const inv = invocations.find((i) => i.fn === 'api' && i.method === method && i.start >= after);
  if (!inv) return undefined;
  const own = calls.filter((c) => c.inv === inv.id);
  const byOp: Record<string, { count: number; totalMs: number }> = {};
  for (const call of own) {
    const entry = byOp[call.op] ?? { count: 0, totalMs: 0 };
    entry.count += 1;
    entry.totalMs = round(entry.totalMs + (call.t1 - call.t0));
    byOp[call.op] = entry;
  }
  const first = Math.min(...own.map((c) => c.t0));
  const last = Math.max(...own.map((c) => c.t1));
  return {
    handlerMs: round(inv.durationMs ?? Number.NaN),
    beforeFirstRequestMs: own.length ? round(first - inv.start) : undefined,
    requestsSpanMs: own.length ? round(last - first) : undefined,
    byOp,
  };
}

/** An item's size as DynamoDB bills it, read by the bench (not the app's cost). */
async function itemSizeOf(
  endpoint: string,
  table: string,
  probe: Probe,
  key: { pk: string; sk: string },
): Promise<number | undefined> {
  return probe.asBench(async () => {
    const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint });
    try {
      const { Item } = await client.send(
        new GetItemCommand({ TableName: table, Key: { pk: { S: key.pk }, sk: { S: key.sk } } }),
      );
      return Item ? itemSize(Item) : undefined;
    } finally {
      client.destroy();
    }
  });
}

/**
 * Times `rounds` ingests of a 90-lead chunk through the real adapter (claim, BatchWriteItem, finishing
 * transaction), one at a time. Its runs are bare run items outside the open-runs and runs indexes, so
 * that neither the reconciler nor GET /runs ever sees them.
 */
async function chunkIngestFloor(
  endpoint: string,
  table: string,
  probe: Probe,
  rounds: number,
): Promise<Summary> {
  return probe.asBench(async () => {
    const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint });
    const doc = DynamoDBDocumentClient.from(client);
    const store = new DynamoRunStore(client, { tableName: table });
    const times: number[] = [];
    try {
      for (let round = 0; round < rounds; round++) {
        const runId = `bench-ingest-${round}-${Date.now()}`;
        await doc.send(
          new PutCommand({
            TableName: table,
            Item: {
              ...keys.run(runId),
              entity: 'run',
              runId,
              control: 'running',
              concurrency: 1,
              totalLeads: 90,
              ingestedLeads: 0,
              queued: 0,
              active: 0,
            },
          }),
        );
        const jobs = Array.from({ length: 90 }, (_, i) => ({
          jobId: jobIdFor(i),
          phone: `+1415${String(2_000_000 + i)}`,
          attributes: {},
        }));
        const at = new Date().toISOString();
        const t0 = performance.now();
        await store.ingestChunk(runId, 0, jobs, at);
        times.push(performance.now() - t0);
      }
    } finally {
      client.destroy();
    }
    return summarize(times);
  });
}
