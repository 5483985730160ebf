// One call's life at the simulated Twilio: registered at create (queued), dialed (initiated), ringing,
// answered (in-progress), and final, each step on a timer from the call's script; the observer's
// counts move with it.

import { answeredByFor } from './behaviors.ts';
import { emit, emitAmd, flushHeld } from './callbacks.ts';
import { gatherAction, pressKeys } from './gather.ts';
import { type CallState, isFinal, now, runOf, type SimState } from './state.ts';
import type { FinalCallStatus } from './types.ts';

export function register(sim: SimState, call: CallState): void {
  sim.calls.push(call);
  sim.bySid.set(call.sid, call);
  const stats = sim.stats;
  stats.created += 1;
  stats.live += 1;
  stats.maxLive = Math.max(stats.maxLive, stats.live);
  stats.createsByTo[call.to] = (stats.createsByTo[call.to] ?? 0) + 1;
  if (call.run !== undefined) {
    const run = stats.runs[call.run] ?? { created: 0, live: 0, maxLive: 0, final: 0 };
    stats.runs[call.run] = run;
    run.created += 1;
    run.live += 1;
    run.maxLive = Math.max(run.maxLive, run.live);
  }
  sim.timeline.push({ kind: 'create', at: call.createdAt, sid: call.sid, ...runOf(call) });
  sim.log(`${call.sid} queued${call.run ? ` run=${call.run}` : ''} live=${stats.live}`);
  call.timer = sim.later(call.script.queuedMs, () => initiate(sim, call));
  sim.changed();
}

function initiate(sim: SimState, call: CallState): void {
  call.startedAt = now();
  call.updatedAt = call.startedAt;
  emit(sim, call, 'initiated', 'initiated');
  if (call.script.outcome === 'failed') {
    call.timer = sim.later(call.script.ringMs, () => finish(sim, call, 'failed'));
    return;
  }
  call.timer = sim.later(0, () => ring(sim, call));
}

function ring(sim: SimState, call: CallState): void {
  call.status = 'ringing';
  call.updatedAt = now();
  emit(sim, call, 'ringing', 'ringing');
  const { outcome, ringMs } = call.script;
  const ringTimeoutMs = call.timeoutSeconds * sim.secondMs;
  if (ringTimeoutMs < ringMs) {
    call.timer = sim.later(ringTimeoutMs, () => finish(sim, call, 'no-answer'));
  } else if (outcome === 'completed') {
    call.timer = sim.later(ringMs, () => answer(sim, call));
  } else {
    call.timer = sim.later(ringMs, () => finish(sim, call, outcome));
  }
  sim.changed();
}

function answer(sim: SimState, call: CallState): void {
  call.status = 'in-progress';
  call.answeredAt = now();
  call.updatedAt = call.answeredAt;
  emit(sim, call, 'answered', 'in-progress');
  const talkMs = Math.min(call.script.talkMs, call.timeLimitSeconds * sim.secondMs);
  call.timer = sim.later(talkMs, () => finish(sim, call, 'completed'));
  // A callee who presses keys does so while the call plays: half-way through the talk time.
  const action = call.digits ? gatherAction(call.twiml) : undefined;
  if (action && call.digits) {
    const digits = call.digits;
    sim.later(
      talkMs / 2,
      () => void pressKeys(sim, call, action, digits, () => finish(sim, call, 'completed')),
    );
  }
  const amd = call.amd;
  if (amd && call.machineDetection) {
    const mode = call.machineDetection;
    // Detection listens while the call goes on; a call that ends first has no verdict.
    sim.later(amd.afterMs, () => {
      if (call.status !== 'in-progress') return;
      call.answeredBy = answeredByFor(amd.answerer, mode);
      call.updatedAt = now();
      if (amd.answerer === 'machine' && mode === 'DetectMessageEnd') {
        // After its beep a machine records: the call goes on for the talk time from here (within the
        // TimeLimit), long enough for a voicemail to be left.
        const leftMs = call.timeLimitSeconds * sim.secondMs - (now() - (call.answeredAt ?? now()));
        if (call.timer) {
          clearTimeout(call.timer);
          sim.timers.delete(call.timer);
        }
        call.timer = sim.later(Math.min(call.script.talkMs, leftMs), () => finish(sim, call, 'completed'));
      }
      if (call.asyncAmd && call.asyncAmdStatusCallback !== undefined) {
        emitAmd(sim, call, call.answeredBy, Math.round(amd.afterMs));
      }
      sim.changed();
    });
  }
  sim.changed();
}

export function finish(sim: SimState, call: CallState, status: FinalCallStatus): void {
  if (isFinal(call.status)) return;
  if (call.timer) {
    clearTimeout(call.timer);
    sim.timers.delete(call.timer);
    call.timer = undefined;
  }
  const endedAt = now();
  call.status = status;
  call.endedAt = endedAt;
  call.updatedAt = endedAt;
  // Twilio ends a call at its TimeLimit, so it never reports more, however late a timer fired here.
  call.durationSeconds =
    call.answeredAt === undefined
      ? 0
      : Math.min(Math.ceil((endedAt - call.answeredAt) / sim.secondMs), call.timeLimitSeconds);

  const stats = sim.stats;
  stats.live -= 1;
  stats.final += 1;
  stats.outcomes[status] += 1;
  if (call.run !== undefined) {
    const run = stats.runs[call.run]!;
    run.live -= 1;
    run.final += 1;
  }
  sim.timeline.push({ kind: 'final', at: endedAt, sid: call.sid, status, ...runOf(call) });
  sim.log(`${call.sid} ${status} live=${stats.live}`);
  const duration = String(call.durationSeconds);
  emit(sim, call, 'completed', status, {
    CallDuration: duration,
    Duration: duration,
    SipResponseCode: sipCodeFor(status),
    // Once detection has told, Twilio's status callbacks carry its verdict too.
    ...(call.answeredBy === undefined ? {} : { AnsweredBy: call.answeredBy }),
  });
  // Nothing comes after the final status: a callback held back for reordering goes now.
  flushHeld(sim, call);
  sim.changed();
}

function sipCodeFor(status: FinalCallStatus): string {
  switch (status) {
    case 'completed':
      return '200';
    case 'busy':
      return '486';
    case 'no-answer':
    case 'canceled':
      return '487';
    case 'failed':
      return '503';
  }
}
