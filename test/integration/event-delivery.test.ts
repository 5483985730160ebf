// The webhook delivery on the SQS emulator, through the delivery handler and the local stand-in for
// Lambda's SQS event source: a try the endpoint refuses comes back (after the schedule's wait for that
// try, set as the message's own visibility timeout), signed afresh each time; after the last try the
// queue's redrive policy parks it in the dead-letter queue. And the sender itself against real HTTP: what it
// signs verifies with the `standardwebhooks` package; refusals, redirects, silence and closed ports
// are failed tries, never deliveries.

import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DELIVERY_ID_ATTRIBUTE } from '../../lambdas/adapters/event-sinks.ts';
import { HttpWebhookSender } from '../../lambdas/adapters/webhook-sender.ts';
import { type DialgateEvent, webhookBody } from '../../lambdas/core/events.ts';
import { EVENTS_DELIVERY } from '../../lambdas/definitions/resources.ts';
import { LOCAL_AWS } from '../../tools/local/emulators.ts';
import { createEventsQueues, type EventsQueues } from '../../tools/local/events-pipeline.ts';
import { loadFunction } from '../../tools/local/lambda-runtime.ts';
import { startSqsEventSource } from '../../tools/local/sqs-event-source.ts';
import { type TestAws, testAws } from '../support/aws.ts';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

interface Hit {
  at: number;
  headers: IncomingMessage['headers'];
  body: string;
}

async function endpoint(answer: (hit: Hit, n: number) => number | 'silence' | 'redirect') {
  const hits: Hit[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const hit = { at: Date.now(), headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      hits.push(hit);
      const status = answer(hit, hits.length);
      if (status === 'silence') return; // no answer at all
      if (status === 'redirect') res.writeHead(302, { location: '/elsewhere' }).end();
      else res.writeHead(status).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    hits,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

const event: DialgateEvent = {
  id: 'call.ended:r-1:000004:1:final',
  type: 'call.ended',
  timestamp: '2026-11-30T04:00:00.000Z',
  data: {
    run_id: 'r-1',
    job_id: '000004',
    attempt: 1,
    outcome: 'busy',
    final: true,
    answered_by: null,
    call_sid: 'CA0123',
    duration_seconds: 0,
    ended_at: '2026-11-30T04:00:00.000Z',
    lead: { phone: '+972534100200', name: 'דנה' },
  },
};

describe('HttpWebhookSender', () => {
  const sender = (url: string, timeoutMs = 2_000) =>
    new HttpWebhookSender({ url, secret: async () => SECRET, timeoutMs });
  const delivery = { id: event.id, body: webhookBody(event) };

  it('signs per Standard Webhooks: the receiver verifies id, timestamp and body with the shared secret', async () => {
    const server = await endpoint(() => 204);
    try {
      expect(await sender(server.url).send(delivery)).toEqual({ kind: 'delivered', status: 204 });
      const [hit] = server.hits;
      expect(hit!.body).toBe(delivery.body);
      expect(new Webhook(SECRET).verify(hit!.body, hit!.headers as Record<string, string>)).toEqual(
        JSON.parse(delivery.body),
      );
      expect(hit!.headers['webhook-id']).toBe(event.id);
      expect(hit!.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(Math.abs(Number(hit!.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
      // Another secret does not verify it: the signature is the secret's.
      const other = `whsec_${randomBytes(32).toString('base64')}`;
      expect(() => new Webhook(other).verify(hit!.body, hit!.headers as Record<string, string>)).toThrow();
    } finally {
      server.close();
    }
  });

  it('a non-2xx, a redirect (not followed), silence past the timeout and a closed port are failed tries', async () => {
    const server = await endpoint((hit) =>
      hit.body.includes('503') ? 503 : hit.body.includes('302') ? 'redirect' : 'silence',
    );
    try {
      const refuse = { id: 'a', body: '{"n":"503"}' };
      expect(await sender(server.url).send(refuse)).toEqual({ kind: 'refused', status: 503 });
      expect(await sender(server.url).send({ id: 'b', body: '{"n":"302"}' })).toEqual({
        kind: 'refused',
        status: 302,
      });
      expect(server.hits.filter((h) => h.body.includes('302'))).toHaveLength(1);
      expect(await sender(server.url, 300).send({ id: 'c', body: '{}' })).toEqual({
        kind: 'unreachable',
        reason: 'timeout',
      });
    } finally {
      server.close();
    }
    expect(await sender(server.url).send(delivery)).toMatchObject({ kind: 'unreachable' });
  });
});

describe('delivery through the queue', () => {
  let aws: TestAws;
  let queues: EventsQueues;
  beforeAll(async () => {
    aws = await testAws();
    queues = await createEventsQueues(aws.sqsEndpoint, `dialgate-events-${randomBytes(4).toString('hex')}`);
  });
  afterAll(() => aws?.sqs.destroy());

  it('retries a refused delivery after each wait of the schedule, then parks it in the dead-letter queue', async () => {
    const schedule = [1, 2, 1, 1, 1, 1, 1];
    expect(schedule).toHaveLength(EVENTS_DELIVERY.maxReceiveCount - 1);
    const server = await endpoint(() => 503);
    Object.assign(process.env, {
      AWS_REGION: LOCAL_AWS.region,
      AWS_ACCESS_KEY_ID: LOCAL_AWS.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_AWS.credentials.secretAccessKey,
      AWS_ENDPOINT_URL_SQS: aws.sqsEndpoint,
      EVENTS_QUEUE_URL: queues.eventsQueueUrl,
      EVENTS_WEBHOOK_URL: server.url,
      EVENTS_WEBHOOK_SECRET: SECRET,
      EVENTS_RETRY_SCHEDULE_SECONDS: schedule.join(','),
    });
    const fn = await loadFunction<SQSEvent, SQSBatchResponse | undefined>('dialgate-delivery', {
      entry: 'lambdas/handlers/delivery.ts',
      timeoutSeconds: 30,
      memoryMb: 256,
    });
    await aws.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.eventsQueueUrl,
        MessageBody: webhookBody(event),
        MessageAttributes: { [DELIVERY_ID_ATTRIBUTE]: { DataType: 'String', StringValue: event.id } },
      }),
    );
    const source = startSqsEventSource({
      fn,
      sqs: aws.sqs,
      queueUrl: queues.eventsQueueUrl,
      queueArn: queues.eventsQueueArn,
      region: LOCAL_AWS.region,
      batchSize: 10,
      pollers: 1,
      retryVisibilitySeconds: undefined,
    });
    try {
      let parked: string | undefined;
      const deadline = Date.now() + 90_000;
      while (parked === undefined && Date.now() < deadline) {
        const { Messages = [] } = await aws.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queues.eventsDlqUrl, WaitTimeSeconds: 1 }),
        );
        parked = Messages[0]?.Body;
      }
      expect(parked).toBe(webhookBody(event));
      // Every try of the schedule, each one signed (verifiable) and carrying the same id.
      expect(server.hits).toHaveLength(EVENTS_DELIVERY.maxReceiveCount);
      for (const hit of server.hits) {
        expect(hit.headers['webhook-id']).toBe(event.id);
        new Webhook(SECRET).verify(hit.body, hit.headers as Record<string, string>);
      }
    } finally {
      await source.stop();
      server.close();
    }
  });
});
