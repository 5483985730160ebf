// (adapter) Where the Twilio credentials come from: Secrets Manager in AWS (cached, so a warm
// function does not call it per request), the environment locally. Never logged.

import { getSecret } from '@aws-lambda-powertools/parameters/secrets';

export interface TwilioCredentials {
  accountSid: string;
  authToken: string;
}

export interface CredentialSource {
  /** `refresh` skips the cache: used once when a signature fails, in case the token was rotated. */
  get(options?: { refresh?: boolean }): Promise<TwilioCredentials>;
  /** Whether a refresh could return anything new. */
  readonly refreshable: boolean;
}

/** Seconds a fetched secret is trusted before it is read again. */
const SECRET_MAX_AGE_SECONDS = 300;

export function credentialSource(env: {
  TWILIO_SECRET_ID?: string | undefined;
  TWILIO_ACCOUNT_SID?: string | undefined;
  TWILIO_AUTH_TOKEN?: string | undefined;
}): CredentialSource {
  const secretId = env.TWILIO_SECRET_ID;
  if (secretId) {
    return {
      refreshable: true,
      async get(options = {}) {
        const value = await getSecret<TwilioCredentials>(secretId, {
          transform: 'json',
          maxAge: SECRET_MAX_AGE_SECONDS,
          forceFetch: options.refresh ?? false,
          throwOnMissing: true,
        });
        if (!value?.accountSid || !value.authToken) {
          throw new Error('The Twilio secret must be JSON with "accountSid" and "authToken".');
        }
        return { accountSid: value.accountSid, authToken: value.authToken };
      },
    };
  }
  const { TWILIO_ACCOUNT_SID: accountSid, TWILIO_AUTH_TOKEN: authToken } = env;
  if (!accountSid || !authToken) {
    throw new Error('Set TWILIO_SECRET_ID (AWS) or TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (local).');
  }
  return { refreshable: false, get: async () => ({ accountSid, authToken }) };
}
