// @ts-check
// One run, live: status and controls, a progress bar by state, the slots held now and for how long,
// the dial rate, outcomes, and the calls table with filters. Polls GET /runs/{id} every second while
// the run can still change.

import { ApiError } from './api.js';
import { byId, dateTime, duration, h, plural, replace, time } from './dom.js';

/** @typedef {import('./api.js').Run} Run @typedef {import('./api.js').Call} Call */

const POLL_MS = 1_000;
const CALLS_REFRESH_MS = 5_000;
const CALLS_PAGE = 50;
/** The dial rate is measured over this window. */
const RATE_WINDOW_MS = 60_000;

/** Bar segments, in the order they fill the bar; `waiting` is queued plus not yet ingested. */
const SEGMENTS = /** @type {const} */ ([
  ['completed', 'Completed'],
  ['failed', 'Failed'],
  ['canceled', 'Canceled'],
  ['calling', 'In a call'],
  ['dialing', 'Dialing'],
  ['waiting', 'Waiting'],
]);

export class RunView {
  /**
   * @param {import('./api.js').Api} api
   * @param {{ showError: (error: unknown) => void, clearError: () => void }} page
   */
  constructor(api, page) {
    this.api = api;
    this.page = page;
    this.section = byId('run-view');
    this.runId = '';
    /** @type {Run | undefined} */
    this.run = undefined;
    /** @type {number | undefined} */
    this.pollTimer = undefined;
    /** @type {number | undefined} */
    this.callsTimer = undefined;
    /** @type {{ at: number, started: number }[]} */
    this.samples = [];
    this.peakLive = 0;
    this.announced = { status: '', tenth: -1, at: 0 };
    /** @type {Call[]} */
    this.calls = [];
    /** @type {string | undefined} */
    this.callsCursor = undefined;
    this.callsPages = 0;
    this.generation = 0;

    byId('pause-button').addEventListener('click', () => void this.control('pause'));
    byId('resume-button').addEventListener('click', () => void this.control('resume'));
    byId('cancel-button').addEventListener('click', () => void this.control('cancel'));
    byId('calls-filter').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.loadCalls(true);
    });
    byId('calls-status').addEventListener('change', () => void this.loadCalls(true));
    byId('calls-reveal').addEventListener('change', () => void this.loadCalls(true));
    byId('calls-more').addEventListener('click', () => void this.loadCalls(false));
  }

  /** @param {string} runId */
  show(runId) {
    this.generation += 1;
    this.runId = runId;
    this.run = undefined;
    this.samples = [];
    this.peakLive = 0;
    this.announced = { status: '', tenth: -1, at: 0 };
    this.calls = [];
    this.callsCursor = undefined;
    this.callsPages = 0;
    byId('run-id').textContent = runId;
    replace(byId('run-status'), 'loading');
    replace(byId('control-result'));
    replace(byId('calls-table'));
    this.section.hidden = false;
    void this.poll(this.generation);
    void this.loadCalls(true);
  }

  hide() {
    this.generation += 1;
    this.section.hidden = true;
    clearTimeout(this.pollTimer);
    clearTimeout(this.callsTimer);
  }

  get ended() {
    const run = this.run;
    // `canceling` is not over yet: calls are ending and queued leads are being marked.
    return run !== undefined && (run.status === 'completed' || run.status === 'canceled');
  }

  /** @param {number} generation stops a poll loop that belongs to a run no longer shown */
  async poll(generation) {
    if (generation !== this.generation) return;
    try {
      const run = await this.api.getRun(this.runId);
      if (generation !== this.generation) return;
      this.render(run);
    } catch (error) {
      if (generation !== this.generation) return;
      if (error instanceof ApiError && error.status === 404) {
        this.page.showError(`No run with id “${this.runId}”.`);
        replace(byId('run-status'), 'not found');
        return;
      }
      this.page.showError(error);
    }
    // A finished run changes no more; keep a slow poll in case it was canceled with calls still ending.
    this.pollTimer = window.setTimeout(() => void this.poll(generation), this.ended ? 10 * POLL_MS : POLL_MS);
  }

  /** @param {Run} run */
  render(run) {
    const before = this.run;
    this.run = run;
    this.page.clearError();
    const status = byId('run-status');
    status.textContent = run.status;
    status.dataset.status = run.status;
    byId('run-created').textContent =
      `Created ${dateTime(run.created_at)} · ${plural(run.total_leads, 'lead')} · at most ` +
      `${plural(run.concurrency, 'live call')}`;

    /** @type {HTMLButtonElement} */ (byId('pause-button')).disabled = run.status !== 'running';
    /** @type {HTMLButtonElement} */ (byId('resume-button')).disabled = run.status !== 'paused';
    const cancelable = run.status === 'running' || run.status === 'paused';
    /** @type {HTMLButtonElement} */ (byId('cancel-button')).disabled = !cancelable;
    /** @type {HTMLInputElement} */ (byId('cancel-hangup')).disabled = !cancelable;

    this.renderProgress(run);
    this.renderLive(run);
    this.renderRate(run);
    this.renderOutcomes(run);
    // The calls table follows the run when it ends, so that its last state is the final one.
    if (before && before.status !== run.status) void this.loadCalls(this.callsPages <= 1);
  }

  /** @param {Run} run */
  renderProgress(run) {
    const waiting = run.queued + run.pending_ingest;
    /** @type {Record<string, number>} */
    const counts = {
      completed: run.completed,
      failed: run.failed,
      canceled: run.canceled,
      calling: run.calling,
      dialing: run.dialing,
      waiting,
    };
    const total = Math.max(run.total_leads, 1);
    const done = run.completed + run.failed + run.canceled;
    const bar = byId('progress-bar');
    replace(
      bar,
      SEGMENTS.filter(([key]) => (counts[key] ?? 0) > 0).map(([key, label]) => {
        const segment = h('span', { class: `segment ${key}`, title: `${label}: ${counts[key]}` });
        // Through the CSSOM: the page's CSP allows no style attributes.
        segment.style.width = `${(((counts[key] ?? 0) / total) * 100).toFixed(3)}%`;
        return segment;
      }),
    );
    const sentence =
      `${done} of ${run.total_leads} done (${run.completed} completed, ${run.failed} failed, ` +
      `${run.canceled} canceled), ${run.in_progress} live, ${waiting} waiting`;
    bar.setAttribute('aria-label', sentence);
    replace(
      byId('progress-legend'),
      SEGMENTS.map(([key, label]) =>
        h(
          'li',
          {},
          h('span', { class: `swatch ${key}`, 'aria-hidden': 'true' }),
          `${label} `,
          h('strong', {}, counts[key] ?? 0),
        ),
      ),
    );
    const summary = `${capitalize(run.status)}: ${sentence}.`;
    byId('progress-summary').textContent = summary;
    // Screen readers hear it when the status changes, at each tenth done, or every 30 s, not every second.
    const tenth = Math.floor((done / total) * 10);
    const now = Date.now();
    const a = this.announced;
    if (a.status !== run.status || a.tenth !== tenth || now - a.at > 30_000) {
      byId('progress-announce').textContent = summary;
      this.announced = { status: run.status, tenth, at: now };
    }
  }

  /** @param {Run} run */
  renderLive(run) {
    this.peakLive = Math.max(this.peakLive, run.in_progress);
    const count = byId('live-count');
    count.textContent = String(run.in_progress);
    count.dataset.live = String(run.in_progress);
    count.dataset.cap = String(run.concurrency);
    count.dataset.peak = String(this.peakLive);
    byId('live-cap').textContent = String(run.concurrency);
    byId('live-split').textContent =
      `dialing ${run.dialing} · in a call ${run.calling} · peak ${this.peakLive} while this page was open`;
    const slots = byId('live-slots');
    if (!run.live) {
      replace(slots);
      return;
    }
    if (run.live.length === 0) {
      replace(slots, h('p', { class: 'muted' }, 'No slot is held.'));
      return;
    }
    const now = Date.now();
    replace(
      slots,
      h(
        'table',
        { class: 'data compact' },
        h('caption', { class: 'visually-hidden' }, 'Slots held now'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Job', 'Attempt', 'State', 'Held for'].map((name) => h('th', { scope: 'col' }, name)),
          ),
        ),
        h(
          'tbody',
          {},
          [...run.live]
            .sort((a, b) => a.since.localeCompare(b.since))
            .map((slot) =>
              h(
                'tr',
                {},
                h('td', {}, h('code', {}, slot.job_id)),
                h('td', { class: 'num' }, String(slot.attempt)),
                h('td', {}, slot.state === 'calling' ? 'in a call' : 'dialing'),
                h('td', { class: 'num' }, duration(now - Date.parse(slot.since))),
              ),
            ),
        ),
      ),
    );
  }

  /** Calls started per minute: a lead leaves `queued` when it is dialed. @param {Run} run */
  renderRate(run) {
    const now = Date.now();
    const started = run.total_leads - run.pending_ingest - run.queued;
    this.samples.push({ at: now, started });
    while (this.samples.length > 2 && now - (this.samples[1]?.at ?? now) >= RATE_WINDOW_MS)
      this.samples.shift();
    const first = this.samples[0];
    const elapsed = first ? now - first.at : 0;
    const rate = byId('dial-rate');
    if (run.status === 'completed' || run.status === 'canceled') {
      rate.textContent = '–';
      byId('rate-detail').textContent = 'The run is over: no more calls will start.';
      return;
    }
    if (!first || elapsed < 2_000) {
      rate.textContent = '–';
      return;
    }
    const perMinute = ((started - first.started) / elapsed) * 60_000;
    rate.textContent = perMinute.toFixed(1);
    byId('rate-detail').textContent =
      `${started - first.started} calls started in the last ${duration(elapsed)}; ${started} of ` +
      `${run.total_leads} started in all.`;
  }

  /** @param {Run} run */
  renderOutcomes(run) {
    const entries = Object.entries(run.outcomes ?? {}).filter(([, n]) => n > 0);
    entries.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const box = byId('outcomes');
    if (entries.length === 0) {
      replace(box, h('p', { class: 'muted' }, 'No call has ended yet.'));
      return;
    }
    const ended = entries.reduce((sum, [, n]) => sum + n, 0);
    replace(
      box,
      h(
        'table',
        { class: 'data compact' },
        h('caption', { class: 'visually-hidden' }, 'Ended calls by outcome'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, 'Outcome'),
            h('th', { scope: 'col' }, 'Calls'),
            h('th', { scope: 'col' }, 'Share'),
          ),
        ),
        h(
          'tbody',
          {},
          entries.map(([outcome, n]) =>
            h(
              'tr',
              { class: outcome === 'completed' ? '' : 'bad' },
              h('th', { scope: 'row' }, outcome),
              h('td', { class: 'num' }, String(n)),
              h('td', { class: 'num' }, `${Math.round((n / ended) * 100)}%`),
            ),
          ),
        ),
      ),
    );
  }

  /** @param {'pause' | 'resume' | 'cancel'} action */
  async control(action) {
    const hangup = /** @type {HTMLInputElement} */ (byId('cancel-hangup')).checked;
    if (action === 'cancel') {
      const what = hangup
        ? 'Leads not called yet are dropped and live calls are hung up.'
        : 'Leads not called yet are dropped; live calls end on their own.';
      if (!window.confirm(`Cancel run ${this.runId}? ${what}`)) return;
    }
    const result = byId('control-result');
    const buttons = ['pause-button', 'resume-button', 'cancel-button'].map(
      (id) => /** @type {HTMLButtonElement} */ (byId(id)),
    );
    for (const button of buttons) button.disabled = true;
    replace(result, `${capitalize(action === 'cancel' ? 'canceling' : `${action.replace(/e$/, '')}ing`)}…`);
    try {
      const run = await this.api.control(this.runId, action, action === 'cancel' ? { hangup } : {});
      this.render(run);
      replace(result, `Run ${run.status}.`);
    } catch (error) {
      replace(result);
      if (error instanceof ApiError && error.missingRoute)
        this.page.showError('This API has no run controls yet.');
      else this.page.showError(error);
      if (this.run) this.render(this.run);
    }
  }

  /** @param {boolean} reset from the first page (a new filter), or the next page */
  async loadCalls(reset) {
    clearTimeout(this.callsTimer);
    const generation = this.generation;
    const status = /** @type {HTMLSelectElement} */ (byId('calls-status')).value;
    const revealPhone = /** @type {HTMLInputElement} */ (byId('calls-reveal')).checked;
    const box = byId('calls-table');
    try {
      const page = await this.api.listCalls(this.runId, {
        status,
        revealPhone,
        limit: CALLS_PAGE,
        ...(reset || !this.callsCursor ? {} : { cursor: this.callsCursor }),
      });
      if (generation !== this.generation) return;
      this.calls = reset ? page.calls : [...this.calls, ...page.calls];
      this.callsCursor = page.next_cursor ?? undefined;
      this.callsPages = reset ? 1 : this.callsPages + 1;
      this.renderCalls(status);
    } catch (error) {
      if (generation !== this.generation) return;
      if (error instanceof ApiError && error.missingRoute) {
        replace(box, h('p', { class: 'muted' }, 'This API does not list calls yet.'));
        return;
      }
      this.page.showError(error);
    }
    // Only the first page follows the run; once more pages are loaded the table stays put.
    const auto = /** @type {HTMLInputElement} */ (byId('calls-auto')).checked;
    if (auto && this.callsPages === 1 && !this.ended)
      this.callsTimer = window.setTimeout(() => void this.loadCalls(true), CALLS_REFRESH_MS);
  }

  /** @param {string} status */
  renderCalls(status) {
    /** @type {HTMLButtonElement} */ (byId('calls-more')).hidden = !this.callsCursor;
    const box = byId('calls-table');
    if (this.calls.length === 0) {
      replace(box, h('p', { class: 'muted' }, status ? `No ${status} calls.` : 'No calls yet.'));
      return;
    }
    const columns = [
      'Job',
      'Phone',
      'Status',
      'Outcome',
      'Attempts',
      'Error',
      'Dialed',
      'Answered',
      'Ended',
      'Talk',
      'Lead',
    ];
    replace(
      box,
      h(
        'table',
        { class: 'data' },
        h(
          'caption',
          {},
          `${plural(this.calls.length, status ? `${status} call` : 'call')} shown${this.callsCursor ? ' (more below)' : ''}`,
        ),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            columns.map((name) => h('th', { scope: 'col' }, name)),
          ),
        ),
        h(
          'tbody',
          {},
          this.calls.map((call) =>
            h(
              'tr',
              {},
              h('td', {}, h('code', {}, call.job_id)),
              h('td', {}, h('code', {}, call.phone)),
              h('td', {}, h('span', { class: 'badge', 'data-status': call.status }, call.status)),
              h('td', {}, call.outcome ?? ''),
              h('td', { class: 'num' }, String(call.attempts ?? '')),
              h('td', { class: 'num' }, call.error_code == null ? '' : String(call.error_code)),
              h('td', {}, time(call.dialed_at)),
              h('td', {}, time(call.answered_at)),
              h('td', {}, time(call.ended_at)),
              h(
                'td',
                { class: 'num' },
                call.answered_at && call.ended_at
                  ? duration(Date.parse(call.ended_at) - Date.parse(call.answered_at))
                  : '',
              ),
              h(
                'td',
                {},
                Object.entries(call.attributes ?? {})
                  .map(([name, value]) => `${name}: ${value}`)
                  .join(', '),
              ),
            ),
          ),
        ),
      ),
    );
  }
}

/** @param {string} text */
function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
