// (core) The few errors a client can be shown. They are mapped to HTTP in exactly one place
// (lambdas/handlers/http.ts); anything else is a 500 with no detail.

export interface ErrorDetail {
  /** Where the problem is, as a path into the request: `leads[3].phone`, `concurrency`, `body`. */
  field: string;
  /** 0-based index of the lead (row) the detail is about, when it is about one. */
  row?: number;
  /** For a CSV upload: the 1-based line the row starts on (header = line 1), as a spreadsheet numbers it. */
  line?: number;
  message: string;
}

export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(
    message: string,
    readonly details: ErrorDetail[],
  ) {
    super(message);
  }
}

export class PayloadTooLargeError extends Error {
  override readonly name = 'PayloadTooLargeError';
  constructor(
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
  }
}

export class UnsupportedMediaTypeError extends Error {
  override readonly name = 'UnsupportedMediaTypeError';
}

export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

/** The same Idempotency-Key came with a different request: the client has a bug, not a retry. */
export class IdempotencyKeyReusedError extends Error {
  override readonly name = 'IdempotencyKeyReusedError';
}

/** Thrown by a WorkQueue when some lead chunks were not queued: `queuedLeads` were (at least). */
export class LeadsNotQueuedError extends Error {
  override readonly name = 'LeadsNotQueuedError';
  constructor(
    readonly queuedLeads: number,
    options?: { cause?: unknown },
  ) {
    super(`leads not queued; ${queuedLeads} were`, options);
  }
}

/**
 * A run was created (or leads reserved on it) but not all of its leads reached the queue. The client
 * is told so, with the run, and whether retrying the same request finishes it: with an Idempotency-Key
 * the retry queues the leads again, and ingestion counts each chunk once, so nobody is called twice.
 */
export class QueueingIncompleteError extends Error {
  override readonly name = 'QueueingIncompleteError';
  constructor(
    readonly runId: string,
    readonly queuedLeads: number,
    readonly leads: number,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(
      retryable
        ? `Run ${runId} was accepted but only ${queuedLeads} of these ${leads} lead(s) are known to be queued; send the same request again with the same Idempotency-Key to queue the rest (no lead is called twice).`
        : `Run ${runId} was accepted but only ${queuedLeads} of these ${leads} lead(s) are known to be queued, and without an Idempotency-Key a retry cannot finish it: the run will not complete. Cancel it, and send an Idempotency-Key with every request.`,
      options,
    );
  }
}
