// Lead fields through every hop, on the real local stack (DynamoDB Local, the SQS emulator, the
// Twilio simulator over HTTP): for arbitrary JSON lead fields — numbers past 2^53 or near 0, empty or
// odd names, lone surrogates, U+FFFE/U+FFFF, emoji, controls, nested values — a request is either
// refused with a 400 naming the lead (row) and the field, or its run completes with every lead called
// once and its fields stored as they were sent. Never accepted and then stuck.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../tools/local/stack.ts';
import { startTwilioSimulator, type TwilioSimulator } from '../../tools/twilio-simulator/simulator.ts';
import { waitForRunCompleted } from '../support/runs.ts';

let stack: LocalStack;
let twilio: TwilioSimulator;

beforeAll(async () => {
  twilio = await startTwilioSimulator({ queuedMs: 0, ringMs: 20, talkMs: 40, jitter: 0, faults: {} });
  stack = await startLocalStack({
    port: 0,
    retryVisibilitySeconds: 1,
    twilio: {
      baseUrl: twilio.url,
      accountSid: twilio.accountSid,
      authToken: twilio.authToken,
      fromNumber: '+15005550006',
    },
    functionEnv: { POWERTOOLS_LOG_LEVEL: 'CRITICAL' },
  });
});

afterAll(async () => {
  await stack?.stop();
  await twilio?.stop();
});

/** Any UTF-16 code unit: lone surrogates, U+FFFE/U+FFFF and controls included. */
const anyUnits = fc.string({ unit: fc.nat(0xffff).map((code) => String.fromCharCode(code)), maxLength: 6 });
const text = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.string({ unit: 'binary', maxLength: 6 }), // any code point: emoji and other astral characters
  anyUnits,
  fc.constantFrom('😀', '\uffff', '\ufffe', '\u0000\u0001', 'שלום', '=1+2'),
);
/** A value as JSON text: raw numbers as JSON writes them, which a parse may not keep exactly. */
const valueText = fc.oneof(
  text.map((s) => JSON.stringify(s)),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.constantFrom(
    '12345678901234567890',
    '1e300',
    '1e400',
    '-1e-200',
    '-0',
    '9007199254740993',
    '0.1',
    '1e-7',
  ),
  fc.constantFrom('true', 'false', 'null'),
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
);
const fields = fc.array(fc.tuple(fc.oneof(text, fc.constant('')), valueText), { maxLength: 3 });
const request = fc.array(fields, { minLength: 1, maxLength: 3 });

/** Valid Israeli mobiles (+972 53x…), distinct per request. */
const phone = (run: number, lead: number) =>
  `+97253${String(run % 100).padStart(2, '0')}${String(1000 + lead)}1`;

let runNo = 0;

describe('lead fields, arbitrary JSON', () => {
  it('each request is refused with a 400 naming lead and field, or its run completes with every lead called once', async () => {
    await fc.assert(
      fc.asyncProperty(request, async (leads) => {
        const run = runNo++;
        const bodyText = `{"concurrency":3,"leads":[${leads
          .map(
            (lead, i) =>
              `{${[`"phone":"${phone(run, i)}"`, ...lead.map(([name, value]) => `${JSON.stringify(name)}:${value}`)].join(',')}}`,
          )
          .join(',')}]}`;
        const res = await fetch(new URL('/runs', stack.apiUrl), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: bodyText,
        });
        const body = (await res.json()) as {
          run_id: string;
          error?: { details: { field: string; row?: number }[] };
        };
        if (res.status === 400) {
          const [detail] = body.error!.details;
          expect(detail?.row).toBeTypeOf('number');
          expect(detail?.field).toMatch(new RegExp(`^leads\\[${detail?.row}\\]\\.`));
          return;
        }
        expect(res.status, JSON.stringify(body)).toBe(202);
        const sent = (JSON.parse(bodyText) as { leads: Record<string, unknown>[] }).leads;
        await waitForRunCompleted(stack.apiUrl, body.run_id, { timeoutMs: 30_000 });
        const calls = twilio.calls().filter((call) => call.run === body.run_id);
        expect(calls.map((call) => call.to).sort()).toEqual(sent.map((lead) => lead.phone).sort());
        const listed = await fetch(new URL(`/runs/${body.run_id}/calls?reveal_phone=true`, stack.apiUrl));
        const { calls: views } = (await listed.json()) as {
          calls: { phone: string; attributes: Record<string, unknown> }[];
        };
        for (const lead of sent) {
          const { phone: number, ...attributes } = lead;
          const view = views.find((v) => v.phone === number);
          // Through JSON both ways, so -0 and 0 compare equal (JSON writes both as 0).
          expect(JSON.parse(JSON.stringify(view?.attributes))).toEqual(
            JSON.parse(JSON.stringify(attributes)),
          );
        }
      }),
      {
        numRuns: 25,
        examples: [
          [[[['acct', '12345678901234567890']]]],
          [[[['', '"x"']]]],
          [[[['big', '1e300']]]],
          [[[['note', JSON.stringify('\uffff')]]]],
          [
            [
              [
                ['note', JSON.stringify('😀 שלום')],
                ['n', '1e-7'],
              ],
            ],
          ],
          [[[['nested', '{"a":[1]}']]]],
        ],
      },
    );
  });
});
