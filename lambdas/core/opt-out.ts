// (core) An opt-out by keypress: a run's `opt_out` puts its call content in a `<Gather numDigits="1">`
// whose action is the webhook's opt-out route (run, job and attempt in its query string, as the status
// callback's; Twilio signs the request the same way). Pressing the run's digit suppresses the number
// for good (reason `opt-out`, with the run and the time) before the callee hears goodbye.

import type { CallbackIds } from './callback-url.ts';
import type { CallRequest, Clock, Log, RunReader, SuppressionStore } from './ports.ts';
import type { OptOut } from './run-options.ts';

/** The reason of a suppression made by the callee's keypress. */
const OPT_OUT_REASON = 'opt-out';

/** The webhook's path for keypresses, under the Function URL that takes the status callbacks. */
export const OPT_OUT_PATH = '/opt-out';

/** Verbs Twilio lets a `<Gather>` hold: content made only of them is played inside it. */
const NESTABLE = new Set(['Say', 'Play', 'Pause']);

export function optOutUrl(webhookUrl: string, ids: Pick<CallbackIds, 'runId' | 'jobId' | 'attempt'>): string {
  const url = new URL(webhookUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${OPT_OUT_PATH}`;
  url.search = '';
  url.searchParams.set('run', ids.runId);
  url.searchParams.set('job', ids.jobId);
  url.searchParams.set('attempt', String(ids.attempt));
  return url.toString();
}

function escapeXml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

function optOutMessage(optOut: OptOut): string {
  return optOut.message ?? `To stop calls from us, press ${optOut.digit}.`;
}

/**
 * The call's content with the opt-out around it. Inline TwiML of Say, Play and Pause only is played
 * inside the Gather (a key pressed at any moment counts), the message after it; any other content (a
 * TwiML URL, or verbs a Gather cannot hold, such as Dial) follows a Gather that says the message first.
 */
export function withOptOut(
  content: CallRequest['content'],
  optOut: OptOut,
  actionUrl: string,
): { twiml: string } {
  const gather = `<Gather input="dtmf" numDigits="1" action="${escapeXml(actionUrl)}" method="POST"`;
  const message = `<Say>${escapeXml(optOutMessage(optOut))}</Say>`;
  if ('twiml' in content) {
    const inner = responseBody(content.twiml);
    if (inner !== undefined && topLevelVerbs(inner).every((verb) => NESTABLE.has(verb)))
      return { twiml: `<Response>${gather}>${inner}${message}</Gather></Response>` };
    if (inner !== undefined)
      return { twiml: `<Response>${gather} timeout="3">${message}</Gather>${inner}</Response>` };
  }
  const url = 'twimlUrl' in content ? content.twimlUrl : undefined;
  const then = url ? `<Redirect method="POST">${escapeXml(url)}</Redirect>` : '';
  return { twiml: `<Response>${gather} timeout="3">${message}</Gather>${then}</Response>` };
}

/** What is inside `<Response>…</Response>` (an XML declaration allowed before it). */
function responseBody(twiml: string): string | undefined {
  const match = twiml.trim().match(/^(?:<\?xml[^>]*\?>\s*)?<Response\s*>([\s\S]*)<\/Response>$/);
  return match?.[1];
}

/** The names of the elements at the top level of `xml`. */
function topLevelVerbs(xml: string): string[] {
  const verbs: string[] = [];
  let depth = 0;
  for (const tag of xml.matchAll(/<(\/?)([A-Za-z][\w:.-]*)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = tag;
    if (closing) depth -= 1;
    else {
      if (depth === 0) verbs.push(name!);
      if (!selfClosing) depth += 1;
    }
  }
  return verbs;
}

export interface OptOutDeps {
  store: RunReader & SuppressionStore;
  clock: Clock;
  log: Log;
}

/** What the callee hears after a keypress. */
const GOODBYE_TWIML = '<Response><Say>You will not be called again. Goodbye.</Say><Hangup/></Response>';
const HANG_UP_TWIML = '<Response><Hangup/></Response>';

/**
 * A keypress from a call of ours (the signature is checked before): the run's digit suppresses the
 * lead's number, read from the job (never from the request); another key ends the call.
 */
export async function applyOptOut(
  deps: OptOutDeps,
  ids: Pick<CallbackIds, 'runId' | 'jobId' | 'attempt'>,
  digits: string,
): Promise<{ twiml: string; suppressed: boolean }> {
  const run = await deps.store.getRunRecord(ids.runId);
  const digit = run?.options.optOut?.digit;
  const job =
    digit !== undefined && digits === digit ? await deps.store.getJob(ids.runId, ids.jobId) : undefined;
  if (!job) {
    deps.log.info('keypress not an opt-out', { runId: ids.runId, jobId: ids.jobId });
    return { twiml: HANG_UP_TWIML, suppressed: false };
  }
  await deps.store.putSuppression({
    phone: job.phone,
    reason: OPT_OUT_REASON,
    runId: ids.runId,
    createdAt: deps.clock.now().toISOString(),
  });
  deps.log.info('number opted out', { runId: ids.runId, jobId: ids.jobId, attempt: ids.attempt });
  return { twiml: GOODBYE_TWIML, suppressed: true };
}
