// (adapter) Twilio's request signature: X-Twilio-Signature over the exact URL and the sorted POST
// parameters, checked in constant time by Twilio's own library. Only its webhooks module is imported:
// the package's entry point pulls in the whole REST client (3.35 MB of a 4.7 MB bundle).

import { validateRequest } from 'twilio/lib/webhooks/webhooks.js';
import type { CredentialSource } from './twilio-credentials.ts';

const TWILIO_SIGNATURE_SHAPE = /^[A-Za-z0-9+/]{27}=$/;

export async function isSignedByTwilio(
  credentials: CredentialSource,
  signature: string | undefined,
  url: string,
  params: Record<string, string>,
): Promise<boolean> {
  if (!signature) return false;
  const { authToken } = await credentials.get();
  if (validateRequest(authToken, signature, url, params)) return true;
  // A rotated token: read the secret again (single-flight, rate-limited) before refusing. Only for a
  // signature of the shape Twilio sends (base64 of an HMAC-SHA1: 28 characters); anything else is
  // forged whatever the token.
  if (!credentials.refreshable || !TWILIO_SIGNATURE_SHAPE.test(signature)) return false;
  const fresh = await credentials.get({ refresh: true });
  return fresh.authToken !== authToken && validateRequest(fresh.authToken, signature, url, params);
}
