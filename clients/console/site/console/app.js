// @ts-check
// The dialgate console: a runs list with "start a run" (CSV upload), and a live view per run
// (run-view.js). Plain modules, no framework and no build step: the files in this folder are what a
// browser loads, from the local stack or from the deployed site.

import { Api, ApiError } from './api.js';
import { byId, dateTime, h, replace } from './dom.js';
import { RunView } from './run-view.js';
import { SuppressionsView } from './suppressions-view.js';

const KEY_STORAGE = 'dialgate.apiKey';
const URL_STORAGE = 'dialgate.apiUrl';
/** How often the runs list refreshes itself while it is on screen. */
const RUNS_REFRESH_MS = 5_000;

/** The API key lives in sessionStorage: this tab only, gone when it closes, never sent as a cookie. */
function connection() {
  return {
    apiUrl: sessionStorage.getItem(URL_STORAGE) ?? '',
    apiKey: sessionStorage.getItem(KEY_STORAGE) ?? '',
  };
}

const api = new Api(connection);
const alertBox = byId('alert');

/** Shows an error for the whole page; an auth error also opens the connection form. @param {unknown} error */
export function showError(error) {
  const message = error instanceof Error ? error.message : String(error);
  alertBox.hidden = false;
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
    replace(alertBox, `${message} Enter the API key under “Connection”.`);
    const details = /** @type {HTMLDetailsElement} */ (byId('connection'));
    details.open = true;
    byId('api-key').focus();
    return;
  }
  replace(alertBox, message);
}

export function clearError() {
  alertBox.hidden = true;
  replace(alertBox);
}

function setUpConnection() {
  const form = /** @type {HTMLFormElement} */ (byId('connection-form'));
  const urlInput = /** @type {HTMLInputElement} */ (byId('api-url'));
  const keyInput = /** @type {HTMLInputElement} */ (byId('api-key'));
  const summary = byId('connection-summary');
  const show = () => {
    const { apiUrl, apiKey } = connection();
    urlInput.value = apiUrl;
    keyInput.value = apiKey;
    summary.textContent = `${apiUrl || 'this server'}${apiKey ? ', with key' : ''}`;
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const apiUrl = urlInput.value.trim();
    const apiKey = keyInput.value.trim();
    if (apiUrl) sessionStorage.setItem(URL_STORAGE, apiUrl);
    else sessionStorage.removeItem(URL_STORAGE);
    if (apiKey) sessionStorage.setItem(KEY_STORAGE, apiKey);
    else sessionStorage.removeItem(KEY_STORAGE);
    show();
    clearError();
    /** @type {HTMLDetailsElement} */ (byId('connection')).open = false;
    route();
  });
  byId('forget-key').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_STORAGE);
    show();
  });
  show();
}

// ---- runs list and "start a run" ---------------------------------------------------------------

class RunsView {
  constructor() {
    this.section = byId('runs-view');
    this.list = byId('runs-list');
    this.more = /** @type {HTMLButtonElement} */ (byId('runs-more'));
    /** @type {import('./api.js').Run[]} */
    this.runs = [];
    /** @type {string | undefined} */
    this.cursor = undefined;
    /** @type {number | undefined} */
    this.timer = undefined;
    this.olderLoaded = false;
    byId('runs-refresh').addEventListener('click', () => void this.load());
    this.more.addEventListener('click', () => void this.load(true));
    byId('create-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.create();
    });
    byId('open-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const id = /** @type {HTMLInputElement} */ (byId('open-run-id')).value.trim();
      if (id) location.hash = `#/runs/${encodeURIComponent(id)}`;
    });
  }

  show() {
    this.section.hidden = false;
    this.olderLoaded = false;
    void this.load();
  }

  hide() {
    this.section.hidden = true;
    clearTimeout(this.timer);
  }

  /** @param {boolean} [older] */
  async load(older = false) {
    clearTimeout(this.timer);
    try {
      const page = await api.listRuns({
        limit: 20,
        ...(older && this.cursor ? { cursor: this.cursor } : {}),
      });
      this.runs = older ? [...this.runs, ...page.runs] : page.runs;
      this.cursor = page.next_cursor ?? undefined;
      if (older) this.olderLoaded = true;
      this.render();
    } catch (error) {
      if (error instanceof ApiError && error.missingRoute) {
        replace(
          this.list,
          h('p', { class: 'muted' }, 'This API cannot list runs yet: open a run by its id.'),
        );
        return;
      }
      showError(error);
    }
    // Only the newest page refreshes itself: older pages stay as the user loaded them.
    if (!this.section.hidden && !this.olderLoaded)
      this.timer = window.setTimeout(() => void this.load(), RUNS_REFRESH_MS);
  }

  render() {
    this.more.hidden = !this.cursor;
    if (this.runs.length === 0) {
      replace(this.list, h('p', { class: 'muted' }, 'No runs yet. Start one above.'));
      return;
    }
    replace(
      this.list,
      h(
        'div',
        { class: 'table-scroll' },
        h(
          'table',
          { class: 'data' },
          h('caption', { class: 'visually-hidden' }, 'Runs, newest first'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Run', 'Status', 'Created', 'Progress', 'Done', 'Failed', 'Live'].map((name) =>
                h('th', { scope: 'col' }, name),
              ),
            ),
          ),
          h(
            'tbody',
            {},
            this.runs.map((run) => {
              const done = run.completed + run.failed + run.canceled;
              return h(
                'tr',
                {},
                h(
                  'td',
                  {},
                  h('a', { href: `#/runs/${encodeURIComponent(run.run_id)}` }, h('code', {}, run.run_id)),
                ),
                h('td', {}, h('span', { class: 'badge', 'data-status': run.status }, run.status)),
                h('td', {}, dateTime(run.created_at)),
                h(
                  'td',
                  {},
                  h('progress', {
                    max: Math.max(run.total_leads, 1),
                    value: done,
                    'aria-label': `${done} of ${run.total_leads} done`,
                  }),
                ),
                h('td', { class: 'num' }, `${done} / ${run.total_leads}`),
                h('td', { class: 'num' }, String(run.failed)),
                h('td', { class: 'num' }, `${run.in_progress} / ${run.concurrency}`),
              );
            }),
          ),
        ),
      ),
    );
  }

  async create() {
    const result = byId('create-result');
    const fileInput = /** @type {HTMLInputElement} */ (byId('leads-file'));
    const concurrencyInput = /** @type {HTMLInputElement} */ (byId('concurrency'));
    const detection = /** @type {HTMLSelectElement} */ (byId('machine-detection')).value;
    const button = /** @type {HTMLButtonElement} */ (byId('create-button'));
    const file = fileInput.files?.[0];
    const concurrency = Number(concurrencyInput.value);
    /** @param {string} message @param {HTMLElement} input */
    const invalid = (message, input) => {
      input.setAttribute('aria-invalid', 'true');
      replace(result, h('p', { class: 'error', role: 'alert' }, message));
      input.focus();
    };
    fileInput.removeAttribute('aria-invalid');
    concurrencyInput.removeAttribute('aria-invalid');
    if (!file) return invalid('Choose a CSV file of leads.', fileInput);
    if (!Number.isInteger(concurrency) || concurrency < 1)
      return invalid('Concurrency must be a whole number, 1 or more.', concurrencyInput);
    // The schedule in the browser's own time zone, sent as an instant; the breaker as its two fields.
    // The API checks them (a past start, an expiry before it, a ratio outside 0–1) and names the field.
    /** @type {Record<string, string>} */
    const options = {};
    /** @param {string} id */
    const inputValue = (id) => /** @type {HTMLInputElement} */ (byId(id)).value;
    if (inputValue('start-at')) options.start_at = new Date(inputValue('start-at')).toISOString();
    if (inputValue('expires-at')) options.expires_at = new Date(inputValue('expires-at')).toISOString();
    if (inputValue('pause-failed-ratio'))
      options['pause_when.failed_ratio'] = inputValue('pause-failed-ratio');
    if (inputValue('pause-min-calls')) options['pause_when.min_calls'] = inputValue('pause-min-calls');

    button.disabled = true;
    replace(result, h('p', {}, `Uploading ${file.name}…`));
    try {
      const created = await api.createRunFromCsv(await file.text(), concurrency, {
        ...(detection ? { machine_detection: detection } : {}),
        ...options,
      });
      replace(result, h('p', {}, `Run ${created.run_id} started with ${created.total_leads} leads.`));
      location.hash = `#/runs/${encodeURIComponent(created.run_id)}`;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status === 0 || error.status >= 500) {
        replace(result);
        showError(error);
        return;
      }
      // The API names each bad row by its line in the file.
      replace(
        result,
        h(
          'div',
          { class: 'error', role: 'alert' },
          h('p', {}, `${file.name}: ${error.message}`),
          error.details.length > 0 &&
            h(
              'ul',
              {},
              error.details.map((detail) =>
                h(
                  'li',
                  {},
                  `${detail.line !== undefined ? `line ${detail.line}: ` : ''}` +
                    `${detail.field ? `${detail.field}: ` : ''}${detail.message}`,
                ),
              ),
            ),
        ),
      );
    } finally {
      button.disabled = false;
    }
  }
}

// ---- routing -----------------------------------------------------------------------------------

const runsView = new RunsView();
const runView = new RunView(api, { showError, clearError });
const suppressionsView = new SuppressionsView(api, { showError });

/** @param {boolean} [moveFocus] on navigation, not on the first load */
function route(moveFocus = true) {
  const match = /^#\/runs\/([^/]+)$/.exec(location.hash);
  runsView.hide();
  runView.hide();
  suppressionsView.hide();
  clearError();
  if (location.hash === '#/suppressions') {
    suppressionsView.show();
    document.title = 'Suppressions · dialgate console';
    if (moveFocus) byId('suppressions-title').focus();
  } else if (match) {
    runView.show(decodeURIComponent(match[1] ?? ''));
    document.title = 'Run · dialgate console';
    if (moveFocus) byId('run-title').focus();
  } else {
    runsView.show();
    document.title = 'Runs · dialgate console';
    if (moveFocus) byId('runs-title').focus();
  }
}

setUpConnection();
window.addEventListener('hashchange', () => route());
route(false);
