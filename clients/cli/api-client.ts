// (client) The runs API over HTTP, as the CLI (and the tests) call it. Every failure becomes one of
// two errors: ApiError (the API answered, with its `{error: {code, message, details}}` when it sent
// one) or UnreachableError (no answer at all), so that exit codes are decided in one place.

import type { RunView } from '../../lambdas/core/model.ts';

export interface LiveSlot {
  job_id: string;
  attempt: number;
  state: 'dialing' | 'calling';
  since: string;
}

/** GET /runs/{id}: the run's counters, and its held slots once the API reports them. */
export type RunDetails = RunView & { live?: LiveSlot[] };

export interface Call {
  job_id: string;
  phone: string;
  status: string;
  attempts: number;
  outcome?: string | null;
  error_code?: number | null;
  call_sid?: string | null;
  queued_at?: string | null;
  dialed_at?: string | null;
  answered_at?: string | null;
  ended_at?: string | null;
  attributes?: Record<string, unknown>;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | undefined;
}

export interface ErrorDetail {
  field?: string;
  /** 0-based index of the lead. */
  row?: number;
  /** A CSV upload's 1-based line. */
  line?: number;
  message: string;
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

export interface CreateRunResult {
  run_id: string;
  status: string;
  total_leads: number;
  concurrency: number;
}

export type RunAction = 'pause' | 'resume' | 'cancel';

export class ApiClient {
  readonly baseUrl: string;
  constructor(
    baseUrl: string,
    private readonly apiKey?: string,
    private readonly timeoutMs = 30_000,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  async request<T>(method: string, path: string, body?: { json: unknown } | { csv: string }): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.apiKey) headers['x-api-key'] = this.apiKey;
    let payload: string | undefined;
    if (body && 'json' in body) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body.json);
    } else if (body) {
      headers['content-type'] = 'text/csv';
      payload = body.csv;
    }
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(payload === undefined ? {} : { body: payload }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new UnreachableError(`cannot reach the API at ${this.baseUrl} (${why})`);
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) throw toApiError(response.status, parsed, text);
    if (parsed === undefined)
      throw new ApiError(response.status, 'bad_response', 'the API answered without JSON');
    return parsed as T;
  }

  /** A run of the given leads, or of another run's leads that ended with the given outcomes. */
  createRun(
    source: { leads: Record<string, string>[] } | { fromRun: string; outcomes: string[] },
    concurrency?: number,
  ): Promise<CreateRunResult> {
    const what =
      'leads' in source
        ? { leads: source.leads }
        : { from_run: { run_id: source.fromRun, outcomes: source.outcomes } };
    return this.request('POST', '/runs', {
      json: { ...what, ...(concurrency === undefined ? {} : { concurrency }) },
    });
  }

  getRun(runId: string): Promise<RunDetails> {
    return this.request('GET', `/runs/${encodeURIComponent(runId)}`);
  }

  async listRuns(options: { limit?: number; cursor?: string } = {}): Promise<Page<RunView>> {
    const page = await this.request<{ runs: RunView[]; next_cursor?: string | null }>(
      'GET',
      `/runs${query({ limit: options.limit, cursor: options.cursor })}`,
    );
    return { items: page.runs, nextCursor: page.next_cursor ?? undefined };
  }

  control(runId: string, action: RunAction, options: { hangup?: boolean } = {}): Promise<RunDetails> {
    return this.request(
      'POST',
      `/runs/${encodeURIComponent(runId)}/${action}${query({ hangup: options.hangup ? 'true' : undefined })}`,
    );
  }

  async listCalls(
    runId: string,
    options: { status?: string; limit?: number; cursor?: string; revealPhone?: boolean } = {},
  ): Promise<Page<Call>> {
    const page = await this.request<{ calls: Call[]; next_cursor?: string | null }>(
      'GET',
      `/runs/${encodeURIComponent(runId)}/calls${query({
        status: options.status,
        limit: options.limit,
        cursor: options.cursor,
        reveal_phone: options.revealPhone ? 'true' : undefined,
      })}`,
    );
    return { items: page.calls, nextCursor: page.next_cursor ?? undefined };
  }
}

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params))
    if (value !== undefined) search.set(name, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
}

function toApiError(status: number, parsed: unknown, text: string): ApiError {
  const error = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)
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
  // API Gateway's own answers (throttling, a missing key) are `{"message": "…"}`.
  const message = (parsed as { message?: unknown } | undefined)?.message;
  return new ApiError(
    status,
    `http_${status}`,
    typeof message === 'string' ? message : text.trim().slice(0, 200) || `HTTP ${status}`,
  );
}
