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
