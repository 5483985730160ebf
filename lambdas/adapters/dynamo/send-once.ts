// (adapter) A request sent at most once, whatever the SDK client's retry settings: for a write whose
// outcome, when unknown, must never be resent blindly (ingest's unconditional batch writes).

import type { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';

/** Raised instead of a second attempt of a request that `sendOnce` guards. */
class NotResent extends Error {
  override readonly name = 'NotResent';
  constructor(readonly firstError: unknown) {
    super('a request whose outcome is not known is not sent again');
  }
}

/**
 * `command`, sent at most once whatever the client's retry settings: the SDK retries inside its
 * retry middleware by running the steps after it again, so a middleware there (before the request is
 * signed and sent) sees every attempt and refuses the second. The retry strategy does not retry the
 * refusal (no status, no code: a client error). The first attempt's error is kept for the caller.
 */
export function sendOnce<C extends { middlewareStack: BatchWriteCommand['middlewareStack'] }>(command: C): C {
  let attempts = 0;
  let lastError: unknown;
  command.middlewareStack.add(
    (next) => async (args) => {
      attempts += 1;
      if (attempts > 1) throw new NotResent(lastError);
      try {
        return await next(args);
      } catch (error) {
        lastError = error;
        throw error;
      }
    },
    // override: a document client command's stack is concatenated twice (lib-dynamodb does the same).
    { step: 'deserialize', priority: 'high', name: 'dialgateSendOnce', override: true },
  );
  return command;
}

/** DynamoDB answered with a 4xx (throttled, invalid, …): the request was refused, nothing written. */
export function isRefusal(error: unknown): boolean {
  const first = error instanceof NotResent ? error.firstError : error;
  const status = (first as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
    ?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500;
}
