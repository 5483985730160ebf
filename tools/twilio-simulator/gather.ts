// A keypress, as Twilio reports one: the digits POSTed to the `<Gather>` action of the call's TwiML,
// signed with the auth token over the action URL and the parameters, like a status callback. The
// action's TwiML answer is kept on the call; one that hangs up ends the call (completed).

import { type CallState, isFinal, now, type SimState } from './state.ts';
import { API_VERSION, twilioSignature } from './wire.ts';

/** The action URL of the first `<Gather>` in inline TwiML (XML entities decoded); undefined for none. */
export function gatherAction(twiml: string | undefined): string | undefined {
  const gather = twiml?.match(/<Gather\b[^>]*>/)?.[0];
  const action = gather?.match(/\saction="([^"]*)"/)?.[1];
  if (!action) return undefined;
  return action
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&quot;', '"')
    .replaceAll('&apos;', "'")
    .replaceAll('&amp;', '&');
}

/** Sends the keypress; `hangUp` ends the call when the action's TwiML hangs up. */
export async function pressKeys(
  sim: SimState,
  call: CallState,
  url: string,
  digits: string,
  hangUp: () => void,
): Promise<void> {
  if (isFinal(call.status)) return;
  const params: Record<string, string> = {
    AccountSid: sim.accountSid,
    ApiVersion: API_VERSION,
    CallSid: call.sid,
    CallStatus: 'in-progress',
    Called: call.to,
    Caller: call.from,
    Digits: digits,
    Direction: 'outbound-api',
    FinishedOnKey: '',
    From: call.from,
    To: call.to,
  };
  const gather: NonNullable<CallState['gather']> = { url, digits, sentAt: now() };
  call.gather = gather;
  sim.log(`${call.sid} keys pressed`);
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        'User-Agent': 'TwilioProxy/1.1',
        'X-Twilio-Signature': twilioSignature(sim.authToken, url, params),
      },
      body: new URLSearchParams(params).toString(),
      signal: AbortSignal.timeout(sim.callbackTimeoutMs),
    });
    gather.responseStatus = response.status;
    gather.twiml = await response.text();
    if (response.ok && /<Hangup\s*\/?>/.test(gather.twiml)) hangUp();
  } catch (error) {
    gather.error = String((error as Error)?.message ?? error);
  }
  sim.changed();
}
