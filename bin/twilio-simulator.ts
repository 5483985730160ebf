// Runs the Twilio simulator on its own, for poking at it with curl or pointing a local stack at it.
//   PORT=4010 npx tsx bin/twilio-simulator.ts
// Optional: SIM_RING_MS, SIM_TALK_MS, SIM_JITTER (0..1), SIM_SEED (replayable jitter and faults),
// SIM_QUIET=1 (no per-call lines). Ctrl-C stops it.

import './node-version.ts';
import { mulberry32, startTwilioSimulator } from '../tools/twilio-simulator/simulator.ts';

function numberFrom(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`);
  return value;
}

const seed = numberFrom('SIM_SEED');
const options = {
  port: numberFrom('PORT') ?? 0,
  ringMs: numberFrom('SIM_RING_MS'),
  talkMs: numberFrom('SIM_TALK_MS'),
  jitter: numberFrom('SIM_JITTER'),
  ...(seed === undefined ? {} : { random: mulberry32(seed) }),
  ...(process.env.SIM_QUIET ? {} : { log: (line: string) => console.log(`[twilio-sim] ${line}`) }),
};
const simulator = await startTwilioSimulator(
  Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)),
);

console.log(`Twilio simulator listening on ${simulator.url}`);
console.log(`TWILIO_API_BASE_URL=${simulator.url}`);
console.log(`TWILIO_ACCOUNT_SID=${simulator.accountSid}`);
console.log(`TWILIO_AUTH_TOKEN=${simulator.authToken}`);

let stopping = false;
process.on('SIGINT', () => {
  if (stopping) process.exit(1);
  stopping = true;
  const { created, final, maxLive, callbacks } = simulator.stats();
  console.log(
    `\nstopping: ${created} calls created, ${final} final, max live ${maxLive}, ` +
      `${callbacks.delivered} callbacks delivered, ${callbacks.failed} failed`,
  );
  simulator.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
