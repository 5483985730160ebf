// @ts-check
// The runs API as the console calls it: the same JSON endpoints as the CLI, with the API key (when
// one is set) in x-api-key. Every failure is an ApiError carrying the API's `{code, message, details}`.

/**
 * The API's own types, generated from its OpenAPI document (npm run openapi), not kept by hand here.
 * @typedef {import('../../../cli/api-types.ts').components['schemas']} Schemas
 * @typedef {Schemas['LiveCall']} LiveSlot
 * @typedef {Schemas['RunStatus']} RunStatus
 * @typedef {Schemas['RunView']} Run
 * @typedef {Schemas['CallView']} Call
 * @typedef {Schemas['ErrorDetail']} ErrorDetail
 * @typedef {Schemas['Suppression']} Suppression
 * @typedef {{ apiUrl: string, apiKey: string }} Connection
 */

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status; 0 when the API could not be reached
   * @param {string} code
   * @param {string} message
   * @param {ErrorDetail[]} [details]
   */
  constructor(status, code, message, details = []) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** The route is not there: an API older than the console (e.g. before run controls). */
  get missingRoute() {
    return (this.status === 404 && /^No route/.test(this.message)) || this.status === 405;
  }
}

export class Api {
  /** @param {() => Connection} connection read on every request, so a new key applies at once */
  constructor(connection) {
    this.connection = connection;
  }

  /**
   * @template T
   * @param {string} method
   * @param {string} path
   * @param {{ body?: string, contentType?: string, idempotencyKey?: string }} [options]
   * @returns {Promise<T>}
   */
  async request(method, path, options = {}) {
    const { apiUrl, apiKey } = this.connection();
    /** @type {Record<string, string>} */
    const headers = { accept: 'application/json' };
    if (apiKey) headers['x-api-key'] = apiKey;
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    if (options.contentType) headers['content-type'] = options.contentType;
    // Relative to the page by default: the console and the API share an origin (local stack, CloudFront).
    const base = apiUrl ? apiUrl.replace(/\/+$/, '') : '.';
    let response;
    try {
      response = await fetch(`${base}${path}`, {
        method,
        headers,
        body: options.body ?? null,
        cache: 'no-store',
      });
    } catch {
      throw new ApiError(0, 'unreachable', `Cannot reach the API${apiUrl ? ` at ${apiUrl}` : ''}.`);
    }
    const text = await response.text();
    /** @type {any} */
    let parsed;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const error = parsed?.error;
      if (error && typeof error.message === 'string') {
        throw new ApiError(
          response.status,
          String(error.code ?? 'error'),
          error.message,
          error.details ?? [],
        );
      }
      const message = typeof parsed?.message === 'string' ? parsed.message : `HTTP ${response.status}`;
      throw new ApiError(response.status, `http_${response.status}`, message);
    }
    return parsed;
  }

  /**
   * @param {{ limit?: number, cursor?: string }} [options]
   * @returns {Promise<Schemas['RunList']>}
   */
  listRuns(options = {}) {
    return this.request('GET', `/runs${query({ limit: options.limit, cursor: options.cursor })}`);
  }

  /** @param {string} runId @returns {Promise<Run>} */
  getRun(runId) {
    return this.request('GET', `/runs/${encodeURIComponent(runId)}`);
  }

  /**
   * The CSV goes to the API as it is: the API parses it and names bad rows by their line in the file.
   * @param {string} csv
   * @param {number} concurrency
   * @param {Record<string, string>} [options] run options, by their query parameter (`machine_detection`)
   * @returns {Promise<Schemas['CreatedRun']>}
   */
  async createRunFromCsv(csv, concurrency, options = {}) {
    // One key for this upload and its retries: a retry returns the same run and queues what the first
    // try did not, so nobody is called twice.
    const idempotencyKey = crypto.randomUUID();
    const send = () =>
      this.request('POST', `/runs${query({ concurrency, ...options })}`, {
        body: csv,
        contentType: 'text/csv',
        idempotencyKey,
      });
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (error) {
        const retry =
          error instanceof ApiError && (error.status === 0 || error.code === 'queueing_incomplete');
        if (!retry || attempt >= 3) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
      }
    }
  }

  /**
   * @param {string} runId
   * @param {'pause' | 'resume' | 'cancel'} action
   * @param {{ hangup?: boolean }} [options]
   * @returns {Promise<Run>}
   */
  control(runId, action, options = {}) {
    return this.request(
      'POST',
      `/runs/${encodeURIComponent(runId)}/${action}${query({ hangup: options.hangup ? 'true' : undefined })}`,
    );
  }

  /**
   * @param {string} runId
   * @param {{ status?: string, outcome?: string, limit?: number, cursor?: string, revealPhone?: boolean }} [options]
   * @returns {Promise<Schemas['CallList']>}
   */
  listCalls(runId, options = {}) {
    return this.request(
      'GET',
      `/runs/${encodeURIComponent(runId)}/calls${query({
        status: options.status || undefined,
        outcome: options.outcome || undefined,
        limit: options.limit,
        cursor: options.cursor,
        reveal_phone: options.revealPhone ? 'true' : undefined,
      })}`,
    );
  }

  /**
   * @param {{ prefix?: string, limit?: number, cursor?: string }} [options]
   * @returns {Promise<Schemas['SuppressionList']>}
   */
  listSuppressions(options = {}) {
    return this.request(
      'GET',
      `/suppressions${query({ prefix: options.prefix || undefined, limit: options.limit, cursor: options.cursor })}`,
    );
  }

  /**
   * @param {string} phone as typed: the API reads it (E.164, or national with its DEFAULT_COUNTRY)
   * @param {{ reason?: string }} [details]
   * @returns {Promise<Suppression>}
   */
  putSuppression(phone, details = {}) {
    return this.request('PUT', `/suppressions/${encodeURIComponent(phone)}`, {
      body: JSON.stringify(details.reason ? { reason: details.reason } : {}),
      contentType: 'application/json',
    });
  }

  /** @param {string} phone @returns {Promise<void>} */
  deleteSuppression(phone) {
    return this.request('DELETE', `/suppressions/${encodeURIComponent(phone)}`);
  }

  /**
   * Every row or none: the API names a bad row by its line in the file.
   * @param {string} csv
   * @returns {Promise<Schemas['SuppressionsImported']>}
   */
  importSuppressions(csv) {
    return this.request('POST', '/suppressions', { body: csv, contentType: 'text/csv' });
  }
}

/** @param {Record<string, string | number | undefined>} params */
function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params))
    if (value !== undefined) search.set(name, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
}
