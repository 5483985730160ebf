// (adapter) Twilio's request signature: X-Twilio-Signature over the exact URL and the sorted POST
// parameters, checked in constant time by Twilio's own library. Only its webhooks module is imported:
// the package's entry point pulls in the whole REST client (3.35 MB of a 4.7 MB bundle).

import { validateRequest } from 'twilio/lib/webhooks/webhooks.js';
import type { CredentialSource } from './twilio-credentials.ts';

export async function isSignedByTwilio(
  credentials: CredentialSource,
  signature: string | undefined,
  url: string,
  params: Record<string, string>,
): Promise<boolean> {
  if (!signature) return false;
  const { authToken } = await credentials.get();
  if (validateRequest(authToken, signature, url, params)) return true;
  // A rotated token: read the secret again, once, before refusing.
  if (!credentials.refreshable) return false;
  const fresh = await credentials.get({ refresh: true });
  return fresh.authToken !== authToken && validateRequest(fresh.authToken, signature, url, params);
}
