// (core) Run controls: pause, resume, cancel. Each is one conditional write of the run's `control`,
// which the acquire transaction reads: once a pause or cancel is written, no new slot can be taken,
// whatever dispatcher is running. Cancel's work on Twilio and on the queued leads is the
// dispatcher's (it holds the Twilio credentials and has time); the API only asks for it.
//
//   pause   running → paused      live calls finish; nothing new is dialed
//   resume  paused → running      the run refills to its cap at once
//   cancel  running|paused → canceled   queued and ringing calls canceled at Twilio, calls in
//           progress left to end (or hung up with ?hangup=true), queued leads canceled
// Repeating a control is answered like the first time; a completed or canceled run refuses the
// others with 409.

import { ConflictError, NotFoundError } from './errors.ts';
import { type RunControl, type RunView, runStatus, toRunView } from './model.ts';
import type { Clock, Log, RunControlStore, WorkQueue } from './ports.ts';

export interface ControlDeps {
  store: RunControlStore;
  queue: WorkQueue;
  clock: Clock;
  log: Log;
}

export type ControlAction = 'pause' | 'resume' | 'cancel';

const TRANSITIONS: Record<ControlAction, { to: RunControl; from: RunControl[] }> = {
  pause: { to: 'paused', from: ['running', 'paused'] },
  resume: { to: 'running', from: ['paused', 'running'] },
  // A repeated cancel is carried out again: a retry after a failure, or a later ?hangup=true.
  cancel: { to: 'canceled', from: ['running', 'paused', 'canceled'] },
};

export async function controlRun(
  deps: ControlDeps,
  runId: string,
  action: ControlAction,
  options: { hangup?: boolean } = {},
): Promise<RunView> {
  const { to, from } = TRANSITIONS[action];
  const at = deps.clock.now().toISOString();
  const result = await deps.store.setControl(runId, {
    to,
    from,
    at,
    ...(action === 'cancel' && options.hangup ? { hangup: true } : {}),
  });
  if (result.kind === 'not-found') throw new NotFoundError(`No run with id "${runId}".`);
  if (result.kind === 'refused') {
    const status = runStatus(result.run);
    // Already there and finished (a canceled run canceled again): nothing left to do, same answer.
    if (result.run.control === to) return toRunView(result.run);
    throw new ConflictError(`Cannot ${action} a run that is ${status}.`);
  }
  deps.log.info('run control changed', { runId, action, hangup: options.hangup === true });
  // Resume refills at once; cancel is carried out by a dispatcher. A pause needs nobody.
  if (action !== 'pause') await deps.queue.requestDispatch(runId);
  return toRunView(result.run);
}
