// @ts-check
// One run, live: status and controls, a progress bar by state, the slots held now and for how long,
// the dial rate, outcomes, and the calls table with filters. Polls GET /runs/{id} every second while
// the run can still change.

import { ApiError } from './api.js';
import { renderCallsTable, showCallsLoading } from './calls-table.js';
import { callsCsv } from './csv-export.js';
import { byId, dateTime, duration, h, plural, replace } from './dom.js';
import {
  capitalize,
  finishedStats,
  renderLive,
  renderOutcomes,
  renderProgress,
  renderRate,
} from './run-panels.js';

/** @typedef {import('./api.js').Run} Run @typedef {import('./api.js').Call} Call */

const POLL_MS = 1_000;
const CALLS_REFRESH_MS = 5_000;
const CALLS_PAGE = 50;
/** The download reads the calls in the API's largest pages. */
const DOWNLOAD_PAGE = 100;
/** A finished run's own rate and peak are read from at most this many calls (pages of 100). */
const STATS_MAX_CALLS = 2_000;

/** Enables the controls that `run` allows; none without a run. @param {Run | undefined} run */
function setControls(run) {
  const status = run?.status;
  const cancelable = status === 'running' || status === 'paused' || status === 'scheduled';
  /** @type {[string, boolean][]} */
  const controls = [
    ['pause-button', status === 'running' || status === 'scheduled'],
    ['resume-button', status === 'paused'],
    ['cancel-button', cancelable],
    ['cancel-hangup', cancelable],
  ];
  for (const [id, enabled] of controls) {
    const control = /** @type {HTMLButtonElement | HTMLInputElement} */ (byId(id));
    control.disabled = !enabled;
  }
}

/**
 * When the run may dial (start_at, expires_at), its failure breaker, and why it paused itself.
 * @param {Run} run
 */
function renderSchedule(run) {
  /** @type {string[]} */
  const parts = [];
  if (run.start_at)
    parts.push(`${run.status === 'scheduled' ? 'Starts' : 'Started'} ${dateTime(run.start_at)}`);
  if (run.expires_at) parts.push(`expires ${dateTime(run.expires_at)}`);
  if (run.pause_when) {
    const { failed_ratio: ratio, min_calls: calls } = run.pause_when;
    parts.push(`pauses itself when more than ${ratio} of the last ${plural(calls, 'call')} failed`);
  }
  const schedule = byId('run-schedule');
  schedule.hidden = parts.length === 0;
  schedule.textContent = parts.length === 0 ? '' : capitalize(parts.join(' · '));
  const reason = byId('run-pause-reason');
  reason.hidden = !run.pause_reason;
  reason.textContent = run.pause_reason ? `Paused by dialgate: ${run.pause_reason}` : '';
}

/**
 * The run's dialer policy, when it has one of its own: retries, what answering machines get, what a
 * number over the frequency cap does, and the opt-out key.
 * @param {Run} run
 */
function renderOptions(run) {
  /** @type {string[]} */
  const parts = [];
  if (run.retry) {
    const { on, delay_seconds: delay, max_attempts: attempts } = run.retry;
    parts.push(
      `retries ${on.join(', ')} ${delay === 0 ? 'at once' : `after ${duration(delay * 1000)}`}, ` +
        `at most ${plural(attempts, 'call')} per lead`,
    );
  }
  if (run.machine_detection) {
    // on_machine: what a machine or fax gets (runs from before the option say nothing: they play on).
    const onMachine = run.on_machine === 'continue' ? 'played the content' : 'hung up on once detected';
    parts.push(`answering machines detected (${run.machine_detection}) and ${onMachine}`);
  }
  if (run.frequency_cap === 'wait') parts.push('a number over the frequency cap waits for its next window');
  if (run.opt_out) {
    const { digit, message } = run.opt_out;
    parts.push(`callees opt out by pressing ${digit}${message ? ` (“${message}”)` : ''}`);
  }
  const options = byId('run-options');
  options.hidden = parts.length === 0;
  options.textContent = parts.length === 0 ? '' : capitalize(parts.join(' · '));
}

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
    /** @type {import('./run-panels.js').FinishedStats | undefined} */
    this.finished = undefined;
    this.finishedLoading = false;

    byId('pause-button').addEventListener('click', () => void this.control('pause'));
    byId('resume-button').addEventListener('click', () => void this.control('resume'));
    byId('cancel-button').addEventListener('click', () => void this.control('cancel'));
    byId('calls-filter').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.loadCalls(true);
    });
    byId('calls-status').addEventListener('change', () => void this.loadCalls(true));
    byId('calls-outcome').addEventListener('change', () => void this.loadCalls(true));
    byId('calls-reveal').addEventListener('change', () => void this.loadCalls(true));
    byId('calls-more').addEventListener('click', () => void this.loadCalls(false));
    byId('calls-download').addEventListener('click', () => void this.downloadCalls());
  }

  /** @param {string} runId */
  show(runId) {
    // Another run starts with all its calls listed, not filtered as the last one was.
    if (runId !== this.runId) {
      /** @type {HTMLSelectElement} */ (byId('calls-status')).value = '';
      /** @type {HTMLSelectElement} */ (byId('calls-outcome')).value = '';
    }
    this.generation += 1;
    this.runId = runId;
    this.run = undefined;
    this.samples = [];
    this.peakLive = 0;
    this.announced = { status: '', tenth: -1, at: 0 };
    this.calls = [];
    this.callsCursor = undefined;
    this.callsPages = 0;
    this.finished = undefined;
    this.finishedLoading = false;
    byId('run-id').textContent = runId;
    replace(byId('run-status'), 'loading');
    delete byId('run-status').dataset.status;
    replace(byId('run-created'));
    // The last run's options and schedule are not this one's: hidden until this run's first answer.
    for (const id of ['run-schedule', 'run-options', 'run-pause-reason']) byId(id).hidden = true;
    replace(byId('control-result'));
    replace(byId('rate-peak'));
    replace(byId('calls-download-result'));
    // Nothing can be done to a run before it is known to exist.
    setControls(undefined);
    byId('run-missing').hidden = true;
    byId('run-body').hidden = false;
    showCallsLoading();
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
      if (error instanceof ApiError && error.status === 404 && !error.missingRoute) {
        this.showMissing();
        return;
      }
      this.page.showError(error);
    }
    // A finished run changes no more; keep a slow poll in case it was canceled with calls still ending.
    this.pollTimer = window.setTimeout(() => void this.poll(generation), this.ended ? 10 * POLL_MS : POLL_MS);
  }

  /** An unknown run: a message instead of the run's panels, and nothing to press. */
  showMissing() {
    clearTimeout(this.callsTimer);
    this.page.clearError();
    setControls(undefined);
    replace(byId('run-status'), 'not found');
    byId('run-status').dataset.status = 'missing';
    byId('run-body').hidden = true;
    byId('run-missing-text').textContent =
      `There is no run with id “${this.runId}” at this API. Check the id, or the API URL under Connection.`;
    byId('run-missing').hidden = false;
  }

  /** Reads the finished run's calls once, for its own average dial rate and peak. */
  async loadFinishedStats() {
    if (this.finishedLoading) return;
    this.finishedLoading = true;
    const generation = this.generation;
    /** @type {Call[]} */
    const calls = [];
    /** @type {string | undefined} */
    let cursor;
    try {
      do {
        const page = await this.api.listCalls(this.runId, { limit: 100, ...(cursor ? { cursor } : {}) });
        calls.push(...page.calls);
        cursor = page.next_cursor ?? undefined;
      } while (cursor && calls.length < STATS_MAX_CALLS);
    } catch {
      return; // the live figures stay; the finished ones are a nicety
    }
    if (generation !== this.generation || !this.run) return;
    this.finished = finishedStats(calls, cursor !== undefined);
    renderRate(this, this.run);
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

    renderSchedule(run);
    renderOptions(run);
    setControls(run);

    renderProgress(this, run);
    renderLive(this, run);
    renderRate(this, run);
    renderOutcomes(run);
    if (this.ended) void this.loadFinishedStats();
    // The calls table follows the run when it ends, so that its last state is the final one.
    if (before && before.status !== run.status) void this.loadCalls(this.callsPages <= 1);
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
    const outcome = /** @type {HTMLSelectElement} */ (byId('calls-outcome')).value;
    const revealPhone = /** @type {HTMLInputElement} */ (byId('calls-reveal')).checked;
    const box = byId('calls-table');
    try {
      const page = await this.api.listCalls(this.runId, {
        status,
        outcome,
        revealPhone,
        limit: CALLS_PAGE,
        ...(reset || !this.callsCursor ? {} : { cursor: this.callsCursor }),
      });
      if (generation !== this.generation) return;
      this.calls = reset ? page.calls : [...this.calls, ...page.calls];
      this.callsCursor = page.next_cursor ?? undefined;
      this.callsPages = reset ? 1 : this.callsPages + 1;
      renderCallsTable(this.calls, { status, outcome }, this.callsCursor !== undefined);
    } catch (error) {
      if (generation !== this.generation) return;
      if (error instanceof ApiError && error.missingRoute) {
        replace(box, h('p', { class: 'muted' }, 'This API does not list calls yet.'));
        return;
      }
      // An unknown run: the run's own poll says so, once.
      if (error instanceof ApiError && error.status === 404) return;
      this.page.showError(error);
    }
    // Only the first page follows the run; once more pages are loaded the table stays put.
    const auto = /** @type {HTMLInputElement} */ (byId('calls-auto')).checked;
    if (auto && this.callsPages === 1 && !this.ended)
      this.callsTimer = window.setTimeout(() => void this.loadCalls(true), CALLS_REFRESH_MS);
  }

  /**
   * Every call with the table's status and outcome filters and phone setting, as the CLI's `calls --format csv`
   * writes them (csv-export.js: formula cells neutralised), saved as a file.
   */
  async downloadCalls() {
    const generation = this.generation;
    const runId = this.runId;
    const status = /** @type {HTMLSelectElement} */ (byId('calls-status')).value;
    const outcome = /** @type {HTMLSelectElement} */ (byId('calls-outcome')).value;
    const revealPhone = /** @type {HTMLInputElement} */ (byId('calls-reveal')).checked;
    const button = /** @type {HTMLButtonElement} */ (byId('calls-download'));
    const result = byId('calls-download-result');
    button.disabled = true;
    /** @type {Call[]} */
    const calls = [];
    /** @type {string | undefined} */
    let cursor;
    try {
      do {
        replace(result, `Preparing the CSV… ${plural(calls.length, 'call')} so far.`);
        const page = await this.api.listCalls(runId, {
          status,
          outcome,
          revealPhone,
          limit: DOWNLOAD_PAGE,
          ...(cursor ? { cursor } : {}),
        });
        if (generation !== this.generation) return;
        calls.push(...page.calls);
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
    } catch (error) {
      if (generation !== this.generation) return;
      replace(result);
      this.page.showError(error);
      return;
    } finally {
      button.disabled = false;
    }
    // A byte order mark first: without it Excel reads a UTF-8 file in the system's code page.
    const file = new Blob(['\uFEFF', callsCsv(calls), '\n'], { type: 'text/csv;charset=utf-8' });
    const url = URL.createObjectURL(file);
    const link = h('a', { href: url, download: `dialgate-${runId}${status ? `-${status}` : ''}-calls.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    // The download has its own copy once it has started.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    const masked = calls.some((call) => call.phone.includes('*'));
    replace(
      result,
      `${plural(calls.length, status ? `${status} call` : 'call')} saved as CSV` +
        (masked ? ', phone numbers masked (tick “show full phone numbers” to export them whole).' : '.'),
    );
  }
}
