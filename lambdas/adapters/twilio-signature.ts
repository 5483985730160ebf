// (adapter) Twilio's request signature: X-Twilio-Signature over the exact URL and the sorted POST
// parameters, checked in constant time by Twilio's own library.

import twilio from 'twilio';
import type { CredentialSource } from './twilio-credentials.ts';

export async function isSignedByTwilio(
  credentials: CredentialSource,
  signature: string | undefined,
  url: string,
  params: Record<string, string>,
): Promise<boolean> {
  if (!signature) return false;
  const { authToken } = await credentials.get();
  if (twilio.validateRequest(authToken, signature, url, params)) return true;
  // A rotated token: read the secret again, once, before refusing.
  if (!credentials.refreshable) return false;
  const fresh = await credentials.get({ refresh: true });
  return fresh.authToken !== authToken && twilio.validateRequest(fresh.authToken, signature, url, params);
}
