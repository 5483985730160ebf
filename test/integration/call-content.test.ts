// Personal call content on the real parts: runs made by the core on DynamoDB Local, their calls placed
// through the real Twilio adapter at the Twilio double, which keeps each call's Twiml or Url as
// received: that is the evidence of what the callee would hear. Refusals go through the API handler.

import type { APIGatewayProxyEvent } from 'aws-lambda';
import { SaxesParser } from 'saxes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { route } from '../../lambdas/handlers/api.ts';
import { apiEvent } from '../support/events.ts';
import { type Harness, startHarness } from '../support/policy-harness.ts';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    start: new Date('2026-11-30T08:00:00Z'),
    simulator: { queuedMs: 0, ringMs: 20, talkMs: 30, callbackTimeoutMs: 120_000 },
  });
  Object.assign(process.env, h.apiEnvironment(), {
    TWILIO_FROM_NUMBER: '+15005550006',
    MAX_TWIML_BYTES: '4000',
    TWIML_URL_ALLOWED_PREFIXES: 'https://twiml.example.com/',
  });
});

afterAll(async () => {
  await h?.stop();
});

const created = (runId: string) => h.twilio.calls().filter((call) => call.run === runId);

/** The `<Say>` elements of a TwiML document and their text; throws when it is not well-formed. */
function says(xml: string): { elements: string[]; text: string[] } {
  const parser = new SaxesParser();
  const elements: string[] = [];
  const text: string[] = [];
  let inSay = false;
  parser.on('error', (error) => {
    throw error;
  });
  parser.on('opentag', (tag) => {
    elements.push(tag.name);
    if (tag.name === 'Say') {
      inSay = true;
      text.push('');
    }
  });
  parser.on('closetag', (tag) => {
    if (tag.name === 'Say') inSay = false;
  });
  parser.on('text', (t) => {
    if (inSay) text[text.length - 1] += t;
  });
  parser.write(xml).close();
  return { elements, text };
}

async function post(
  path: string,
  body: string,
  contentType = 'application/json',
  query: Record<string, string> | null = null,
) {
  const event: APIGatewayProxyEvent = {
    ...apiEvent('POST', path, body, { 'content-type': contentType }),
    queryStringParameters: query,
  };
  const res = await route(event);
  return { status: res.statusCode, body: JSON.parse(res.body) };
}

describe('personal call content', () => {
  it('puts each lead’s fields in its TwiML, escaped: a name that looks like TwiML is read out, not obeyed', async () => {
    const names = ['<Say>', '</Say><Dial>+14155550123</Dial><Say>', 'Dana & "Noa"'];
    const leads = names.map((name, i) => ({ phone: `+97252400000${i}`, name }));
    const runId = await h.createRun({
      leads,
      concurrency: 3,
      twiml: '<Response><Say>Hello {{name}}, this is {{company|dialgate}}.</Say></Response>',
    });
    await h.idle();
    const calls = created(runId);
    expect(calls).toHaveLength(3);
    for (const call of calls) {
      const name = leads.find((lead) => lead.phone === call.to)!.name;
      const twiml = says(call.twiml!);
      expect(twiml.elements).toEqual(['Response', 'Say']); // no <Dial>, no second <Say>
      expect(twiml.text).toEqual([`Hello ${name}, this is dialgate.`]);
    }
    expect(h.errors).toEqual([]);
  });

  it('calls a TwiML URL with the run, the job, the attempt and the lead’s fields', async () => {
    const runId = await h.createRun({
      leads: [{ phone: '+972524000011', name: 'Dana', crm_id: 'C-1042' }],
      twiml_url: 'https://twiml.example.com/voice.xml',
    });
    await h.idle();
    const [call] = created(runId);
    const url = new URL(call!.url!);
    expect(url.origin + url.pathname).toBe('https://twiml.example.com/voice.xml');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      run_id: runId,
      job_id: '000000',
      attempt: '1',
      lead_name: 'Dana',
      lead_crm_id: 'C-1042',
    });
  });

  it('refuses a run whose template names a field some lead lacks, naming the field and the row', async () => {
    const twiml = '<Response><Say>Hello {{name}}</Say></Response>';
    const json = await post(
      '/runs',
      JSON.stringify({
        twiml,
        leads: [{ phone: '+972524000021', name: 'Dana' }, { phone: '+972524000022' }],
      }),
    );
    expect(json.status).toBe(400);
    expect(json.body.error.details).toEqual([
      { field: 'leads[1].name', row: 1, message: expect.stringContaining('twiml uses {{name}}') },
    ]);

    const csv = await post('/runs', 'phone,name\n+972524000023,Dana\n+972524000024,\n', 'text/csv', {
      twiml,
    });
    expect(csv.status).toBe(400);
    expect(csv.body.error.details).toEqual([
      { field: 'name', row: 1, line: 3, message: expect.stringContaining('{{name}}') },
    ]);

    const broken = await post(
      '/runs',
      JSON.stringify({
        twiml: '<Response><Say>{{name</Say></Response>',
        leads: [{ phone: '+972524000025' }],
      }),
    );
    expect(broken.status).toBe(400);
    expect(broken.body.error.details).toEqual([
      { field: 'twiml', message: expect.stringContaining('never closed') },
    ]);
  });

  it('refuses appended leads that lack what the run’s template names', async () => {
    const ok = await post(
      '/runs',
      JSON.stringify({
        twiml: '<Response><Say>Hello {{name}}</Say></Response>',
        leads: [{ phone: '+972524000031', name: 'Dana' }],
      }),
    );
    expect(ok.status).toBe(202);
    const appended = await post(
      `/runs/${ok.body.run_id}/leads`,
      JSON.stringify({
        leads: [
          { phone: '+972524000032', name: 'Noa' },
          { phone: '+972524000033', name: null },
        ],
      }),
    );
    expect(appended.status).toBe(400);
    expect(appended.body.error.details).toEqual([
      { field: 'leads[1].name', row: 1, message: expect.stringContaining('{{name}}') },
    ]);
  });
});
