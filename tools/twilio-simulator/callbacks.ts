// Status callbacks as Twilio sends them: for the requested events, signed, one after another per call,
// retried once on a connection error or 5xx, with the injected faults (drop, duplicate, reorder).

import { randomBytes } from 'node:crypto';
import { sendHttpRequest } from '../../lambdas/adapters/http-request.ts';
import { type CallbackState, type CallState, chance, isFinal, now, runOf, type SimState } from './state.ts';
import type { CallbackEvent } from './types.ts';
import { API_VERSION, boundedIntOr, CALLBACK_AGENTS, rfc2822, twilioSignature } from './wire.ts';

export function emit(
  sim: SimState,
  call: CallState,
  event: CallbackEvent,
  callStatus: string,
  extra: Record<string, string> = {},
): void {
  if (call.statusCallback === undefined || !call.events.has(event)) return;
  const sequenceNumber = call.nextSequence++;
  send(sim, call, {
    event,
    callStatus,
    sequenceNumber,
    target: call.statusCallback,
    method: call.statusCallbackMethod,
    params: {
      AccountSid: sim.accountSid,
      ApiVersion: API_VERSION,
      CallSid: call.sid,
      CallStatus: callStatus,
      Called: call.to,
      Caller: call.from,
      CallbackSource: 'call-progress-events',
      Direction: 'outbound-api',
      From: call.from,
      SequenceNumber: String(sequenceNumber),
      Timestamp: rfc2822(now()),
      To: call.to,
      ...extra,
    },
  });
}

/**
 * Answering-machine detection's verdict, posted to the call's AsyncAmdStatusCallback as Twilio does:
 * signed like a status callback, with AnsweredBy and MachineDetectionDuration (ms). It goes in the
 * call's line of callbacks, so the faults (drop, duplicate, reorder after the next one) apply to it.
 */
export function emitAmd(sim: SimState, call: CallState, answeredBy: string, durationMs: number): void {
  if (call.asyncAmdStatusCallback === undefined) return;
  send(sim, call, {
    afterFinal: chance(call.rng, sim.settings.faults.amdAfterFinal),
    event: 'amd',
    callStatus: call.status,
    sequenceNumber: call.nextSequence++,
    target: call.asyncAmdStatusCallback,
    method: 'POST',
    params: {
      AccountSid: sim.accountSid,
      AnsweredBy: answeredBy,
      CallSid: call.sid,
      MachineDetectionDuration: String(durationMs),
    },
  });
}

function send(
  sim: SimState,
  call: CallState,
  message: {
    /** Held until the call's final callback has been sent (see `flushHeld`). */
    afterFinal?: boolean;
    event: CallbackEvent | 'amd';
    callStatus: string;
    sequenceNumber: number;
    target: string;
    method: 'POST' | 'GET';
    params: Record<string, string>;
  },
): void {
  const { event, callStatus, sequenceNumber, params, target, method } = message;
  // The fragment carries Twilio's connection overrides and is neither sent nor signed.
  const hashAt = target.indexOf('#');
  const base = hashAt < 0 ? target : target.slice(0, hashAt);
  const overrides = new URLSearchParams(hashAt < 0 ? '' : target.slice(hashAt + 1));
  const retries = boundedIntOr(overrides.get('rc'), 1, 0, 5);
  const readTimeoutMs = boundedIntOr(overrides.get('rt'), sim.callbackTimeoutMs, 1, 15_000);

  let url = base;
  let body: string | undefined;
  let signature: string;
  const headers: Record<string, string> = {
    'User-Agent': 'TwilioProxy/1.1',
    'I-Twilio-Idempotency-Token': randomBytes(16).toString('hex'),
  };
  if (method === 'GET') {
    url = `${base}${base.includes('?') ? '&' : '?'}${new URLSearchParams(params).toString()}`;
    signature = twilioSignature(sim.authToken, url, {});
  } else {
    body = new URLSearchParams(params).toString();
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    signature = twilioSignature(sim.authToken, url, params);
  }
  headers['X-Twilio-Signature'] = signature;

  const callback: CallbackState = {
    sequenceNumber,
    event,
    callStatus,
    url,
    method,
    params,
    signature,
    fate: 'pending',
    attempts: 0,
    duplicated: false,
    reordered: false,
    ...(body !== undefined ? { body } : {}),
    headers,
    retries,
    readTimeoutMs,
    final: event === 'completed',
    duplicate: false,
  };
  call.callbacks.push(callback);
  sim.stats.callbacks.generated += 1;

  const { faults } = sim.settings;
  if (
    chance(call.rng, faults.dropCallback) ||
    (callback.final && chance(call.rng, faults.dropFinalCallback))
  ) {
    callback.fate = 'dropped';
    sim.stats.callbacks.dropped += 1;
    sim.log(`${call.sid} callback #${sequenceNumber} ${callStatus} dropped (injected)`);
    if (callback.final) flushHeld(sim, call);
    return;
  }
  callback.duplicate = chance(call.rng, faults.duplicateCallback);
  if (message.afterFinal && call.heldUntilFinal === undefined) {
    callback.fate = 'held';
    callback.reordered = true;
    call.heldUntilFinal = callback;
    sim.stats.callbacks.reordered += 1;
    sim.stats.callbacks.inFlight += 1;
    return;
  }
  if (!callback.final && call.held === undefined && chance(call.rng, faults.reorderCallback)) {
    callback.fate = 'held';
    callback.reordered = true;
    call.held = callback;
    sim.stats.callbacks.reordered += 1;
    sim.stats.callbacks.inFlight += 1;
    return;
  }
  enqueue(sim, call, callback);
  flushHeld(sim, call);
}

export function flushHeld(sim: SimState, call: CallState): void {
  const held = call.held;
  if (held) {
    call.held = undefined;
    held.fate = 'pending';
    sim.stats.callbacks.inFlight -= 1;
    enqueue(sim, call, held);
  }
  // Only once the call is final: a verdict held for after its final callback.
  const late = call.heldUntilFinal;
  if (late && isFinal(call.status)) {
    call.heldUntilFinal = undefined;
    late.fate = 'pending';
    sim.stats.callbacks.inFlight -= 1;
    enqueue(sim, call, late);
  }
}

function enqueue(sim: SimState, call: CallState, callback: CallbackState): void {
  const stats = sim.stats.callbacks;
  stats.inFlight += 1;
  call.chain = call.chain
    .then(async () => {
      await deliver(sim, call, callback, false);
      if (callback.duplicate) {
        callback.duplicated = true;
        stats.duplicated += 1;
        await deliver(sim, call, callback, true);
      }
    })
    .catch(() => {})
    .finally(() => {
      stats.inFlight -= 1;
      sim.changed();
    });
}

async function deliver(
  sim: SimState,
  call: CallState,
  callback: CallbackState,
  copy: boolean,
): Promise<void> {
  const stats = sim.stats.callbacks;
  for (let attempt = 0; attempt <= callback.retries; attempt++) {
    if (sim.stopped) return;
    if (attempt > 0) {
      stats.retried += 1;
      await sim.sleep(sim.callbackRetryDelayMs);
      if (sim.stopped) return;
    }
    const sentAt = now();
    callback.attempts += 1;
    stats.attempts += 1;
    if (callback.firstSentAt === undefined) {
      callback.firstSentAt = sentAt;
      if (callback.final && !copy) {
        call.finalCallbackAt = sentAt;
        sim.timeline.push({ kind: 'final-callback', at: sentAt, sid: call.sid, ...runOf(call) });
      }
    }
    try {
      const { status } = await sendHttpRequest(callback.url, {
        method: callback.method,
        headers: callback.headers,
        body: callback.body,
        timeoutMs: callback.readTimeoutMs,
        agents: CALLBACK_AGENTS,
        signal: sim.abort.signal,
      });
      callback.responseStatus = status;
      if (status < 500) {
        callback.fate = 'delivered';
        delete callback.error;
        stats.delivered += 1;
        if (status >= 400) stats.answered4xx += 1;
        return;
      }
      callback.error = `HTTP ${status}`;
    } catch (error) {
      callback.error =
        (error as Error).name === 'TimeoutError' ? 'timeout' : String((error as Error).cause ?? error);
    }
  }
  if (sim.stopped) return;
  // A duplicate copy that fails does not undo the delivery of the original.
  if (!copy || callback.fate !== 'delivered') callback.fate = 'failed';
  stats.failed += 1;
  sim.log(
    `${call.sid} callback #${callback.sequenceNumber} ${callback.callStatus} failed: ${callback.error}`,
  );
}
