// (client) The runs API over HTTP, as the CLI (and the tests) call it: openapi-fetch typed by
// api-types.ts, which `npm run openapi` generates from the API's OpenAPI document, so that paths,
// parameters, bodies and answers are the document's and not a second, hand-kept copy. Every failure
// becomes one of two errors: ApiError (the API answered, with its `{error: {code, message, details}}`
// when it sent one) or UnreachableError (no answer at all), so that exit codes are decided in one place.

import { randomUUID } from 'node:crypto';
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './api-types.ts';
import type { RunOptionsBody } from './run-options.ts';

type Schemas = components['schemas'];

/** GET /runs/{id}: the run's counters, its held slots and its options. */
export type RunDetails = Schemas['RunView'];
export type Call = Schemas['CallView'];
export type CreateRunResult = Schemas['CreatedRun'];
export type ErrorDetail = Schemas['ErrorDetail'];
export type Lead = Schemas['Lead'];
export type Suppression = Schemas['Suppression'];
type FromRunOutcome = Schemas['FromRun']['outcomes'][number];

export interface Page<T> {
  items: T[];
  nextCursor: string | undefined;
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
  }
}

export class UnreachableError extends Error {
  override readonly name = 'UnreachableError';
}

export type RunAction = 'pause' | 'resume' | 'cancel';

/** Tries of a create that did not get a whole answer (see createRun). */
const CREATE_TRIES = 3;

const CONTROL_PATHS = {
  pause: '/runs/{run_id}/pause',
  resume: '/runs/{run_id}/resume',
  cancel: '/runs/{run_id}/cancel',
} as const;

export class ApiClient {
  readonly baseUrl: string;
  private readonly http: Client<paths>;
  constructor(
    baseUrl: string,
    apiKey?: string,
    private readonly timeoutMs = 30_000,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.http = createClient<paths>({
      baseUrl: this.baseUrl,
      headers: { accept: 'application/json', ...(apiKey ? { 'x-api-key': apiKey } : {}) },
    });
  }

  /** The call's answer when it succeeded; its failure as ApiError or UnreachableError otherwise. */
  private async call<T>(
    send: (signal: AbortSignal) => Promise<{ data?: T; error?: unknown; response: Response }>,
  ): Promise<T> {
    let result: Awaited<ReturnType<typeof send>>;
    try {
      result = await send(AbortSignal.timeout(this.timeoutMs));
    } catch (error) {
      // A success whose body is not JSON: openapi-fetch's parse fails after the API answered.
      if (error instanceof SyntaxError)
        throw new ApiError(200, 'bad_response', 'the API answered without JSON');
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new UnreachableError(`cannot reach the API at ${this.baseUrl} (${why})`);
    }
    if (!result.response.ok) throw toApiError(result.response.status, result.error);
    if (result.data === undefined)
      throw new ApiError(result.response.status, 'bad_response', 'the API answered without JSON');
    return result.data;
  }

  /**
   * A run of the given leads, or of another run's leads that ended with the given outcomes, under one
   * Idempotency-Key for this call and its retries: when the API could not reach the queue for every
   * lead (503 queueing_incomplete) or did not answer, the same request with the same key returns the
   * same run and queues the rest, so nobody is called twice.
   */
  async createRun(
    source: { leads: Record<string, string>[] } | { fromRun: string; outcomes: string[] },
    options: RunOptionsBody = {},
  ): Promise<CreateRunResult> {
    // CSV rows the CLI checked: parseCsvLeads gives each one its `phone`.
    const what =
      'leads' in source
        ? { leads: source.leads as Lead[] }
        : { from_run: { run_id: source.fromRun, outcomes: source.outcomes as FromRunOutcome[] } };
    const idempotencyKey = randomUUID();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.call((signal) =>
          this.http.POST('/runs', {
            body: { ...options, ...what },
            headers: { 'idempotency-key': idempotencyKey },
            signal,
          }),
        );
      } catch (error) {
        const retry =
          error instanceof UnreachableError ||
          (error instanceof ApiError && error.code === 'queueing_incomplete');
        if (!retry || attempt >= CREATE_TRIES) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
      }
    }
  }

  getRun(runId: string): Promise<RunDetails> {
    return this.call((signal) =>
      this.http.GET('/runs/{run_id}', { params: { path: { run_id: runId } }, signal }),
    );
  }

  async listRuns(options: { limit?: number; cursor?: string } = {}): Promise<Page<RunDetails>> {
    const page = await this.call((signal) =>
      this.http.GET('/runs', {
        params: {
          query: {
            ...(options.limit === undefined ? {} : { limit: String(options.limit) }),
            ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
          },
        },
        signal,
      }),
    );
    return { items: page.runs, nextCursor: page.next_cursor ?? undefined };
  }

  control(runId: string, action: RunAction, options: { hangup?: boolean } = {}): Promise<RunDetails> {
    const path = { run_id: runId };
    return this.call((signal) =>
      action === 'cancel'
        ? this.http.POST(CONTROL_PATHS.cancel, {
            params: { path, query: options.hangup ? { hangup: 'true' } : {} },
            signal,
          })
        : this.http.POST(CONTROL_PATHS[action], { params: { path }, signal }),
    );
  }

  async listCalls(
    runId: string,
    options: {
      status?: string;
      outcome?: string;
      limit?: number;
      cursor?: string;
      revealPhone?: boolean;
    } = {},
  ): Promise<Page<Call>> {
    const page = await this.call((signal) =>
      this.http.GET('/runs/{run_id}/calls', {
        params: {
          path: { run_id: runId },
          query: {
            ...(options.status === undefined ? {} : { status: options.status }),
            ...(options.outcome === undefined ? {} : { outcome: options.outcome }),
            ...(options.limit === undefined ? {} : { limit: String(options.limit) }),
            ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
            ...(options.revealPhone ? { reveal_phone: 'true' as const } : {}),
          },
        },
        signal,
      }),
    );
    return { items: page.calls, nextCursor: page.next_cursor ?? undefined };
  }

  /** Suppresses a number (any form the API reads: E.164, or national with its DEFAULT_COUNTRY). */
  putSuppression(phone: string, body: { reason?: string; expires_at?: string } = {}): Promise<Suppression> {
    return this.call((signal) =>
      this.http.PUT('/suppressions/{phone}', { params: { path: { phone } }, body, signal }),
    );
  }

  /** Lifts a suppression; the API's 404 when the number was not suppressed. */
  async deleteSuppression(phone: string): Promise<void> {
    let result: { error?: unknown; response: Response };
    try {
      result = await this.http.DELETE('/suppressions/{phone}', {
        params: { path: { phone } },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new UnreachableError(
        `cannot reach the API at ${this.baseUrl} (${cause?.code ?? cause?.message ?? (error as Error).message})`,
      );
    }
    if (!result.response.ok) throw toApiError(result.response.status, result.error);
  }

  async listSuppressions(
    options: { prefix?: string; limit?: number; cursor?: string } = {},
  ): Promise<Page<Suppression>> {
    const page = await this.call((signal) =>
      this.http.GET('/suppressions', {
        params: {
          query: {
            ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
            ...(options.limit === undefined ? {} : { limit: String(options.limit) }),
            ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
          },
        },
        signal,
      }),
    );
    return { items: page.suppressions, nextCursor: page.next_cursor ?? undefined };
  }

  /** A CSV file of numbers, imported whole or not at all. */
  importSuppressions(csv: string): Promise<{ imported: number }> {
    return this.call((signal) =>
      this.http.POST('/suppressions', {
        body: csv,
        bodySerializer: (body: string) => body,
        headers: { 'content-type': 'text/csv' },
        signal,
      }),
    );
  }
}

/** The API's error shape, or API Gateway's own `{"message": "…"}` (throttling, a missing key). */
function toApiError(status: number, body: unknown): ApiError {
  const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)
    ?.error;
  if (error && typeof error.message === 'string') {
    const details = Array.isArray(error.details) ? (error.details as ErrorDetail[]) : [];
    return new ApiError(
      status,
      typeof error.code === 'string' ? error.code : 'error',
      error.message,
      details,
    );
  }
  const message = (body as { message?: unknown } | undefined)?.message;
  const text = typeof body === 'string' ? body.trim().slice(0, 200) : '';
  return new ApiError(
    status,
    `http_${status}`,
    typeof message === 'string' ? message : text || `HTTP ${status}`,
  );
}
