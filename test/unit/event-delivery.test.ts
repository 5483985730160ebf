// Publishing a batch of changes' events to every sink, and one delivery's fate on the retry schedule:
// which change is read again when a sink refuses an event, and when a failed try is retried or given up.

import { describe, expect, it } from 'vitest';
import {
  type ChangeEvents,
  type DeliveryResult,
  deliverEvent,
  type EventSink,
  publishChanges,
} from '../../lambdas/core/event-delivery.ts';
import type { DialgateEvent } from '../../lambdas/core/events.ts';
import { EVENTS_DELIVERY } from '../../lambdas/definitions/resources.ts';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

const event = (id: string): DialgateEvent =>
  ({ id, type: 'run.status_changed', timestamp: '2026-11-30T04:00:00.000Z', data: {} }) as DialgateEvent;

function sink(name: string, refuse: (id: string) => boolean | 'throw'): EventSink & { got: string[] } {
  const got: string[] = [];
  return {
    name,
    got,
    async publish(events) {
      if (events.some((e) => refuse(e.id) === 'throw')) throw new Error('bus down');
      got.push(...events.map((e) => e.id));
      return new Set(events.filter((e) => refuse(e.id) === true).map((e) => e.id));
    },
  };
}

const changes: ChangeEvents[] = [
  { key: 'seq-1', events: [event('a')] },
  { key: 'seq-2', events: [] },
  { key: 'seq-3', events: [event('b'), event('c')] },
  { key: 'seq-4', events: [event('d')] },
];

describe('publishChanges', () => {
  it('every event to every sink; nothing to read again when all were taken', async () => {
    const bus = sink('bus', () => false);
    const queue = sink('queue', () => false);
    expect(await publishChanges({ sinks: [bus, queue], log: silent }, changes)).toBeUndefined();
    expect(bus.got).toEqual(['a', 'b', 'c', 'd']);
    expect(queue.got).toEqual(bus.got);
  });

  it('an event one sink refused: the stream is read again from the change it came from', async () => {
    const bus = sink('bus', () => false);
    const queue = sink('queue', (id) => id === 'c' || id === 'd');
    expect(await publishChanges({ sinks: [bus, queue], log: silent }, changes)).toBe('seq-3');
  });

  it('a sink that fails outright: from the first change with events', async () => {
    const bus = sink('bus', () => 'throw');
    expect(await publishChanges({ sinks: [bus], log: silent }, changes)).toBe('seq-1');
  });
});

describe('deliverEvent on the retry schedule', () => {
  const schedule = EVENTS_DELIVERY.retryScheduleSeconds;
  const deliver = (result: DeliveryResult, tryNumber: number) =>
    deliverEvent(
      { sender: { send: async () => result }, log: silent, retryScheduleSeconds: schedule },
      { id: 'x', body: '{}' },
      tryNumber,
    );

  it('at least a day of tries, each wait within SQS’s 12-hour visibility limit', () => {
    expect(schedule.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(86_400);
    expect(Math.max(...schedule)).toBeLessThanOrEqual(43_200);
    expect(EVENTS_DELIVERY.maxReceiveCount).toBe(schedule.length + 1);
  });

  it('a failed try waits its turn of the schedule; the last one gives up; a 2xx is done', async () => {
    const refused: DeliveryResult = { kind: 'refused', status: 503 };
    for (let tryNumber = 1; tryNumber <= schedule.length; tryNumber++) {
      expect(await deliver(refused, tryNumber)).toEqual({
        kind: 'retry',
        retryInSeconds: schedule[tryNumber - 1],
      });
    }
    expect(await deliver({ kind: 'unreachable', reason: 'timeout' }, 1)).toEqual({
      kind: 'retry',
      retryInSeconds: 5,
    });
    expect(await deliver(refused, schedule.length + 1)).toEqual({ kind: 'exhausted' });
    expect(await deliver({ kind: 'delivered', status: 200 }, 3)).toEqual({ kind: 'delivered' });
  });
});
