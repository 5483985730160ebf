// Phone numbers through the whole local stack (the API over HTTP, DynamoDB Local, the SQS emulator, the
// dispatcher) with DEFAULT_COUNTRY=IL: national numbers are stored in E.164 (read from the table, not
// from dialgate's answers) and called in E.164 (seen by the Twilio double); numbers their country does
// not assign, and numbers of a type the run refuses, are refused by row or CSV line, for new runs and
// appends, JSON and CSV alike, with nothing created.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_AWS } from '../../tools/local/emulators.ts';
import { type LocalStack, startLocalStack } from '../../tools/local/stack.ts';
import { startTwilioSimulator, type TwilioSimulator } from '../../tools/twilio-simulator/simulator.ts';
import { runItems, waitForRunCompleted } from '../support/runs.ts';

// biome-ignore lint/suspicious/noExplicitAny: API answers are checked by the assertions, not by types
type Json = Record<string, any>;

/** An office landline of the deployment (Tel Aviv), allowed as a caller id. */
const OFFICE = '+97233761234';
/** A lead whose call talks until it is hung up. */
const TALKER = '+972542345678';

let stack: LocalStack;
let twilio: TwilioSimulator;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  twilio = await startTwilioSimulator({
    queuedMs: 0,
    ringMs: 10,
    talkMs: 20,
    behavior: ({ to }) =>
      to === TALKER ? { outcome: 'completed', talkMs: 600_000 } : { outcome: 'completed' },
  });
  stack = await startLocalStack({
    port: 0,
    pollers: 2,
    twilio: {
      baseUrl: twilio.url,
      accountSid: twilio.accountSid,
      authToken: twilio.authToken,
      fromNumber: '+15005550006',
    },
    functionEnv: { POWERTOOLS_LOG_LEVEL: 'ERROR', DEFAULT_COUNTRY: 'IL', ALLOWED_FROM_NUMBERS: OFFICE },
  });
  dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: stack.endpoints.dynamodb });
});

afterAll(async () => {
  await stack?.stop();
  await twilio?.stop();
});

async function api(method: string, path: string, body: string, contentType = 'application/json') {
  const res = await fetch(new URL(path, stack.apiUrl), {
    method,
    body,
    headers: { 'content-type': contentType },
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function runCount(): Promise<number> {
  const res = await fetch(new URL('/runs?limit=100', stack.apiUrl));
  return ((await res.json()) as Json).runs.length;
}

describe('with DEFAULT_COUNTRY=IL', () => {
  it('stores and calls national numbers in E.164, the caller id too', async () => {
    const leads = [
      { phone: '052-234-5678', name: 'Dana' }, // an Israeli mobile, written nationally
      { phone: '+1 (415) 555-0123', name: 'Sam' }, // a US number, with its country code
      { phone: '03-123-4567', name: 'Gil' }, // a Tel Aviv landline, written nationally
    ];
    const created = await api('POST', '/runs', JSON.stringify({ leads, from: '03-376-1234' }));
    expect(created.status).toBe(202);
    const runId = created.body.run_id as string;
    await waitForRunCompleted(stack.apiUrl, runId, { timeoutMs: 60_000 });

    const { jobs } = await runItems(dynamo, stack.tableName, runId);
    expect(jobs.map((job) => job.phone).sort()).toEqual(['+14155550123', '+97231234567', '+972522345678']);
    const calls = twilio.calls().filter((call) => call.run === runId);
    expect(calls.map((call) => call.to).sort()).toEqual(['+14155550123', '+97231234567', '+972522345678']);
    expect(new Set(calls.map((call) => call.from))).toEqual(new Set([OFFICE]));
  });

  it('refuses a number its country does not assign, naming the row; nothing is created', async () => {
    const before = await runCount();
    const refused = await api(
      'POST',
      '/runs',
      JSON.stringify({
        leads: [{ phone: '+972536651094' }, { phone: '+1 123 456 7890' }, { phone: '052-123-4567' }],
      }),
    );
    expect(refused.status).toBe(400);
    expect(refused.body.error.details).toEqual([
      {
        field: 'leads[1].phone',
        row: 1,
        message: 'not a valid number: no country with calling code +1 has this range',
      },
      { field: 'leads[2].phone', row: 2, message: 'not a valid number in IL: no such range there' },
    ]);
    expect(await runCount()).toBe(before);
  });

  it('CSV: phone_types in the query refuses a landline by line; the run keeps the types for appends', async () => {
    const before = await runCount();
    const csv = 'phone,name\n054-234-5679,Dana\n02-625-1111,Eli\n+44 20 7183 8750,Sam\n';
    const refused = await api('POST', '/runs?phone_types=mobile', csv, 'text/csv');
    expect(refused.status).toBe(400);
    expect(refused.body.error.details).toEqual([
      {
        field: 'phone',
        row: 1,
        line: 3,
        message: 'a fixed_line number; only mobile numbers are taken (phone_types)',
      },
      {
        field: 'phone',
        row: 2,
        line: 4,
        message: 'a fixed_line number; only mobile numbers are taken (phone_types)',
      },
    ]);
    expect(await runCount()).toBe(before);

    // The run's one call talks until it is hung up, so the run is still open for the appends.
    const created = await api(
      'POST',
      '/runs?phone_types=mobile&concurrency=1',
      'phone\n054-234-5678\n',
      'text/csv',
    );
    expect(created.status).toBe(202);
    const runId = created.body.run_id as string;
    await twilio.waitFor(() =>
      twilio.calls().some((call) => call.run === runId && call.status === 'in-progress'),
    );

    const appendedCsv = await api(
      'POST',
      `/runs/${runId}/leads`,
      'phone\n050-234-5678\n08-123-4567\n',
      'text/csv',
    );
    expect(appendedCsv.status).toBe(400);
    expect(appendedCsv.body.error.details).toEqual([
      { field: 'phone', row: 1, line: 3, message: expect.stringContaining('a fixed_line number') },
    ]);
    const appendedJson = await api(
      'POST',
      `/runs/${runId}/leads`,
      JSON.stringify({ leads: [{ phone: '+97226251111' }, { phone: '050 234 5679' }] }),
    );
    expect(appendedJson.status).toBe(400);
    expect(appendedJson.body.error.details).toEqual([
      { field: 'leads[0].phone', row: 0, message: expect.stringContaining('a fixed_line number') },
    ]);
    const accepted = await api(
      'POST',
      `/runs/${runId}/leads`,
      JSON.stringify({ leads: [{ phone: '050 234 5679' }] }),
    );
    expect(accepted.status).toBe(202);
    expect(accepted.body).toMatchObject({ appended: 1, total_leads: 2, phone_types: ['mobile'] });

    // Concurrency 1: the appended lead waits; ending the first call lets it be called, in E.164.
    twilio.hangUp(twilio.calls().find((call) => call.run === runId)!.sid);
    await waitForRunCompleted(stack.apiUrl, runId, { timeoutMs: 60_000 });
    const { jobs } = await runItems(dynamo, stack.tableName, runId);
    expect(jobs.map((job) => job.phone).sort()).toEqual(['+972502345679', '+972542345678']);
    expect(
      twilio
        .calls()
        .filter((call) => call.run === runId)
        .map((call) => call.to),
    ).toEqual(['+972542345678', '+972502345679']);
  });
});
