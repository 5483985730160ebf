// What a test reads from the simulator besides its stats: refill latencies from the timeline, and
// waits on conditions that are checked on every change.

import type { SimState, Waiter } from './state.ts';
import type { SimEvent, TwilioSimulator } from './types.ts';

/** Per final callback sent in the run (all runs when omitted), ms until the next create in that run. */
export function refillLatencies(timeline: readonly SimEvent[], run?: string): number[] {
  const matches = (event: SimEvent) => run === undefined || event.run === run;
  const latencies: number[] = [];
  const groups = new Map<string, SimEvent[]>();
  for (const event of timeline) {
    if (!matches(event) || event.kind === 'final') continue;
    const key = event.run ?? '';
    const group = groups.get(key) ?? [];
    group.push(event);
    groups.set(key, group);
  }
  for (const events of groups.values()) {
    // Pair each final callback with the first create after it not already paired with another.
    const creates = events.filter((event) => event.kind === 'create');
    let next = 0;
    for (const sent of events
      .filter((event) => event.kind === 'final-callback')
      .sort((a, b) => a.at - b.at)) {
      while (next < creates.length && creates[next]!.at < sent.at) next++;
      if (next >= creates.length) break;
      latencies.push(creates[next]!.at - sent.at);
      next++;
    }
  }
  return latencies;
}

export function waitFor(
  sim: SimState,
  predicate: (sim: TwilioSimulator) => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  if (predicate(sim.facade)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const waiter: Waiter = {
      predicate,
      resolve,
      reject,
      timer: setTimeout(() => {
        sim.waiters.delete(waiter);
        const { created, live, final, callbacks } = sim.stats;
        reject(
          new Error(
            `Twilio simulator: timed out after ${timeoutMs} ms waiting for ${what} ` +
              `(created ${created}, live ${live}, final ${final}, callbacks in flight ${callbacks.inFlight})`,
          ),
        );
      }, timeoutMs),
    };
    sim.waiters.add(waiter);
  });
}
