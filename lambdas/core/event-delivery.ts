// (core) Getting events out: publishing what a batch of table changes yields to every sink (the
// EventBridge bus, the webhook delivery queue), and delivering one queued event to the webhook with
// retries on a schedule. At least once, never silently dropped: a change whose events a sink did not
// take is reported failed and read again; a delivery the endpoint did not accept comes back later and,
// after the last try, is parked in a dead-letter queue.

import type { DialgateEvent } from './events.ts';
import type { Log } from './ports.ts';

/** Where events go. Returns the ids of the events it could not take (none: all taken). */
export interface EventSink {
  readonly name: string;
  publish(events: readonly DialgateEvent[]): Promise<ReadonlySet<string>>;
}

/** The events of one table change, named by the change (a stream record's sequence number). */
export interface ChangeEvents {
  key: string;
  events: DialgateEvent[];
}

/**
 * Publishes every change's events to every sink; answers the key of the first change (in batch order)
 * that some sink did not take, or undefined when all were taken. Whatever follows that change is
 * published again with it (a stream is read on from a failed record), so consumers see duplicates
 * under the same ids, never a gap.
 */
export async function publishChanges(
  deps: { sinks: readonly EventSink[]; log: Log },
  changes: readonly ChangeEvents[],
): Promise<string | undefined> {
  const events = changes.flatMap((change) => change.events);
  if (events.length === 0) return undefined;
  const failed = new Set<string>();
  await Promise.all(
    deps.sinks.map(async (sink) => {
      try {
        for (const id of await sink.publish(events)) failed.add(id);
      } catch (error) {
        deps.log.warn('publishing events failed', { sink: sink.name, events: events.length, error });
        for (const event of events) failed.add(event.id);
      }
    }),
  );
  if (failed.size === 0) return undefined;
  const first = changes.find((change) => change.events.some((event) => failed.has(event.id)));
  deps.log.warn('events not published; the change is read again', { failed: failed.size });
  return first?.key;
}

/** A queued webhook delivery: the event's id (`webhook-id`) and the exact body to sign and send. */
export interface WebhookDelivery {
  id: string;
  body: string;
}

export type DeliveryResult =
  | { kind: 'delivered'; status: number }
  /** Answered, but not with a 2xx. */
  | { kind: 'refused'; status: number }
  /** No answer: a connection error or a timeout. */
  | { kind: 'unreachable'; reason: string };

/** Signs and sends one delivery to the endpoint. */
export interface WebhookSender {
  send(delivery: WebhookDelivery): Promise<DeliveryResult>;
}

export type DeliveryOutcome =
  | { kind: 'delivered' }
  /** Try again after `retryInSeconds`. */
  | { kind: 'retry'; retryInSeconds: number }
  /** That was the last try: the queue parks it in its dead-letter queue. */
  | { kind: 'exhausted' };

/**
 * Sends one delivery; `tryNumber` counts from 1 (SQS's ApproximateReceiveCount). A failure is retried
 * after the schedule's wait for that try, until the schedule is used up.
 */
export async function deliverEvent(
  deps: { sender: WebhookSender; log: Log; retryScheduleSeconds: readonly number[] },
  delivery: WebhookDelivery,
  tryNumber: number,
): Promise<DeliveryOutcome> {
  const result = await deps.sender.send(delivery);
  if (result.kind === 'delivered') {
    deps.log.info('event delivered', { id: delivery.id, status: result.status, try: tryNumber });
    return { kind: 'delivered' };
  }
  const wait = deps.retryScheduleSeconds[tryNumber - 1];
  const context = {
    id: delivery.id,
    try: tryNumber,
    ...(result.kind === 'refused' ? { status: result.status } : { reason: result.reason }),
  };
  if (wait === undefined) {
    deps.log.error('event delivery given up; parked in the dead-letter queue', context);
    return { kind: 'exhausted' };
  }
  deps.log.warn('event delivery failed; retried later', { ...context, retryInSeconds: wait });
  return { kind: 'retry', retryInSeconds: wait };
}
