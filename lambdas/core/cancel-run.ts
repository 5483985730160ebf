// (core) Carrying out a cancel, in the dispatcher: the run's Twilio-queued and ringing calls are
// canceled (and, with hangup, calls in progress hung up); their slots are freed by the final
// callbacks that follow, never here. Its queued leads are marked canceled in batches.

import type { Run } from './model.ts';
import type { CallControl, Clock, Log, RunControlStore, RunReader, WorkQueue } from './ports.ts';

export interface CancelRunDeps {
  store: RunReader & RunControlStore;
  queue: WorkQueue;
  clock: Clock;
  log: Log;
  /** Ends calls at the provider: cancel needs it. */
  callControl?: CallControl;
}

/** A canceled run's queued leads marked canceled per invocation; a long list goes on in the next. */
const CANCEL_PER_INVOCATION = 990;

/** Ends the run's live calls it may end and cancels a batch of its queued leads. */
export async function carryOutCancel(deps: CancelRunDeps, run: Run): Promise<void> {
  const { runId } = run;
  await Promise.all(
    Object.entries(run.holders).map(async ([jobId, holder]) => {
      if (holder.state === 'calling' && !run.hangup) return;
      const job = await deps.store.getJob(runId, jobId);
      // No Sid yet: the create is in flight, and placeCall cancels the call once it exists.
      if (!job?.callSid || job.attempt !== holder.attempt) return;
      await endCall(deps, run.hangup === true, job.callSid, holder.state, { runId, jobId });
    }),
  );
  const at = deps.clock.now().toISOString();
  const canceled = await deps.store.cancelQueuedJobs(runId, CANCEL_PER_INVOCATION, at);
  if (canceled > 0) deps.log.info('queued leads canceled', { runId, canceled });
  const after = await deps.store.getRunRecord(runId);
  // More than one invocation's worth, or leads the index does not list yet: go on shortly.
  if (after && after.queued > 0)
    await deps.queue.requestDispatch(runId, { delaySeconds: canceled > 0 ? 0 : 1 });
}

/** Cancels a call not yet answered; hangs one up when the cancel asked for it. */
export async function endCall(
  deps: Pick<CancelRunDeps, 'callControl' | 'log'>,
  hangup: boolean,
  callSid: string,
  state: 'dialing' | 'calling',
  context: { runId: string; jobId: string },
): Promise<void> {
  const control = deps.callControl;
  if (!control) {
    deps.log.warn('cannot end calls: no call control wired', context);
    return;
  }
  if (state === 'dialing') {
    const result = await control.cancelCall(callSid);
    deps.log.info('call canceled', { ...context, callSid, result: result.kind });
    // Answered meanwhile: Twilio refuses the cancel; hang up only if asked to.
    if (result.kind !== 'invalid-state' || !hangup) return;
  }
  const result = await control.hangUpCall(callSid);
  deps.log.info('call hung up', { ...context, callSid, result: result.kind });
}
