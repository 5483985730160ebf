// The runs API handler against DynamoDB Local and the SQS emulator: what is accepted is stored and
// queued; what is refused says which field and which row, and creates nothing.

import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { route } from '../../lambdas/handlers/api.ts';
import { handlerEnvironment, type TestAws, testAws } from '../support/aws.ts';
import { apiEvent } from '../support/events.ts';

let aws: TestAws;

async function itemCount() {
  const { Count } = await aws.dynamo.send(new ScanCommand({ TableName: aws.tableName, Select: 'COUNT' }));
  return Count ?? 0;
}
async function queuedMessages() {
  const { Attributes } = await aws.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: aws.queues.queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages'],
    }),
  );
  return Number(Attributes?.ApproximateNumberOfMessages);
}

beforeAll(async () => {
  aws = await testAws();
  Object.assign(process.env, {
    ...handlerEnvironment(aws),
    MAX_CONCURRENCY: '10',
    MAX_LEADS_PER_RUN: '200',
    POWERTOOLS_LOG_LEVEL: 'CRITICAL',
  });
});

describe('POST /runs', () => {
  it('accepts a run: 202, the run stored, its leads on the queue in chunks', async () => {
    const leads = Array.from({ length: 100 }, (_, i) => ({
      phone: `+1415555${String(i).padStart(4, '0')}`,
      name: `L${i}`,
    }));
    const res = await route(apiEvent('POST', '/runs', JSON.stringify({ leads })));
    expect(res.statusCode).toBe(202);
    const body = JSON.parse(res.body);
    expect(body).toEqual({ run_id: expect.any(String), status: 'running', total_leads: 100, concurrency: 3 });
    expect(await queuedMessages()).toBe(2); // 90 + 10

    const get = await route(apiEvent('GET', `/runs/${body.run_id}`));
    expect(get.statusCode).toBe(200);
    expect(JSON.parse(get.body)).toMatchObject({
      run_id: body.run_id,
      status: 'running',
      total_leads: 100,
      concurrency: 3,
      queued: 0,
      in_progress: 0,
      completed: 0,
      failed: 0,
      pending_ingest: 100,
    });
  });

  it.each([
    ['malformed JSON', '{"leads": [', 400, 'body', undefined],
    ['a body that is not an object', '[1,2]', 400, 'body', undefined],
    ['leads not a list', '{"leads": {"phone": "+14155550100"}}', 400, 'leads', undefined],
    ['no leads', '{"leads": []}', 400, 'leads', undefined],
    ['an invalid phone', '{"leads": [{"phone": "+14155550100"}, {"phone": "12"}]}', 400, 'leads[1].phone', 1],
    [
      'a number no country assigns (US area code 123)',
      '{"leads": [{"phone": "+14155550100"}, {"phone": "+1 123 456 7890"}]}',
      400,
      'leads[1].phone',
      1,
    ],
    [
      'a national number, no DEFAULT_COUNTRY being set',
      '{"leads": [{"phone": "052-234-5678"}]}',
      400,
      'leads[0].phone',
      0,
    ],
    [
      'a duplicate phone',
      '{"leads": [{"phone": "+14155550100"}, {"phone": "+1 415 555 0100"}]}',
      400,
      'leads[1].phone',
      1,
    ],
    [
      'a concurrency of 0',
      '{"leads": [{"phone": "+14155550100"}], "concurrency": 0}',
      400,
      'concurrency',
      undefined,
    ],
    [
      'a concurrency over the maximum',
      '{"leads": [{"phone": "+14155550100"}], "concurrency": 11}',
      400,
      'concurrency',
      undefined,
    ],
    [
      'too many leads',
      JSON.stringify({
        leads: Array.from({ length: 201 }, (_, i) => ({ phone: `+1415555${String(i).padStart(4, '0')}` })),
      }),
      413,
      'leads',
      undefined,
    ],
  ])(
    'refuses %s with %i naming the field and row, creating nothing',
    async (_case, body, status, field, row) => {
      const [itemsBefore, messagesBefore] = [await itemCount(), await queuedMessages()];
      const res = await route(apiEvent('POST', '/runs', body));
      expect(res.statusCode).toBe(status);
      const { error } = JSON.parse(res.body);
      expect(error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
      expect(error.details).toContainEqual(
        expect.objectContaining({ field, ...(row === undefined ? {} : { row }) }),
      );
      expect(await itemCount()).toBe(itemsBefore);
      expect(await queuedMessages()).toBe(messagesBefore);
    },
  );

  it('refuses a body that is not JSON with 415', async () => {
    const res = await route(
      apiEvent('POST', '/runs', 'phone\n+14155550100', { 'content-type': 'text/plain' }),
    );
    expect(res.statusCode).toBe(415);
    expect(JSON.parse(res.body).error.code).toBe('unsupported_media_type');
    // The answer names what is accepted, and for a form upload how to send a file instead.
    expect(JSON.parse(res.body).error.message).toBe(
      'Send the leads as text/csv or application/json (got "text/plain").',
    );
    const form = await route(
      apiEvent('POST', '/runs', '--x\r\n', { 'content-type': 'multipart/form-data; boundary=x' }),
    );
    expect(form.statusCode).toBe(415);
    expect(JSON.parse(form.body).error.message).toContain(
      "curl --data-binary @leads.csv -H 'content-type: text/csv'",
    );
  });
});

describe('on_machine', () => {
  const create = async (body: Record<string, unknown>, query: Record<string, string> | null = null) => {
    const csv = query !== null;
    const res = await route({
      ...apiEvent(
        'POST',
        '/runs',
        csv ? 'phone\n+972522345671\n' : JSON.stringify({ leads: [{ phone: '+972522345671' }], ...body }),
        { 'content-type': csv ? 'text/csv' : 'application/json' },
      ),
      queryStringParameters: query,
    });
    return { status: res.statusCode, body: JSON.parse(res.body) };
  };
  const view = async (runId: string) => JSON.parse((await route(apiEvent('GET', `/runs/${runId}`))).body);

  it('shows in the run view: hangup by default with detection, continue when asked, null without detection', async () => {
    const byDefault = await create({ machine_detection: 'Enable' });
    expect(byDefault.status).toBe(202);
    expect(await view(byDefault.body.run_id)).toMatchObject({
      machine_detection: 'Enable',
      on_machine: 'hangup',
    });

    const playOn = await create({ machine_detection: 'DetectMessageEnd', on_machine: 'continue' });
    expect(playOn.status).toBe(202);
    expect(await view(playOn.body.run_id)).toMatchObject({
      machine_detection: 'DetectMessageEnd',
      on_machine: 'continue',
    });

    const none = await create({});
    expect(await view(none.body.run_id)).toMatchObject({ machine_detection: null, on_machine: null });
  });

  it('is a query parameter of a CSV upload, refused there too without detection', async () => {
    const ok = await create({}, { machine_detection: 'Enable', on_machine: 'continue' });
    expect(ok.status).toBe(202);
    expect(await view(ok.body.run_id)).toMatchObject({ on_machine: 'continue' });

    const [itemsBefore, messagesBefore] = [await itemCount(), await queuedMessages()];
    const refused = await create({}, { on_machine: 'hangup' });
    expect(refused.status).toBe(400);
    expect(refused.body.error.details).toEqual([
      { field: 'on_machine', message: expect.stringContaining('needs machine_detection') },
    ]);
    const misspelt = await create({}, { machine_detection: 'Enable', on_machine: 'continu' });
    expect(misspelt.status).toBe(400);
    expect(misspelt.body.error.details).toEqual([
      { field: 'on_machine', message: 'expected hangup or continue' },
    ]);
    expect(await itemCount()).toBe(itemsBefore);
    expect(await queuedMessages()).toBe(messagesBefore);
  });
});

describe('GET /runs/{run_id}', () => {
  it('answers 404 for an unknown run', async () => {
    const res = await route(apiEvent('GET', '/runs/no-such-run'));
    expect(res.statusCode).toBe(404);
    expect(JSON.parse(res.body).error.code).toBe('not_found');
  });

  it('answers 405 for a method the path does not take, 404 for an unknown path', async () => {
    expect((await route(apiEvent('DELETE', '/runs'))).statusCode).toBe(405);
    expect((await route(apiEvent('GET', '/nothing'))).statusCode).toBe(404);
  });
});

describe('Idempotency-Key', () => {
  const post = (key: string, body: unknown) =>
    route(
      apiEvent('POST', '/runs', JSON.stringify(body), {
        'content-type': 'application/json',
        'idempotency-key': key,
      }),
    );

  it('returns the same run for retries with the same key, even racing ones', async () => {
    const body = { leads: [{ phone: '+14155550100' }, { phone: '+14155550101' }], concurrency: 2 };
    const before = await itemCount();
    const responses = await Promise.all([1, 2, 3, 4, 5].map(() => post('retry-me-1', body)));
    const runIds = new Set(responses.map((res) => JSON.parse(res.body).run_id));
    expect(responses.map((res) => res.statusCode)).toEqual([202, 202, 202, 202, 202]);
    expect(runIds.size).toBe(1);
    // One run item and one key item: no second run was created.
    expect(await itemCount()).toBe(before + 2);
    const again = await post('retry-me-1', body);
    expect(JSON.parse(again.body).run_id).toBe([...runIds][0]);
  });

  it('refuses a key reused with a different request (422), creating nothing', async () => {
    await post('retry-me-2', { leads: [{ phone: '+14155550100' }] });
    const before = await itemCount();
    const res = await post('retry-me-2', { leads: [{ phone: '+14155550199' }] });
    expect(res.statusCode).toBe(422);
    expect(JSON.parse(res.body).error.code).toBe('idempotency_key_reused');
    expect(await itemCount()).toBe(before);
  });

  it('refuses a malformed key', async () => {
    const res = await post('has spaces in it', { leads: [{ phone: '+14155550100' }] });
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body).error.details[0].field).toBe('Idempotency-Key');
  });
});

describe('unknown fields and parameters', () => {
  const withQuery = (
    event: ReturnType<typeof apiEvent>,
    query: Record<string, string>,
  ): ReturnType<typeof apiEvent> => ({ ...event, queryStringParameters: query });

  it.each([
    ['a misspelt option', { concurency: 2 }, 'concurency'],
    ['a start in the past', { start_at: '2026-11-29T09:00:00Z' }, 'start_at'],
    ['a start without an offset', { start_at: '2099-12-01T09:00:00' }, 'start_at'],
    [
      'an expiry before the start',
      {
        start_at: new Date(Date.now() + 7_200_000).toISOString(),
        expires_at: new Date(Date.now() + 3_600_000).toISOString(),
      },
      'expires_at',
    ],
    ['an unknown pause rule field', { pause_when: { failed: 10 } }, 'pause_when.failed'],
    ['a ratio outside 0–1', { pause_when: { failed_ratio: 1.2, min_calls: 10 } }, 'pause_when.failed_ratio'],
    ['an unknown retry field', { retry: { on: ['busy'], delay: 60 } }, 'retry.delay'],
    [
      'an unknown window field',
      { window: { time_zone: 'Asia/Jerusalem', start: '09:00', end: '20:00', tz: 'UTC' } },
      'window.tz',
    ],
    ['on_machine without detection', { on_machine: 'hangup' }, 'on_machine'],
    ['an unknown on_machine', { machine_detection: 'Enable', on_machine: 'hang_up' }, 'on_machine'],
    ['an on_machine that is not a word', { machine_detection: 'Enable', on_machine: 1 }, 'on_machine'],
  ])('POST /runs refuses %s with 400 naming it, creating nothing', async (_case, extra, field) => {
    const [itemsBefore, messagesBefore] = [await itemCount(), await queuedMessages()];
    const body = { leads: [{ phone: '+972522345677' }], ...extra };
    const res = await route(apiEvent('POST', '/runs', JSON.stringify(body)));
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body).error.details).toContainEqual(expect.objectContaining({ field }));
    expect(await itemCount()).toBe(itemsBefore);
    expect(await queuedMessages()).toBe(messagesBefore);
  });

  it('refuses unknown query parameters on every route with 400 naming them', async () => {
    const created = await route(
      apiEvent('POST', '/runs', JSON.stringify({ leads: [{ phone: '+972522345678' }] })),
    );
    const runId = JSON.parse(created.body).run_id as string;
    const cases: [ReturnType<typeof apiEvent>, string][] = [
      [apiEvent('POST', '/runs', JSON.stringify({ leads: [{ phone: '+972522345679' }] })), 'concurrency'],
      [apiEvent('GET', '/runs'), 'limt'],
      [apiEvent('GET', `/runs/${runId}`), 'verbose'],
      [apiEvent('POST', `/runs/${runId}/pause`), 'hangup'],
      [apiEvent('POST', `/runs/${runId}/resume`), 'now'],
      [apiEvent('POST', `/runs/${runId}/cancel`), 'hang_up'],
      [
        apiEvent('POST', `/runs/${runId}/leads`, JSON.stringify({ leads: [{ phone: '+972522345680' }] })),
        'x',
      ],
      [apiEvent('GET', `/runs/${runId}/calls`), 'statuses'],
    ];
    const itemsBefore = await itemCount();
    for (const [event, name] of cases) {
      const res = await route(withQuery(event, { [name]: '2' }));
      expect(res.statusCode, `${event.httpMethod} ${event.path}?${name}`).toBe(400);
      expect(JSON.parse(res.body).error.details).toContainEqual(expect.objectContaining({ field: name }));
    }
    expect(await itemCount()).toBe(itemsBefore);
    // The parameters each route does read still pass.
    expect((await route(withQuery(apiEvent('GET', '/runs'), { limit: '1' }))).statusCode).toBe(200);
    const calls = withQuery(apiEvent('GET', `/runs/${runId}/calls`), {
      status: 'queued',
      reveal_phone: 'false',
    });
    expect((await route(calls)).statusCode).toBe(200);
  });
});

describe('cursors', () => {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

  it('answers 400, never 500, to a crafted cursor', async () => {
    const created = await route(
      apiEvent('POST', '/runs', JSON.stringify({ leads: [{ phone: '+972531234567' }] })),
    );
    const runId = JSON.parse(created.body).run_id as string;
    const runPk = `RUN#${runId}`;
    const runsCursors = [
      '!!!',
      'x'.repeat(20_000),
      b64(null),
      b64([]),
      b64('RUN#1'),
      b64({}),
      b64({
        pk: `RUN#${'x'.repeat(3000)}`,
        sk: 'RUN',
        runList: 'RUNS',
        createdAt: '2026-01-01T00:00:00.000Z',
      }),
      b64({ pk: 'RUN#a', sk: 'RUN', runList: 'RUNS', createdAt: 'y'.repeat(2000) }),
      b64({ pk: 'RUN#', sk: 'RUN', runList: 'RUNS', createdAt: '2026-01-01T00:00:00.000Z' }),
      b64({ pk: 'RUN#a', sk: 'RUN', runList: 'RUNS', createdAt: '' }),
      b64({ pk: 'RUN#a', sk: 'RUN', runList: 'RUNS', createdAt: 5 }),
    ];
    const callsCursors = [
      '%%%',
      b64({ pk: runPk, sk: 'JOB#000001', evil: 'x' }),
      b64({ pk: runPk, sk: `JOB#${'9'.repeat(2000)}` }),
      b64({ pk: runPk, sk: 'JOB#' }),
      b64({ pk: runPk, sk: 'JOB#000001', queuedRun: runPk }),
      b64({ pk: 'RUN#other', sk: 'JOB#000001' }),
      b64({ pk: runPk, sk: 'RUN' }),
    ];
    for (const cursor of runsCursors) {
      const res = await route({ ...apiEvent('GET', '/runs'), queryStringParameters: { cursor } });
      expect(res.statusCode, `runs cursor ${cursor.slice(0, 60)}`).toBe(400);
      expect(JSON.parse(res.body).error.details[0].field).toBe('cursor');
    }
    for (const cursor of callsCursors) {
      for (const status of [undefined, 'queued']) {
        const res = await route({
          ...apiEvent('GET', `/runs/${runId}/calls`),
          queryStringParameters: { cursor, ...(status ? { status } : {}) },
        });
        expect(res.statusCode, `calls cursor ${cursor.slice(0, 60)}`).toBe(400);
        expect(JSON.parse(res.body).error.details[0].field).toBe('cursor');
      }
    }
  });
});

describe('POST /runs/{run_id}/leads with Idempotency-Key', () => {
  const append = (runId: string, key: string, body: unknown) =>
    route(
      apiEvent('POST', `/runs/${runId}/leads`, JSON.stringify(body), {
        'content-type': 'application/json',
        'idempotency-key': key,
      }),
    );

  it('reserves once for retries with the same key, even racing ones; the same key with other leads is 422', async () => {
    const created = await route(
      apiEvent('POST', '/runs', JSON.stringify({ leads: [{ phone: '+972542345677' }] })),
    );
    const runId = JSON.parse(created.body).run_id as string;
    const more = { leads: [{ phone: '+972542345678' }, { phone: '+972542345679' }] };
    const answers = await Promise.all([1, 2, 3, 4].map(() => append(runId, 'append-key-1', more)));
    expect(answers.map((res) => res.statusCode)).toEqual([202, 202, 202, 202]);
    expect(new Set(answers.map((res) => JSON.parse(res.body).first_job_id))).toEqual(new Set(['000001']));
    const again = await append(runId, 'append-key-1', more);
    expect(JSON.parse(again.body)).toMatchObject({ first_job_id: '000001', appended: 2, total_leads: 3 });
    // Another key is another append.
    const other = await append(runId, 'append-key-2', { leads: [{ phone: '+972542345680' }] });
    expect(JSON.parse(other.body)).toMatchObject({ first_job_id: '000003', total_leads: 4 });
    const reused = await append(runId, 'append-key-1', { leads: [{ phone: '+972542345681' }] });
    expect(reused.statusCode).toBe(422);
    expect(JSON.parse((await route(apiEvent('GET', `/runs/${runId}`))).body).total_leads).toBe(4);
  });
});
