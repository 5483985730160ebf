// (bench) Where a refill's time goes. For each final status callback the double sent, the probe's
// records are followed along the path the design takes:
//
//   double sends the final callback ─▶ webhook HTTP server ─▶ handler starts ─▶ release
//   TransactWriteItems (the hint's Query alongside; a GetItem(run) first only on the long way)
//   ─▶ SendMessage(dispatch run) ─▶ a waiting ReceiveMessage returns it ─▶ dispatcher handler starts
//   ─▶ acquire TransactWriteItems (a GetItem(run) and a Query first only on the long way)
//   ─▶ calls.create reaches the double
//
// Every segment is the difference of two timestamps on one clock, so the segments of one refill add
// up exactly to its total. "In process" is the time between requests inside a handler: JavaScript,
// logging, JSON and SDK marshalling, and waiting for a busy event loop.

import type { SimCall } from '../twilio-simulator/simulator.ts';
import type { Invocation, Probe, SdkCall } from './probe.ts';
import { round, type Summary, summarize } from './stats.ts';

/**
 * Whether a webhook's request is the release of the job's slot: a transaction with the job as its
 * second item (the counter first), or the one write of the job that carries its slot (CarriedSlot).
 */
export function isReleaseOf(call: SdkCall, run: string, job: string): boolean {
  const key = `RUN#${run}|JOB#${job}`;
  return (
    call.ok === true &&
    ((call.op === 'TransactWriteItems' && call.keys?.[1] === key) ||
      (call.op === 'UpdateItem' && call.keys?.[0] === key))
  );
}

export const SEGMENTS = [
  ['callbackDelivery', 'final callback: double → webhook HTTP server'],
  ['webhookStart', 'webhook: request → handler (Function URL event, runtime, middy)'],
  ['webhookGetRun', 'webhook: GetItem run (the long way only)'],
  ['webhookQuery', 'webhook: Query next queued jobs (the hint)'],
  ['releaseTxn', 'webhook: release (UpdateItem of the job carrying its slot, or TransactWriteItems)'],
  ['sqsSend', 'webhook: SQS SendMessage'],
  ['webhookInProcess', 'webhook: in process between requests'],
  ['queueWake', 'SQS: sent → waiting ReceiveMessage returns it'],
  ['dispatcherStart', 'dispatcher: received → handler (event source, runtime, middy, batch)'],
  ['dispatcherGetRun', 'dispatcher: GetItem run (the long way only)'],
  ['dispatcherQuery', 'dispatcher: Query queued index (the long way only)'],
  ['acquireTxn', 'dispatcher: acquire TransactWriteItems'],
  ['dispatcherOtherDynamo', 'dispatcher: other DynamoDB requests before the acquire'],
  ['dispatcherInProcess', 'dispatcher: in process between requests'],
  ['createClient', 'create: acquire done → request leaves the Twilio client'],
  ['create', 'create: request → received by the double'],
] as const;
export type Segment = (typeof SEGMENTS)[number][0];

export interface RefillPath {
  /** Refills followed end to end along their own dispatch message. */
  followed: number;
  /** Final callbacks whose next call came another way (a dispatcher already busy with the run took the slot). */
  otherPath: number;
  /** Final callbacks after which the run had no lead left to dial. */
  nothingLeft: number;
  /** Final callbacks that could not be followed (no release, the last lead, records missing). */
  notFollowed: number;
  /**
   * Refills whose dispatch shared its invocation with another dispatch of the same run (two releases
   * in one batch): their requests overlap, so they are left out of the segments; their totals are here.
   */
  shared: Summary;
  total: Summary;
  segments: Record<Segment, Summary & { share: number; label: string }>;
  /** Sums of the segments' means by kind: DynamoDB, SQS, Twilio double, in-process and hand-offs. */
  byKind: Record<string, { meanMs: number; share: number }>;
}

const FINAL = new Set(['completed', 'busy', 'no-answer', 'failed', 'canceled']);
const KIND: Record<Segment, string> = {
  callbackDelivery: 'hand-offs (HTTP in, SQS out, Lambda start)',
  webhookStart: 'hand-offs (HTTP in, SQS out, Lambda start)',
  webhookGetRun: 'DynamoDB round trips',
  webhookQuery: 'DynamoDB round trips',
  releaseTxn: 'DynamoDB round trips',
  sqsSend: 'SQS round trips',
  webhookInProcess: 'in-process (JS, logging, marshalling, event-loop wait)',
  queueWake: 'SQS round trips',
  dispatcherStart: 'hand-offs (HTTP in, SQS out, Lambda start)',
  dispatcherGetRun: 'DynamoDB round trips',
  dispatcherQuery: 'DynamoDB round trips',
  acquireTxn: 'DynamoDB round trips',
  dispatcherOtherDynamo: 'DynamoDB round trips',
  dispatcherInProcess: 'in-process (JS, logging, marshalling, event-loop wait)',
  createClient: 'calls.create (Twilio client + double)',
  create: 'calls.create (Twilio client + double)',
};

export function analyzeRefillPath(probe: Probe, simCalls: SimCall[], runIds: Set<string>): RefillPath {
  const byInvocation = new Map<number, SdkCall[]>();
  for (const call of probe.calls) {
    if (call.inv === undefined) continue;
    const list = byInvocation.get(call.inv) ?? [];
    list.push(call);
    byInvocation.set(call.inv, list);
  }
  const dispatchRunOf = new Map<string, string>();
  for (const call of probe.calls) {
    for (const message of call.sent ?? []) {
      if (message.id && message.type === 'dispatch' && message.runId)
        dispatchRunOf.set(message.id, message.runId);
    }
  }
  const received = new Map<string, number>();
  for (const call of probe.calls) {
    if (call.op !== 'ReceiveMessage' || !call.received) continue;
    for (const id of call.received) if (!received.has(id)) received.set(id, call.t1);
  }
  const dispatcherByMessage = new Map<string, Invocation>();
  for (const invocation of probe.invocations) {
    if (invocation.fn !== 'dispatcher') continue;
    for (const id of invocation.messageIds ?? [])
      if (!dispatcherByMessage.has(id)) dispatcherByMessage.set(id, invocation);
  }
  const simByAttempt = new Map<string, SimCall>();
  for (const call of simCalls) {
    if (call.run && runIds.has(call.run)) simByAttempt.set(`${call.run}/${call.job}/${call.attempt}`, call);
  }
  const usedAcquires = new Set<SdkCall>();
  const createsByInvocation = new Map<number, number[]>();
  for (const request of probe.createRequests) {
    if (request.inv === undefined) continue;
    const list = createsByInvocation.get(request.inv) ?? [];
    list.push(request.at);
    createsByInvocation.set(request.inv, list);
  }
  const usedCreates = new Set<string>();
  const sharedTotals: number[] = [];

  const totals: number[] = [];
  const samples = Object.fromEntries(SEGMENTS.map(([name]) => [name, [] as number[]])) as Record<
    Segment,
    number[]
  >;
  let otherPath = 0;
  let nothingLeft = 0;
  let notFollowed = 0;

  for (const webhook of probe.invocations) {
    if (webhook.fn !== 'webhook' || !webhook.run || !runIds.has(webhook.run)) continue;
    if (!webhook.callStatus || !FINAL.has(webhook.callStatus)) continue;
    const run = webhook.run;
    const ended = simByAttempt.get(`${run}/${webhook.job}/${webhook.attempt}`);
    const sentAt = ended?.finalCallbackAt;
    const calls = byInvocation.get(webhook.id) ?? [];
    const runKey = `RUN#${run}|RUN`;
    const release = calls.find((c) => isReleaseOf(c, run, webhook.job!));
    const send = calls.find(
      (c) => c.op === 'SendMessage' && c.sent?.[0]?.type === 'dispatch' && c.sent[0].runId === run,
    );
    const messageId = send?.sent?.[0]?.id;
    const receivedAt = messageId ? received.get(messageId) : undefined;
    const dispatcher = messageId ? dispatcherByMessage.get(messageId) : undefined;
    if (sentAt === undefined || !release || !send || receivedAt === undefined || !dispatcher) {
      notFollowed += 1;
      continue;
    }
    const dispatcherCalls = (byInvocation.get(dispatcher.id) ?? []).filter(
      (c) => c.t0 >= dispatcher.start && touchesRun(c, run),
    );
    const acquire = dispatcherCalls.find(
      (c) =>
        c.op === 'TransactWriteItems' &&
        c.ok &&
        // The run's own counter, or one of its slot counters (a run whose cap is split).
        (c.keys?.[0] === runKey || c.keys?.[0]?.startsWith(`RUN#${run}|SLOTS#`) === true) &&
        c.keys[1]?.startsWith(`RUN#${run}|JOB#`) &&
        !usedAcquires.has(c),
    );
    if (!acquire) {
      // The run had no lead left to dial (its last calls), or another dispatcher took the slot first.
      const emptyQuery = dispatcherCalls.some((c) => c.op === 'Query' && c.returned === 0);
      if (emptyQuery) nothingLeft += 1;
      else otherPath += 1;
      continue;
    }
    const job = acquire.keys![1]!.slice(`RUN#${run}|JOB#`.length);
    const created = simCalls.find((c) => c.run === run && c.job === job && c.createdAt >= acquire.t0);
    if (!created) {
      notFollowed += 1;
      continue;
    }
    usedAcquires.add(acquire);
    const sameRun = (dispatcher.messageIds ?? []).filter((id) => dispatchRunOf.get(id) === run).length;
    if (sameRun > 1) {
      sharedTotals.push(created.createdAt - sentAt);
      continue;
    }
    const clientAt = (createsByInvocation.get(dispatcher.id) ?? []).find(
      (at) => at >= acquire.t1 && !usedCreates.has(`${dispatcher.id}@${at}`),
    );
    if (clientAt !== undefined) usedCreates.add(`${dispatcher.id}@${clientAt}`);
    const requestAt = clientAt !== undefined && clientAt <= created.createdAt ? clientAt : acquire.t1;
    const arrival = webhook.token ? probe.arrivals.get(webhook.token)?.at : undefined;
    const webhookStart = webhook.start;
    const s1 = arrival ?? webhookStart;
    // Requests that overlap (e.g. a read and a query sent together) share their time: each instant
    // goes to the request that ends last, the one the path was waiting for.
    const webhookShare = criticalShares(calls.filter((c) => c.t1 <= send.t1 && c.t0 >= webhookStart));
    const before = dispatcherCalls.filter((c) => c.t1 <= acquire.t1);
    const dGet = before.filter((c) => c.op === 'GetItem' && c.keys?.[0] === runKey);
    const dQuery = before.filter((c) => c.op === 'Query');
    const dTxn = before.filter((c) => c.op === 'TransactWriteItems');
    const dOther = before.filter((c) => !dGet.includes(c) && !dQuery.includes(c) && !dTxn.includes(c));
    const webhookCalls = calls.filter((c) => c.t1 <= send.t1 && c.t0 >= webhookStart);
    const dispatcherShare = criticalShares(before);
    const sumIn = (shares: Map<SdkCall, number>, list: SdkCall[]) =>
      list.reduce((total, c) => total + (shares.get(c) ?? 0), 0);
    const sumOf = (list: SdkCall[]) => sumIn(dispatcherShare, list);
    const sumWebhook = (list: SdkCall[]) => sumIn(webhookShare, list);
    const webhookDynamo = sumWebhook(webhookCalls);

    const segment: Record<Segment, number> = {
      callbackDelivery: s1 - sentAt,
      webhookStart: webhookStart - s1,
      webhookGetRun: sumWebhook(webhookCalls.filter((c) => c.op === 'GetItem')),
      webhookQuery: sumWebhook(webhookCalls.filter((c) => c.op === 'Query')),
      releaseTxn: sumWebhook(webhookCalls.filter((c) => isReleaseOf(c, run, webhook.job!))),
      sqsSend: sumWebhook(webhookCalls.filter((c) => c.op === 'SendMessage')),
      webhookInProcess: 0,
      queueWake: receivedAt - send.t1,
      dispatcherStart: dispatcher.start - receivedAt,
      dispatcherGetRun: sumOf(dGet),
      dispatcherQuery: sumOf(dQuery),
      acquireTxn: sumOf(dTxn),
      dispatcherOtherDynamo: sumOf(dOther),
      dispatcherInProcess: 0,
      createClient: requestAt - acquire.t1,
      create: created.createdAt - requestAt,
    };
    segment.webhookInProcess = send.t1 - webhookStart - webhookDynamo;
    segment.dispatcherInProcess = acquire.t1 - dispatcher.start - sumOf(before);
    const total = created.createdAt - sentAt;
    totals.push(total);
    for (const [name] of SEGMENTS) samples[name].push(segment[name]);
  }

  const total = summarize(totals);
  const segments = Object.fromEntries(
    SEGMENTS.map(([name, label]) => {
      const summary = summarize(samples[name]);
      return [name, { ...summary, label, share: round(summary.mean / total.mean, 3) }];
    }),
  ) as RefillPath['segments'];
  const byKind: Record<string, { meanMs: number; share: number }> = {};
  for (const [name] of SEGMENTS) {
    const kind = KIND[name];
    const entry = byKind[kind] ?? { meanMs: 0, share: 0 };
    entry.meanMs = round(entry.meanMs + segments[name].mean);
    entry.share = round(entry.meanMs / total.mean, 3);
    byKind[kind] = entry;
  }
  return {
    followed: totals.length,
    otherPath,
    nothingLeft,
    notFollowed,
    shared: summarize(sharedTotals),
    total,
    segments,
    byKind,
  };
}

/**
 * How much of the time spent waiting on `calls` each one accounts for: every instant covered by one or
 * more requests goes to the one of them that ends last. The shares add up to the union of the calls.
 */
export function criticalShares(calls: SdkCall[]): Map<SdkCall, number> {
  const shares = new Map<SdkCall, number>();
  const ordered = [...calls].sort((a, b) => a.t1 - b.t1);
  ordered.forEach((call, i) => {
    // The parts of this call's interval during which a later-ending call was also running go to that one.
    let pieces: [number, number][] = [[call.t0, call.t1]];
    for (const later of ordered.slice(i + 1)) {
      pieces = pieces.flatMap(([from, to]): [number, number][] => {
        if (later.t1 <= from || later.t0 >= to) return [[from, to]];
        const kept: [number, number][] = [];
        if (later.t0 > from) kept.push([from, later.t0]);
        if (later.t1 < to) kept.push([later.t1, to]);
        return kept;
      });
    }
    shares.set(
      call,
      pieces.reduce((total, [from, to]) => total + (to - from), 0),
    );
  });
  return shares;
}

function touchesRun(call: SdkCall, run: string): boolean {
  if (call.keys?.some((key) => key.startsWith(`RUN#${run}|`))) return true;
  return call.op === 'Query' && call.queryKey === run;
}
