/**
 * An in-process Twilio double: enough of the Voice REST API for dialgate, status callbacks signed
 * exactly like Twilio's, seeded fault injection, and an observer that tests treat as ground truth.
 * The observer sees only what Twilio would see (creates, state changes, callbacks), never dialgate's
 * database, so "never more than N live calls per run" is checked from the outside.
 *
 * Start it:
 *   const sim = await startTwilioSimulator({ ringMs: 30, talkMs: 50, random: mulberry32(42) });
 *   // point the adapter at sim.url with sim.accountSid / sim.authToken
 *   await sim.waitForFinal(10);
 *   expect(sim.stats().runs.R?.maxLive).toBeLessThanOrEqual(3);
 *   await sim.stop();
 * Standalone: `npx tsx bin/twilio-simulator.ts` (PORT, prints URL, SID and token).
 * Also exported: `mulberry32(seed)` (seeded PRNG), `weightedOutcomes(weights, random)` (a behavior),
 * `twilioSignature(token, url, params)` (to forge or check signatures in other tests).
 *
 * REST (HTTP Basic accountSid:authToken, form-encoded in, JSON out, Twilio's error shape
 * `{code, message, more_info, status}`):
 *   POST /2010-04-01/Accounts/{Sid}/Calls.json        create (To, From, Url|Twiml, StatusCallback,
 *        StatusCallbackMethod, StatusCallbackEvent (repeated), Timeout, TimeLimit) → 201 `queued`
 *   GET  /2010-04-01/Accounts/{Sid}/Calls.json        list: To, From, Status, StartTime, StartTime>,
 *        StartTime<, EndTime…, PageSize, Page; newest first, Twilio's paging fields
 *   GET  /2010-04-01/Accounts/{Sid}/Calls/{CallSid}.json   fetch
 *   POST /2010-04-01/Accounts/{Sid}/Calls/{CallSid}.json   Status=canceled (queued/ringing only, else
 *        21220) or Status=completed (hangs up any live call; an unanswered one ends `canceled`), each
 *        kept in the call's `statusUpdates` (refused ones too); or Twiml / Url: new content for a call
 *        in progress (21220 otherwise), kept in its `redirects`
 *
 * Answering-machine detection: MachineDetection (Enable | DetectMessageEnd), AsyncAmd (true | false),
 * AsyncAmdStatusCallback (a URL), AsyncAmdStatusCallbackMethod (POST | GET), MachineDetectionTimeout
 * (3–59 s) and the speech/silence tunings within Twilio's ranges; anything else is 400 / 20001. Who
 * answers an answered call: the script's `answeredBy`, else the To number's last digits (7, 8 or 9 an
 * answering machine, 00 a fax, otherwise a person). The verdict (AnsweredBy: `human`, `machine_start`
 * with Enable or `machine_end_beep` with DetectMessageEnd, `fax`) comes `amdMs` after the answer
 * (default 40 % of the talk time, within the timeout), posted signed to AsyncAmdStatusCallback with
 * CallSid, AccountSid and MachineDetectionDuration, in the call's line of callbacks; the final status
 * callback and the resource's `answered_by` carry it from then on. A call that ends first has none.
 * With DetectMessageEnd a machine records after its beep: the call goes on for the talk time again.
 *
 * Lifecycle per call: queued → initiated → ringing → in-progress → completed, or busy / no-answer /
 * failed / canceled as the call's script says. The REST resource shows `queued` until ringing (Twilio
 * has no REST status `initiated`), and `start_time` is empty until the call is dialed (initiated),
 * as Twilio documents: a call stuck in Twilio's CPS backlog is not found by a StartTime filter.
 * `Timeout` (ring seconds) shorter than the scripted ring makes it no-answer; `TimeLimit` caps talk.
 * `secondMs` says how long one Twilio second lasts here, so tests can use Timeout=3 at 10 ms/s.
 *
 * Callbacks: for the requested events only (just `completed` when none), every final status on
 * `completed`, sent one after another per call (so a receiver sees Twilio's order unless a fault
 * reorders them), signed with X-Twilio-Signature, retried once on a connection error or 5xx (the
 * StatusCallback's `#rc=N` fragment changes the count, `#rt=MS` the read timeout, as on Twilio).
 *
 * Faults (probabilities 0..1, decided from `random`): per callback drop / duplicate / reorder
 * (delivered after the call's next callback); per detection verdict, delivered after the final
 * callback (`amdAfterFinal`); per create 429 (nothing created), 500 without
 * creating, 500 after really creating (the caller cannot know). Each call draws its own PRNG seed
 * from `random` when created, so a call's jitter and callback faults replay with the same seed and
 * the same create order, whatever the timing of other calls.
 *
 * Observer: a call is live from its creation (queued) until Twilio considers it final, which is
 * before its final callback is sent. `stats()` has live / maxLive overall and per run (the `run`
 * query parameter of the StatusCallback URL), creates per To number, outcomes and callback counts;
 * `timeline()` has every create, final state and first send of a final callback, from which
 * `refillLatencies()` computes "final callback sent → next create received" per run.
 */

import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { finish } from './lifecycle.ts';
import { refillLatencies, waitFor } from './observer.ts';
import { handle } from './rest.ts';
import { isFinal, SimState } from './state.ts';
import type {
  FinalCallStatus,
  SimCall,
  SimEvent,
  SimulatorOptions,
  SimulatorSettings,
  SimulatorStats,
  TwilioSimulator,
} from './types.ts';
import { HttpError, sendError } from './wire.ts';

export { mulberry32 } from '../../lambdas/core/random.ts';
export {
  type MixOutcome,
  parseOutcomeMix,
  REALISTIC_OUTCOMES,
  weightedOutcomes,
} from './behaviors.ts';
export * from './types.ts';
export { twilioSignature } from './wire.ts';

export async function startTwilioSimulator(options: SimulatorOptions = {}): Promise<TwilioSimulator> {
  const simulator = new Simulator(options);
  await simulator.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  return simulator;
}

class Simulator implements TwilioSimulator {
  url = '';
  readonly #state: SimState;
  readonly #server: Server;

  constructor(options: SimulatorOptions) {
    this.#state = new SimState(options, this);
    this.#server = createServer((req, res) => {
      handle(this.#state, req, res).catch((error: unknown) => {
        const detail =
          error instanceof HttpError
            ? error.apiError
            : { status: 500, code: 20500, message: 'Internal Server Error' };
        sendError(res, detail);
      });
    });
  }

  get accountSid(): string {
    return this.#state.accountSid;
  }

  get authToken(): string {
    return this.#state.authToken;
  }

  async listen(port: number, host: string): Promise<void> {
    this.#server.listen(port, host);
    await once(this.#server, 'listening');
    const address = this.#server.address() as AddressInfo;
    this.url = `http://${host}:${address.port}`;
  }

  stats(): SimulatorStats {
    return structuredClone(this.#state.stats);
  }

  calls(): SimCall[] {
    return this.#state.calls.map((call) => this.#state.snapshot(call));
  }

  call(sid: string): SimCall | undefined {
    const call = this.#state.bySid.get(sid);
    return call && this.#state.snapshot(call);
  }

  timeline(): SimEvent[] {
    return this.#state.timeline.map((event) => ({ ...event }));
  }

  repeatedTos(): string[] {
    return Object.entries(this.#state.stats.createsByTo)
      .filter(([, count]) => count > 1)
      .map(([to]) => to);
  }

  refillLatencies(run?: string): number[] {
    return refillLatencies(this.#state.timeline, run);
  }

  waitFor(
    predicate: (sim: TwilioSimulator) => boolean,
    timeoutMs = 10_000,
    what = 'condition',
  ): Promise<void> {
    return waitFor(this.#state, predicate, timeoutMs, what);
  }

  waitForFinal(count: number, timeoutMs = 10_000): Promise<void> {
    return this.waitFor(() => this.#state.stats.final >= count, timeoutMs, `${count} final calls`);
  }

  settled(timeoutMs = 10_000): Promise<void> {
    return this.waitFor(
      () => this.#state.stats.live === 0 && this.#state.stats.callbacks.inFlight === 0,
      timeoutMs,
      'no live call and no callback in flight',
    );
  }

  hangUp(sid: string, status?: FinalCallStatus): boolean {
    const call = this.#state.bySid.get(sid);
    if (!call || isFinal(call.status)) return false;
    finish(this.#state, call, status ?? (call.status === 'in-progress' ? 'completed' : 'canceled'));
    return true;
  }

  configure(settings: SimulatorSettings): void {
    const defined = Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined));
    this.#state.settings = { ...this.#state.settings, ...defined };
  }

  async stop(): Promise<void> {
    const state = this.#state;
    if (state.stopped) return;
    state.stopped = true;
    for (const timer of state.timers) clearTimeout(timer);
    state.timers.clear();
    state.abort.abort();
    for (const waiter of state.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('Twilio simulator stopped'));
    }
    state.waiters.clear();
    const closed = once(this.#server, 'close');
    this.#server.close();
    this.#server.closeAllConnections();
    await closed;
    await Promise.allSettled(state.calls.map((call) => call.chain));
  }
}
