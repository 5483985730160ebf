// The fault-injection suite: several runs at once, end to end through the local stack, while the
// Twilio double duplicates, reorders and loses callbacks and answers creates with 429s and 500s, and
// the handlers crash between steps and meet DynamoDB throttles and transaction conflicts. Seeded:
// the same seed replays the same faults (timing on a shared machine still varies).
//
// The verdict comes from an observer outside dialgate: the double's own record of calls (how many
// were live at once per run, how often each number was called) and a read of the table at the end.

import { DynamoDBClient, GetItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { TABLE_SCHEMA } from '../../lambdas/definitions/table-schema.ts';
import { areaPrefix, usNumber } from '../bench/numbers.ts';
import { LOCAL_AWS } from '../local/emulators.ts';
import { startLocalStack } from '../local/stack.ts';
import {
  mulberry32,
  type SimulatorFaults,
  startTwilioSimulator,
  weightedOutcomes,
} from '../twilio-simulator/simulator.ts';

export interface HandlerFaults {
  crashBefore: number;
  crashAfter: number;
  dynamoThrottle: number;
  transactionConflict: number;
}

export interface ChaosOptions {
  seed: number;
  runs: number;
  leadsPerRun: number;
  /** Caps, cycled over the runs. */
  caps: number[];
  twilioFaults: SimulatorFaults;
  handlerFaults: HandlerFaults;
  timeoutMs: number;
  /** Progress lines; none when omitted. */
  log?: (line: string) => void;
}

export const DEFAULT_CHAOS: ChaosOptions = {
  seed: 1,
  runs: 5,
  leadsPerRun: 200,
  caps: [3, 2, 4, 3, 5],
  twilioFaults: {
    duplicateCallback: 0.3,
    reorderCallback: 0.2,
    dropCallback: 0.1,
    createThrottled: 0.1,
    createServerErrorAfterCreating: 0.025,
    createServerErrorWithoutCreating: 0.025,
  },
  // About 5 % of handler steps crash, before or after their side effect.
  handlerFaults: { crashBefore: 0.025, crashAfter: 0.025, dynamoThrottle: 0.02, transactionConflict: 0.05 },
  timeoutMs: 10 * 60_000,
};

export interface RunVerdict {
  runId: string;
  cap: number;
  leads: number;
  maxLive: number;
  status: string;
  final: number;
  active: number;
  holders: number;
  calledTwice: number;
  called: number;
}

export interface ChaosReport {
  seed: number;
  leads: number;
  durationMs: number;
  capViolations: number;
  leadsCalledTwice: number;
  leadsLost: number;
  runsCompleted: number;
  runsNotCompleted: number;
  countersNotZero: number;
  /** Messages parked after five failures. A "dispatch" there is harmless (the reconciler re-arms
   * its run; the DLQ alarm still tells ops); a lead chunk there would be leads not dialed. */
  deadLetters: number;
  deadLetteredLeadChunks: number;
  injected: Record<string, number>;
  runs: RunVerdict[];
  /** True when every invariant held. */
  ok: boolean;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const random = mulberry32(options.seed);
  const twilio = await startTwilioSimulator({
    random,
    queuedMs: 20,
    ringMs: 60,
    talkMs: 150,
    jitter: 0.5,
    faults: options.twilioFaults,
    behavior: weightedOutcomes({ completed: 80, busy: 8, 'no-answer': 8, failed: 4 }, random),
  });
  let handlerErrors = 0;
  const stack = await startLocalStack({
    port: 0,
    pollers: 6,
    retryVisibilitySeconds: 1,
    reconcileIntervalSeconds: 1,
    twilio: {
      baseUrl: twilio.url,
      accountSid: twilio.accountSid,
      authToken: twilio.authToken,
      fromNumber: '+15005550006',
    },
    functionEnv: {
      RING_TIMEOUT_SECONDS: '2',
      CALL_TIME_LIMIT_SECONDS: '3',
      RECONCILE_GRACE_SECONDS: '1',
      TWILIO_REQUEST_TIMEOUT_MS: '2000',
      MAX_CONCURRENCY: '20',
      POWERTOOLS_LOG_LEVEL: 'CRITICAL',
      POWERTOOLS_METRICS_DISABLED: 'true',
      DIALGATE_FAULTS: JSON.stringify({ seed: options.seed, ...options.handlerFaults }),
    },
    // Injected crashes surface here by design; they are counted, not printed.
    onError: () => {
      handlerErrors += 1;
    },
  });
  const started = Date.now();
  try {
    const runs = Array.from({ length: options.runs }, (_, r) => ({
      cap: options.caps[r % options.caps.length]!,
      leads: Array.from({ length: options.leadsPerRun }, (_, i) => ({
        phone: usNumber(areaPrefix(r), i),
        name: `run ${r} lead ${i}`,
      })),
    }));
    const runIds = await Promise.all(
      runs.map((run, r) =>
        createRunWithRetry(
          stack.apiUrl,
          { leads: run.leads, concurrency: run.cap },
          `chaos-${options.seed}-${r}`,
        ),
      ),
    );
    log(
      `seed ${options.seed}: ${runs.length} runs, ${runs.length * options.leadsPerRun} leads, caps ${runs.map((r) => r.cap).join('/')}`,
    );

    const deadline = started + options.timeoutMs;
    let views: { status: string; completed: number; failed: number; canceled: number }[] = [];
    for (;;) {
      views = await Promise.all(runIds.map((id) => getJson(`${stack.apiUrl}/runs/${id}`)));
      const final = views.reduce((sum, v) => sum + v.completed + v.failed + v.canceled, 0);
      log(
        `  ${((Date.now() - started) / 1000).toFixed(0)}s  final ${final}/${runs.length * options.leadsPerRun}  live ${twilio.stats().live}`,
      );
      if (views.every((v) => v.status === 'completed') || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
    const durationMs = Date.now() - started;

    // The auditor: the double's record of calls, and the table as it is now.
    const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: stack.endpoints.dynamodb });
    const stats = twilio.stats();
    const calls = twilio.calls();
    const verdicts: RunVerdict[] = [];
    for (const [r, runId] of runIds.entries()) {
      const view = views[r]!;
      const perNumber = new Map<string, number>();
      for (const call of calls)
        if (call.run === runId) perNumber.set(call.to, (perNumber.get(call.to) ?? 0) + 1);
      const { Item } = await dynamo.send(
        new GetItemCommand({
          TableName: stack.tableName,
          Key: { pk: { S: `RUN#${runId}` }, sk: { S: 'RUN' } },
          ConsistentRead: true,
        }),
      );
      verdicts.push({
        runId,
        cap: runs[r]!.cap,
        leads: options.leadsPerRun,
        maxLive: stats.runs[runId]?.maxLive ?? 0,
        status: view.status,
        final: view.completed + view.failed + view.canceled,
        active: Number(Item?.active?.N ?? Number.NaN),
        holders: await liveJobs(dynamo, stack.tableName, runId),
        calledTwice: [...perNumber.values()].filter((n) => n > 1).length,
        called: perNumber.size,
      });
    }
    dynamo.destroy();
    const deadLetters = await readDeadLetters(stack.endpoints.sqs, stack.dlqUrl);

    const report: ChaosReport = {
      seed: options.seed,
      leads: runs.length * options.leadsPerRun,
      durationMs,
      capViolations: verdicts.filter((v) => v.maxLive > v.cap).length,
      leadsCalledTwice: verdicts.reduce((sum, v) => sum + v.calledTwice, 0),
      leadsLost: verdicts.reduce((sum, v) => sum + (v.leads - v.final), 0),
      runsCompleted: verdicts.filter((v) => v.status === 'completed').length,
      runsNotCompleted: verdicts.filter((v) => v.status !== 'completed').length,
      countersNotZero: verdicts.filter((v) => v.active !== 0 || v.holders !== 0).length,
      deadLetters: deadLetters.ingest + deadLetters.dispatch,
      deadLetteredLeadChunks: deadLetters.ingest,
      injected: {
        duplicatedCallbacks: stats.callbacks.duplicated,
        reorderedCallbacks: stats.callbacks.reordered,
        droppedCallbacks: stats.callbacks.dropped,
        throttledCreates: stats.throttled,
        serverErrorsAfterCreating: stats.serverErrors.afterCreating,
        serverErrorsWithoutCreating: stats.serverErrors.withoutCreating,
        handlerErrors,
      },
      runs: verdicts,
      ok: false,
    };
    report.ok =
      report.capViolations === 0 &&
      report.leadsCalledTwice === 0 &&
      report.leadsLost === 0 &&
      report.runsNotCompleted === 0 &&
      report.countersNotZero === 0 &&
      report.deadLetteredLeadChunks === 0;
    return report;
  } finally {
    await stack.stop();
    await twilio.stop();
  }
}

/** Reads (without deleting) what the dead-letter queue holds, by message type. */
async function readDeadLetters(
  endpoint: string,
  dlqUrl: string,
): Promise<{ ingest: number; dispatch: number }> {
  const sqs = new SQSClient({ ...LOCAL_AWS, endpoint, useQueueUrlAsEndpoint: false });
  const counts = { ingest: 0, dispatch: 0 };
  const seen = new Set<string>();
  try {
    for (;;) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }),
      );
      const fresh = Messages.filter((m) => !seen.has(m.MessageId!));
      if (fresh.length === 0) return counts;
      for (const message of fresh) {
        seen.add(message.MessageId!);
        const type = (JSON.parse(message.Body ?? '{}') as { type?: string }).type;
        if (type === 'ingest') counts.ingest += 1;
        else counts.dispatch += 1;
      }
    }
  } finally {
    sqs.destroy();
  }
}

async function getJson(url: string) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as { status: string; completed: number; failed: number; canceled: number };
}

/** A client that retries POST /runs on 5xx with the same Idempotency-Key, as a client should. */
async function createRunWithRetry(apiUrl: string, body: unknown, key: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(`${apiUrl}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(body),
    });
    if (res.status === 202) return ((await res.json()) as { run_id: string }).run_id;
    if (res.status < 500 || attempt >= 5)
      throw new Error(`POST /runs: HTTP ${res.status} ${await res.text()}`);
  }
}

/** How many of a run's jobs hold a slot: the live index, read from outside the code under test. */
async function liveJobs(dynamo: DynamoDBClient, tableName: string, runId: string): Promise<number> {
  const { Count } = await dynamo.send(
    new QueryCommand({
      TableName: tableName,
      IndexName: TABLE_SCHEMA.liveIndex.name,
      KeyConditionExpression: '#live = :run',
      ExpressionAttributeNames: { '#live': TABLE_SCHEMA.liveIndex.partitionKey },
      ExpressionAttributeValues: { ':run': { S: runId } },
      Select: 'COUNT',
    }),
  );
  return Count ?? 0;
}
