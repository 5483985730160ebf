// (adapter) Posting an event to the webhook endpoint, signed per the Standard Webhooks spec with its
// reference library: `webhook-id` (the event's stable id), `webhook-timestamp` (this try, in seconds)
// and `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`. The signing secret comes
// from Secrets Manager in AWS (cached), from the environment locally; it is never logged.

import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { Webhook } from 'standardwebhooks';
import type { DeliveryResult, WebhookDelivery, WebhookSender } from '../core/event-delivery.ts';
import { WEBHOOK_SECRET } from '../definitions/environment.ts';

/** Seconds a fetched signing secret is trusted before it is read again (a rotation is seen by then). */
const SECRET_MAX_AGE_SECONDS = 300;

export type SigningSecret = () => Promise<string>;

export function signingSecret(env: {
  EVENTS_WEBHOOK_SECRET_ID?: string | undefined;
  EVENTS_WEBHOOK_SECRET?: string | undefined;
}): SigningSecret {
  const secretId = env.EVENTS_WEBHOOK_SECRET_ID;
  if (secretId) {
    return async () => {
      const value = await getSecret<string>(secretId, {
        maxAge: SECRET_MAX_AGE_SECONDS,
        throwOnMissing: true,
      });
      const secret = typeof value === 'string' ? value.trim() : '';
      if (!WEBHOOK_SECRET.test(secret)) {
        throw new Error(
          'The events webhook secret must be "whsec_" followed by base64 (a Standard Webhooks secret).',
        );
      }
      return secret;
    };
  }
  const secret = env.EVENTS_WEBHOOK_SECRET;
  if (!secret) throw new Error('Set EVENTS_WEBHOOK_SECRET_ID (AWS) or EVENTS_WEBHOOK_SECRET (local).');
  return async () => secret;
}

export class HttpWebhookSender implements WebhookSender {
  private signer: { secret: string; webhook: Webhook } | undefined;

  constructor(private readonly options: { url: string; secret: SigningSecret; timeoutMs: number }) {}

  async send(delivery: WebhookDelivery): Promise<DeliveryResult> {
    const webhook = await this.webhook();
    const now = new Date();
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'dialgate-webhooks',
      'webhook-id': delivery.id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': webhook.sign(delivery.id, now, delivery.body),
    };
    try {
      const response = await fetch(this.options.url, {
        method: 'POST',
        headers,
        body: delivery.body,
        // A redirect is an answer that is not a 2xx: followed, it could lead a signed event anywhere.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      // Read and dropped, so that the connection can be reused.
      await response.arrayBuffer().catch(() => undefined);
      return response.ok
        ? { kind: 'delivered', status: response.status }
        : { kind: 'refused', status: response.status };
    } catch (error) {
      const reason = error instanceof Error && error.name === 'TimeoutError' ? 'timeout' : describe(error);
      return { kind: 'unreachable', reason };
    }
  }

  private async webhook(): Promise<Webhook> {
    const secret = await this.options.secret();
    if (this.signer?.secret !== secret) this.signer = { secret, webhook: new Webhook(secret) };
    return this.signer.webhook;
  }
}

/** The network error's own code (ECONNREFUSED, …) when it has one: never the URL or the secret. */
function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  return error instanceof Error ? error.name : 'error';
}
