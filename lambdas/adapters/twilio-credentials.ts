// (adapter) Where the Twilio credentials come from: Secrets Manager in AWS (cached, so a warm
// function does not call it per request), the environment locally. Never logged.

import { getSecret } from '@aws-lambda-powertools/parameters/secrets';

export interface TwilioCredentials {
  accountSid: string;
  authToken: string;
}

export interface CredentialSource {
  /**
   * `refresh` skips the cache: used when a signature fails, in case the token was rotated. Refreshes
   * are single-flight and at most one per SECRET_REFRESH_MIN_INTERVAL_MS.
   */
  get(options?: { refresh?: boolean }): Promise<TwilioCredentials>;
  /** Whether a refresh could return anything new. */
  readonly refreshable: boolean;
}

/** Seconds a fetched secret is trusted before it is read again. */
const SECRET_MAX_AGE_SECONDS = 300;
/**
 * A forced re-read (a signature that did not match) happens at most this often per warm function:
 * a rotated token is picked up within this time, while a flood of forged callbacks costs at most one
 * Secrets Manager read per interval instead of one each.
 */
export const SECRET_REFRESH_MIN_INTERVAL_MS = 30_000;

/**
 * Forced refreshes of a value, single-flight (callers during a refresh share it) and rate-limited (a
 * refresh within `minIntervalMs` of the last one started answers with what that one read).
 */
export function refreshGuard<T>(
  fetchFresh: () => Promise<T>,
  options: { minIntervalMs: number; now?: () => number },
): () => Promise<T> {
  const now = options.now ?? Date.now;
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    if (last && now() - last.at < options.minIntervalMs) return last.value;
    const value = fetchFresh();
    const entry = { at: now(), value };
    last = entry;
    // A failed read is not remembered: the next bad signature may try again.
    value.catch(() => {
      if (last === entry) last = undefined;
    });
    return value;
  };
}

export function credentialSource(env: {
  TWILIO_SECRET_ID?: string | undefined;
  TWILIO_ACCOUNT_SID?: string | undefined;
  TWILIO_AUTH_TOKEN?: string | undefined;
}): CredentialSource {
  const secretId = env.TWILIO_SECRET_ID;
  if (secretId) {
    const read = async (forceFetch: boolean): Promise<TwilioCredentials> => {
      const value = await getSecret<TwilioCredentials>(secretId, {
        transform: 'json',
        maxAge: SECRET_MAX_AGE_SECONDS,
        forceFetch,
        throwOnMissing: true,
      });
      if (!value?.accountSid || !value.authToken) {
        throw new Error('The Twilio secret must be JSON with "accountSid" and "authToken".');
      }
      return { accountSid: value.accountSid, authToken: value.authToken };
    };
    const refresh = refreshGuard(() => read(true), { minIntervalMs: SECRET_REFRESH_MIN_INTERVAL_MS });
    return {
      refreshable: true,
      get: (options = {}) => (options.refresh ? refresh() : read(false)),
    };
  }
  const { TWILIO_ACCOUNT_SID: accountSid, TWILIO_AUTH_TOKEN: authToken } = env;
  if (!accountSid || !authToken) {
    throw new Error('Set TWILIO_SECRET_ID (AWS) or TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (local).');
  }
  return { refreshable: false, get: async () => ({ accountSid, authToken }) };
}
