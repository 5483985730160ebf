// Answering-machine detection in the core, against the in-memory store and the telephony double: the
// create asks for asynchronous detection with its own callback; a call a machine or fax answered ends
// `machine` whichever of the verdict and the final status comes first, and however often each comes;
// `retry.on: ["machine"]` calls it again; a machine's greeting ending redirects the call to the run's
// voicemail, once; any other machine or fax verdict hangs the call up (`on_machine: hangup`), once;
// the reconciler settles a lost final callback with the verdict too. And the run options are refused
// field by field when they could not take effect.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AmdDeps, applyAmdCallback } from '../../lambdas/core/amd-callback.ts';
import { parseCallbackIds } from '../../lambdas/core/callback-url.ts';
import { applyStatusCallback } from '../../lambdas/core/callbacks.ts';
import type { ErrorDetail } from '../../lambdas/core/errors.ts';
import { fillSlots } from '../../lambdas/core/fill-slots.ts';
import {
  ANSWERED_BY,
  isMachine,
  ON_MACHINE_MODES,
  type VerdictAction,
  type VerdictPolicy,
  verdictAction,
} from '../../lambdas/core/machine-detection.ts';
import type { CallUpdate, Log } from '../../lambdas/core/ports.ts';
import { reconcile } from '../../lambdas/core/reconcile.ts';
import { optionsView, type RunOptions, validateRunOptions } from '../../lambdas/core/run-options.ts';
import type { TwilioCallStatus } from '../../lambdas/core/states.ts';
import { quietLog } from '../support/fakes.ts';
import { type World, world } from '../support/unit-world.ts';

const VOICEMAIL = '<Response><Say>Sorry we missed you.</Say></Response>';

/** A run's one call, live (with `leads` > 1, the others wait for its slot). */
async function oneCall(runOptions: RunOptions, leads = 1) {
  const w = world();
  const runId = await w.seedRun({ leads, concurrency: 1, runOptions });
  await fillSlots(w.deps, runId);
  const [call] = w.telephony.live(runId);
  w.queue.take();
  return { w, runId, call: call! };
}

/** The detection callback Twilio posts to AsyncAmdStatusCallback, as the webhook hands it on. */
function verdict(w: World, sid: string, answeredBy: string, deps: Partial<AmdDeps> = {}) {
  const call = w.telephony.calls.get(sid)!;
  const url = new URL(call.request.machineDetection!.callbackUrl);
  const ids = parseCallbackIds(url.searchParams)!;
  return applyAmdCallback(
    { store: w.store, callControl: w.telephony, log: quietLog, ...deps },
    { ...ids, callSid: sid, answeredBy },
  );
}

/** A log that keeps every line, to check what was said and that no phone number was. */
function recordingLog() {
  const lines: { level: string; message: string; context?: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (message: string, context?: Record<string, unknown>): void => {
      lines.push({ level, message, ...(context ? { context } : {}) });
    };
  const log: Log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { log, lines, text: () => JSON.stringify(lines, (_k, v) => (v instanceof Error ? v.message : v)) };
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
    const { w, runId, call } = await oneCall({ machineDetection: 'Enable', retry }, 2);
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
      expect(await w.dispatch()).toBe(1); // the dispatch the last release asked for
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

describe('what a verdict does to the live call (verdictAction)', () => {
  const VM_URL = 'https://twiml.example.com/vm.xml';
  // [verdict, the run's on_machine, its voicemail, what the webhook does]
  it.each<[string, VerdictPolicy['onMachine'], 'twiml' | 'url' | 'none', VerdictAction]>([
    ['machine_start', 'hangup', 'none', 'hangup'],
    ['machine_start', 'continue', 'none', 'none'],
    ['machine_start', undefined, 'none', 'none'], // a run from before the option: as it was created
    ['fax', 'hangup', 'none', 'hangup'],
    ['fax', 'hangup', 'twiml', 'hangup'], // a fax takes no voicemail
    ['fax', 'continue', 'twiml', 'none'],
    ['machine_end_beep', 'hangup', 'twiml', 'voicemail'],
    ['machine_end_silence', 'hangup', 'url', 'voicemail'],
    ['machine_end_other', 'continue', 'url', 'voicemail'],
    ['machine_end_beep', 'hangup', 'none', 'hangup'], // DetectMessageEnd without a voicemail
    ['machine_end_other', 'continue', 'none', 'none'],
    ['human', 'hangup', 'none', 'none'],
    ['human', 'hangup', 'twiml', 'none'],
    ['unknown', 'hangup', 'none', 'none'],
    ['unknown', 'hangup', 'url', 'none'],
    ['machine_start', 'hangup', 'twiml', 'hangup'], // a greeting's start is no time for a voicemail
  ])('%s with on_machine %s and voicemail %s: %s', (answeredBy, onMachine, voicemail, expected) => {
    const policy: VerdictPolicy = {
      ...(onMachine ? { onMachine } : {}),
      ...(voicemail === 'twiml' ? { voicemailTwiml: VOICEMAIL } : {}),
      ...(voicemail === 'url' ? { voicemailUrl: VM_URL } : {}),
    };
    expect(verdictAction(answeredBy, policy)).toBe(expected);
  });

  it('never hangs up on a person or an unknown, nor unless the run says hangup; never leaves a machine of a hangup run alone', () => {
    // Twilio's verdicts and later ones of the same shape (`machine_end_music`, say).
    const verdicts = fc.oneof(
      fc.constantFrom(...ANSWERED_BY),
      fc.stringMatching(/^machine_[a-z_]{1,12}$/),
      fc.stringMatching(/^[a-z][a-z_]{0,12}$/),
    );
    const policies = fc.record(
      {
        onMachine: fc.constantFrom(...ON_MACHINE_MODES),
        voicemailTwiml: fc.constant(VOICEMAIL),
        voicemailUrl: fc.constant(VM_URL),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(verdicts, policies, (answeredBy, policy) => {
        const action = verdictAction(answeredBy, policy);
        if (!isMachine(answeredBy)) expect(action).toBe('none');
        if (action === 'hangup') expect(policy.onMachine).toBe('hangup');
        if (action === 'voicemail') {
          expect(answeredBy.startsWith('machine_end_')).toBe(true);
          expect(policy.voicemailTwiml ?? policy.voicemailUrl).toBeDefined();
        }
        if (isMachine(answeredBy) && policy.onMachine === 'hangup') expect(action).not.toBe('none');
      }),
    );
  });
});

describe('hanging up on machines (on_machine)', () => {
  const hangup = { machineDetection: 'Enable' as const, onMachine: 'hangup' as const };

  it('hangs up a call a machine answered, once however often the verdict comes; the lead ends machine and the next is dialed', async () => {
    const { w, runId, call } = await oneCall(hangup, 2);
    await status(w, call.sid, 'in-progress');
    expect(await verdict(w, call.sid, 'machine_start')).toBe('hung-up');
    expect(await verdict(w, call.sid, 'machine_start')).toBe('unchanged');
    expect(await verdict(w, call.sid, 'fax')).toBe('unchanged');
    expect(w.telephony.hangUps).toEqual([call.sid]);
    expect(w.telephony.calls.get(call.sid)?.status).toBe('completed');
    // Twilio's final callback for the hung-up call comes as for any call, with the verdict.
    expect(await status(w, call.sid, 'completed', 'machine_start')).toBe('released');
    expect(await w.store.getJob(runId, call.jobId)).toMatchObject({
      status: 'failed',
      outcome: 'machine',
      answeredBy: 'machine_start',
    });
    // The run's other lead, in the freed slot (the release carried it to the dispatch it asked for).
    expect(await w.dispatch()).toBe(1);
    expect(w.telephony.live(runId)).toHaveLength(1);
    expect(await w.store.getRun(runId)).toMatchObject({ active: 1, failed: 1, outcomes: { machine: 1 } });
  });

  it('hangs up a fax, and a machine DetectMessageEnd has no voicemail for', async () => {
    const fax = await oneCall({ ...hangup, machineDetection: 'DetectMessageEnd', voicemailTwiml: VOICEMAIL });
    await status(fax.w, fax.call.sid, 'in-progress');
    expect(await verdict(fax.w, fax.call.sid, 'fax')).toBe('hung-up');
    expect(fax.w.telephony.redirects).toEqual([]);
    expect(fax.w.telephony.hangUps).toEqual([fax.call.sid]);

    const silent = await oneCall({ ...hangup, machineDetection: 'DetectMessageEnd' });
    await status(silent.w, silent.call.sid, 'in-progress');
    expect(await verdict(silent.w, silent.call.sid, 'machine_end_silence')).toBe('hung-up');
    expect(silent.w.telephony.hangUps).toEqual([silent.call.sid]);
  });

  it('leaves the voicemail, not a hang-up, once a greeting ends and the run has one', async () => {
    const { w, call } = await oneCall({
      ...hangup,
      machineDetection: 'DetectMessageEnd',
      voicemailTwiml: VOICEMAIL,
    });
    await status(w, call.sid, 'in-progress');
    expect(await verdict(w, call.sid, 'machine_end_beep')).toBe('voicemail');
    expect(await verdict(w, call.sid, 'machine_end_beep')).toBe('unchanged');
    expect(w.telephony.redirects).toEqual([{ callSid: call.sid, content: { twiml: VOICEMAIL } }]);
    expect(w.telephony.hangUps).toEqual([]);
  });

  it('never hangs up on a person or an unknown, nor with on_machine continue (or a run from before the option)', async () => {
    for (const [options, answeredBy] of [
      [hangup, 'human'],
      [hangup, 'unknown'],
      [{ ...hangup, onMachine: 'continue' }, 'machine_start'],
      [{ ...hangup, onMachine: 'continue' }, 'fax'],
      [{ machineDetection: 'Enable' }, 'machine_start'],
    ] satisfies [RunOptions, string][]) {
      const { w, call } = await oneCall(options);
      await status(w, call.sid, 'in-progress');
      expect(await verdict(w, call.sid, answeredBy), `${answeredBy} ${JSON.stringify(options)}`).toBe(
        'recorded',
      );
      expect(w.telephony.hangUps).toEqual([]);
      expect(w.telephony.calls.get(call.sid)?.status).toBe('in-progress');
    }
  });

  it('logs a refused or failed hang-up without a phone number and does not throw; the lead still ends machine', async () => {
    const refused = async (): Promise<CallUpdate> => ({
      kind: 'invalid-state',
      message: 'Call is not in progress',
    });
    const failing = async (): Promise<CallUpdate> => {
      throw new Error('connect ECONNREFUSED 10.0.0.7:443');
    };
    for (const [hangUpCall, expected] of [
      [refused, 'machine not hung up: the call is not live'],
      [failing, 'machine not hung up: ending the call failed'],
    ] as const) {
      const { w, runId, call } = await oneCall(hangup);
      const job = (await w.store.getJob(runId, call.jobId))!;
      const { log, lines, text } = recordingLog();
      await status(w, call.sid, 'in-progress');
      const callControl = { redirectCall: w.telephony.redirectCall.bind(w.telephony), hangUpCall };
      expect(await verdict(w, call.sid, 'machine_start', { callControl, log })).toBe('recorded');
      expect(lines.map((l) => l.message)).toContain(expected);
      expect(lines.find((l) => l.message === expected)?.context).toMatchObject({ runId, jobId: call.jobId });
      expect(text()).not.toContain(job.phone);
      expect(text()).not.toContain(job.phone.slice(1)); // nor without its +
      // The verdict stands: the call's final status ends the lead machine as it would have.
      expect(await status(w, call.sid, 'completed')).toBe('released');
      expect(await w.store.getJob(runId, call.jobId)).toMatchObject({ status: 'failed', outcome: 'machine' });
    }
  });

  it('sends no hang-up for a verdict after the final status (the call has ended)', async () => {
    const { w, call } = await oneCall(hangup);
    await status(w, call.sid, 'in-progress');
    expect(await status(w, call.sid, 'completed', 'machine_start')).toBe('released');
    expect(await verdict(w, call.sid, 'machine_start')).toBe('unchanged');
    expect(w.telephony.hangUps).toEqual([]);
  });

  it('logs that a machine was hung up, with the ids and the verdict, never the number', async () => {
    const { w, runId, call } = await oneCall(hangup);
    const job = (await w.store.getJob(runId, call.jobId))!;
    const { log, lines, text } = recordingLog();
    await status(w, call.sid, 'in-progress');
    await verdict(w, call.sid, 'machine_start', { log });
    expect(lines).toContainEqual({
      level: 'info',
      message: 'machine hung up',
      context: { runId, jobId: call.jobId, attempt: 1, answeredBy: 'machine_start' },
    });
    expect(text()).not.toContain(job.phone.slice(1));
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
        onMachine: 'hangup',
        retry: { on: ['machine', 'busy'], delaySeconds: 600, maxAttempts: 3 },
      },
      fields: [],
    });
  });

  it('hangs up on machines unless the run says continue, and stores which with the run', () => {
    expect(check({ machine_detection: 'Enable' })).toEqual({
      options: { machineDetection: 'Enable', onMachine: 'hangup' },
      fields: [],
    });
    expect(check({ machine_detection: 'Enable', on_machine: null }).options.onMachine).toBe('hangup');
    expect(check({ machine_detection: 'Enable', on_machine: 'continue' })).toEqual({
      options: { machineDetection: 'Enable', onMachine: 'continue' },
      fields: [],
    });
    expect(check({ machine_detection: 'DetectMessageEnd', on_machine: 'hangup' }).options.onMachine).toBe(
      'hangup',
    );
    // No detection: nothing to say about machines, and nothing stored.
    expect(check({})).toEqual({ options: {}, fields: [] });
    expect(optionsView({}).on_machine).toBeNull();
    expect(optionsView({ machineDetection: 'Enable', onMachine: 'hangup' }).on_machine).toBe('hangup');
    // A run created before the option existed plays on, and says so.
    expect(optionsView({ machineDetection: 'Enable' }).on_machine).toBe('continue');
  });

  it('refuses on_machine without detection, and any other value, by its field', () => {
    expect(check({ on_machine: 'hangup' }).fields).toEqual(['on_machine']);
    expect(check({ on_machine: 'continue' }).fields).toEqual(['on_machine']);
    expect(check({ machine_detection: 'Enable', on_machine: 'hang-up' }).fields).toEqual(['on_machine']);
    expect(check({ machine_detection: 'Enable', on_machine: 'voicemail' }).fields).toEqual(['on_machine']);
    expect(check({ machine_detection: 'Enable', on_machine: true }).fields).toEqual(['on_machine']);
    expect(check({ on_machine: 'Hangup' }).fields).toEqual(['on_machine']);
    // A misspelt mode is named once, not again through on_machine.
    expect(check({ machine_detection: 'enable', on_machine: 'hangup' }).fields).toEqual([
      'machine_detection',
    ]);
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
