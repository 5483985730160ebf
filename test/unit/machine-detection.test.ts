// Answering-machine detection in the core, against the in-memory store and the telephony double: the
// create asks for asynchronous detection with its own callback; a call a machine or fax answered ends
// `machine` whichever of the verdict and the final status comes first, and however often each comes;
// `retry.on: ["machine"]` calls it again; a machine's greeting ending redirects the call to the run's
// voicemail, once; the reconciler settles a lost final callback with the verdict too. And the run
// options are refused field by field when they could not take effect.

import { describe, expect, it } from 'vitest';
import { applyAmdCallback } from '../../lambdas/core/amd-callback.ts';
import { parseCallbackIds } from '../../lambdas/core/callback-url.ts';
import { applyStatusCallback } from '../../lambdas/core/callbacks.ts';
import type { ErrorDetail } from '../../lambdas/core/errors.ts';
import { fillSlots } from '../../lambdas/core/fill-slots.ts';
import { reconcile } from '../../lambdas/core/reconcile.ts';
import { type RunOptions, validateRunOptions } from '../../lambdas/core/run-options.ts';
import type { TwilioCallStatus } from '../../lambdas/core/states.ts';
import { quietLog } from '../support/fakes.ts';
import { type World, world } from '../support/unit-world.ts';

const VOICEMAIL = '<Response><Say>Sorry we missed you.</Say></Response>';

async function oneCall(runOptions: RunOptions) {
  const w = world();
  const runId = await w.seedRun({ leads: 2, concurrency: 1, runOptions });
  await fillSlots(w.deps, runId);
  const [call] = w.telephony.live(runId);
  w.queue.take();
  return { w, runId, call: call! };
}

/** The detection callback Twilio posts to AsyncAmdStatusCallback, as the webhook hands it on. */
function verdict(w: World, sid: string, answeredBy: string) {
  const call = w.telephony.calls.get(sid)!;
  const url = new URL(call.request.machineDetection!.callbackUrl);
  const ids = parseCallbackIds(url.searchParams)!;
  return applyAmdCallback(
    { store: w.store, callControl: w.telephony, log: quietLog },
    { ...ids, callSid: sid, answeredBy },
  );
}

/** A status callback, optionally with the AnsweredBy Twilio adds once detection has told. */
function status(w: World, sid: string, callStatus: TwilioCallStatus, answeredBy?: string) {
  const call = w.telephony.calls.get(sid)!;
  w.telephony.set(sid, callStatus);
  const ids = parseCallbackIds(new URL(call.request.statusCallbackUrl).searchParams)!;
  return applyStatusCallback(
    { store: w.store, queue: w.queue, clock: w.clock, log: quietLog },
    { ...ids, callSid: sid, callStatus, ...(answeredBy === undefined ? {} : { answeredBy }) },
  );
}

describe('answering-machine detection', () => {
  it('asks Twilio for asynchronous detection with a callback of its own, and leaves the outcome to the run', async () => {
    const { w, call } = await oneCall({ machineDetection: 'Enable' });
    const request = w.telephony.requests[0]!;
    expect(request.machineDetection?.mode).toBe('Enable');
    const amdUrl = new URL(request.machineDetection!.callbackUrl);
    expect(amdUrl.searchParams.get('callback')).toBe('amd');
    expect(parseCallbackIds(amdUrl.searchParams)).toMatchObject({
      runId: call.runId,
      jobId: call.jobId,
      attempt: 1,
    });
    // No `requeue_on`: the outcome depends on the verdict, so the webhook reads the job.
    expect(new URL(request.statusCallbackUrl).searchParams.has('requeue_on')).toBe(false);

    const plain = await oneCall({});
    expect(plain.w.telephony.requests[0]!.machineDetection).toBeUndefined();
  });

  it('ends a call a machine answered with outcome machine, the verdict first', async () => {
    const { w, runId, call } = await oneCall({ machineDetection: 'Enable' });
    await status(w, call.sid, 'in-progress');
    expect(await verdict(w, call.sid, 'machine_start')).toBe('recorded');
    expect(await status(w, call.sid, 'completed')).toBe('released');
    expect(await w.store.getJob(runId, call.jobId)).toMatchObject({
      status: 'failed',
      outcome: 'machine',
      answeredBy: 'machine_start',
    });
    expect(await w.store.getRun(runId)).toMatchObject({
      active: 0,
      completed: 0,
      failed: 1,
      outcomes: { machine: 1 },
    });
  });

  it('ends it machine when the final status comes first (it carries the verdict), and a late verdict changes nothing', async () => {
    const { w, runId, call } = await oneCall({ machineDetection: 'Enable' });
    await status(w, call.sid, 'in-progress');
    expect(await status(w, call.sid, 'completed', 'fax')).toBe('released');
    expect(await verdict(w, call.sid, 'fax')).toBe('unchanged');
    expect(await verdict(w, call.sid, 'human')).toBe('unchanged');
    expect(await w.store.getJob(runId, call.jobId)).toMatchObject({
      status: 'failed',
      outcome: 'machine',
      answeredBy: 'fax',
    });
    expect(await w.store.getRun(runId)).toMatchObject({ failed: 1, outcomes: { machine: 1 } });
  });

  it('keeps a person’s call completed, with who answered', async () => {
    const { w, runId, call } = await oneCall({
      machineDetection: 'DetectMessageEnd',
      voicemailTwiml: VOICEMAIL,
    });
    await status(w, call.sid, 'in-progress');
    expect(await verdict(w, call.sid, 'human')).toBe('recorded');
    expect(await status(w, call.sid, 'completed', 'human')).toBe('released');
    expect(await w.store.getJob(runId, call.jobId)).toMatchObject({
      status: 'completed',
      outcome: 'completed',
      answeredBy: 'human',
    });
    expect(w.telephony.redirects).toEqual([]);
  });

  it('changes nothing for a duplicate verdict, and leaves one voicemail', async () => {
    const { w, runId, call } = await oneCall({
      machineDetection: 'DetectMessageEnd',
      voicemailTwiml: VOICEMAIL,
    });
    await status(w, call.sid, 'in-progress');
    expect(await verdict(w, call.sid, 'machine_end_beep')).toBe('voicemail');
    expect(await verdict(w, call.sid, 'machine_end_beep')).toBe('unchanged');
    expect(await verdict(w, call.sid, 'human')).toBe('unchanged');
    expect(w.telephony.redirects).toEqual([{ callSid: call.sid, content: { twiml: VOICEMAIL } }]);
    expect(await status(w, call.sid, 'completed', 'machine_end_beep')).toBe('released');
    expect(await status(w, call.sid, 'completed', 'machine_end_beep')).toBe('unchanged');
    expect(await w.store.getRun(runId)).toMatchObject({ active: 0, failed: 1, outcomes: { machine: 1 } });
  });

  it('leaves no voicemail with Enable (the greeting has not ended) or without one configured', async () => {
    const enable = await oneCall({ machineDetection: 'Enable' });
    await status(enable.w, enable.call.sid, 'in-progress');
    expect(await verdict(enable.w, enable.call.sid, 'machine_start')).toBe('recorded');
    expect(enable.w.telephony.redirects).toEqual([]);

    const none = await oneCall({ machineDetection: 'DetectMessageEnd' });
    await status(none.w, none.call.sid, 'in-progress');
    expect(await verdict(none.w, none.call.sid, 'machine_end_silence')).toBe('recorded');
    expect(none.w.telephony.redirects).toEqual([]);
  });

  it('calls a machine-answered lead again when retry.on says machine, with a fresh verdict', async () => {
    const retry = { on: ['machine' as const], delaySeconds: 60, maxAttempts: 2 };
    const { w, runId, call } = await oneCall({ machineDetection: 'Enable', retry });
    await status(w, call.sid, 'in-progress');
    await verdict(w, call.sid, 'machine_start');
    expect(await status(w, call.sid, 'completed')).toBe('released');
    expect(await w.store.getJob(runId, call.jobId)).toMatchObject({
      status: 'queued',
      attempt: 1,
      outcome: 'machine',
    });

    w.clock.advance(61_000);
    // The other lead first (it was due before), then the retry: attempt 2, no verdict carried over.
    for (let i = 0; i < 2; i++) {
      await fillSlots(w.deps, runId);
      const [live] = w.telephony.live(runId);
      if (live!.jobId !== call.jobId) {
        await status(w, live!.sid, 'in-progress');
        await verdict(w, live!.sid, 'human');
        await status(w, live!.sid, 'completed');
        continue;
      }
      expect(live!.attempt).toBe(2);
      expect((await w.store.getJob(runId, call.jobId))?.answeredBy).toBeUndefined();
      await status(w, live!.sid, 'in-progress');
      expect(await verdict(w, live!.sid, 'human')).toBe('recorded');
      await status(w, live!.sid, 'completed');
    }
    expect(await w.store.getJob(runId, call.jobId)).toMatchObject({
      status: 'completed',
      attempt: 2,
      outcome: 'completed',
      answeredBy: 'human',
    });
    expect(await w.store.getRun(runId)).toMatchObject({ completed: 2, failed: 0, active: 0 });
  });

  it('settles a machine’s call whose final callback was lost as machine (reconciler)', async () => {
    const { w, runId, call } = await oneCall({ machineDetection: 'Enable' });
    await status(w, call.sid, 'in-progress');
    await verdict(w, call.sid, 'machine_start');
    w.telephony.set(call.sid, 'completed'); // its final callback never comes
    w.clock.advance(60_000);
    const report = await reconcile(w.reconcileDeps);
    expect(report.reaped).toBe(1);
    expect(await w.store.getJob(runId, call.jobId)).toMatchObject({ status: 'failed', outcome: 'machine' });
  });
});

describe('machine detection options', () => {
  const policy = {
    allowedFrom: [],
    twimlUrlPrefixes: ['https://twiml.example.com/'],
    maxTwimlBytes: 4000,
  };
  const check = (body: Record<string, unknown>) => {
    const details: ErrorDetail[] = [];
    const options = validateRunOptions(body, policy, details, Date.parse('2026-11-30T09:00:00Z'));
    return { options, fields: details.map((d) => d.field) };
  };

  it('takes Twilio’s modes, a voicemail with DetectMessageEnd, and machine as a retry outcome', () => {
    expect(
      check({
        machine_detection: 'DetectMessageEnd',
        voicemail_url: 'https://twiml.example.com/vm.xml',
        retry: { on: ['machine', 'busy'] },
      }),
    ).toEqual({
      options: {
        machineDetection: 'DetectMessageEnd',
        voicemailUrl: 'https://twiml.example.com/vm.xml',
        retry: { on: ['machine', 'busy'], delaySeconds: 600, maxAttempts: 3 },
      },
      fields: [],
    });
  });

  it('refuses each option that could not take effect, by its field', () => {
    expect(check({ machine_detection: 'enable' }).fields).toEqual(['machine_detection']);
    expect(check({ machine_detection: true }).fields).toEqual(['machine_detection']);
    expect(check({ machine_detection: 'Enable', voicemail_twiml: VOICEMAIL }).fields).toEqual([
      'voicemail_twiml',
    ]);
    expect(check({ voicemail_url: 'https://twiml.example.com/vm.xml' }).fields).toEqual(['voicemail_url']);
    expect(
      check({
        machine_detection: 'DetectMessageEnd',
        voicemail_url: 'https://twiml.example.com/vm.xml',
        voicemail_twiml: VOICEMAIL,
      }).fields,
    ).toEqual(['voicemail_twiml']);
    expect(
      check({ machine_detection: 'DetectMessageEnd', voicemail_url: 'https://evil.example/vm.xml' }).fields,
    ).toEqual(['voicemail_url']);
    expect(check({ retry: { on: ['machine'] } }).fields).toEqual(['retry.on']);
    expect(check({ retry: { on: ['voicemail'] } }).fields).toEqual(['retry.on']);
  });

  it('keeps inline voicemail TwiML off unless MAX_TWIML_BYTES allows it', () => {
    const details: ErrorDetail[] = [];
    validateRunOptions(
      { machine_detection: 'DetectMessageEnd', voicemail_twiml: VOICEMAIL },
      { ...policy, maxTwimlBytes: 0 },
      details,
      Date.parse('2026-11-30T09:00:00Z'),
    );
    expect(details).toEqual([
      { field: 'voicemail_twiml', message: 'runs cannot carry inline TwiML here (MAX_TWIML_BYTES is 0)' },
    ]);
  });
});
