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
    const form = /** @type {HTMLFormElement} */ (byId('create-form'));
    const result = byId('create-result');
    const fileInput = /** @type {HTMLInputElement} */ (byId('leads-file'));
    const concurrencyInput = /** @type {HTMLInputElement} */ (byId('concurrency'));
    const button = /** @type {HTMLButtonElement} */ (byId('create-button'));
    const file = fileInput.files?.[0];
    const concurrency = Number(concurrencyInput.value);
    /** @param {string} message @param {HTMLElement} input */
    const invalid = (message, input) => {
      input.setAttribute('aria-invalid', 'true');
      replace(result, h('p', { class: 'error', role: 'alert' }, message));
      input.focus();
    };
    for (const control of formControls(form)) control.removeAttribute('aria-invalid');
    if (!file) return invalid('Choose a CSV file of leads.', fileInput);
    if (!Number.isInteger(concurrency) || concurrency < 1)
      return invalid('Concurrency must be a whole number, 1 or more.', concurrencyInput);
    // A number field holding text has no value to send: said here, or it would be left out unnoticed.
    const notANumber = formControls(form).find(
      (control) => control instanceof HTMLInputElement && control.validity.badInput,
    );
    if (notANumber) return invalid(`${labelOf(notANumber)}: enter a number.`, notANumber);

    button.disabled = true;
    replace(result, h('p', {}, `Uploading ${file.name}…`));
    try {
      const created = await api.createRunFromCsv(await file.text(), concurrency, runOptions(form));
      replace(result, h('p', {}, `Run ${created.run_id} started with ${created.total_leads} leads.`));
      location.hash = `#/runs/${encodeURIComponent(created.run_id)}`;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status === 0 || error.status >= 500) {
        replace(result);
        showError(error);
        return;
      }
      // The API names each bad row by its line in the file, and each bad option by its field, which
      // is the name of the control that set it.
      /** @type {FormControl[]} */
      const refused = [];
      const aboutFile = error.details.length === 0 || error.details.some((d) => d.line !== undefined);
      replace(
        result,
        h(
          'div',
          { class: 'error', role: 'alert' },
          h('p', {}, aboutFile ? `${file.name}: ${error.message}` : error.message),
          error.details.length > 0 &&
            h(
              'ul',
              {},
              error.details.map((detail) => {
                const controls = detail.line === undefined ? controlsFor(form, detail.field) : [fileInput];
                refused.push(...controls);
                const label = detail.line === undefined && controls[0] ? labelOf(controls[0]) : '';
                const line = detail.line !== undefined ? `line ${detail.line}: ` : '';
                const field = !detail.field
                  ? ''
                  : label
                    ? `${label} (${detail.field}): `
                    : `${detail.field}: `;
                return h('li', {}, `${line}${field}${detail.message}`);
              }),
            ),
        ),
      );
      for (const control of refused) control.setAttribute('aria-invalid', 'true');
      refused[0]?.focus();
    } finally {
      button.disabled = false;
    }
  }
}

/** @typedef {HTMLInputElement | HTMLSelectElement} FormControl */

/** @param {HTMLFormElement} form @returns {FormControl[]} */
function formControls(form) {
  return [...form.elements].filter(
    /** @returns {element is FormControl} */
    (element) => element instanceof HTMLInputElement || element instanceof HTMLSelectElement,
  );
}

/**
 * The controls an API error's field names: the form's controls are named by the request's field paths
 * (`retry.delay_seconds`), and a whole object refused (`retry`) is all of its fields.
 * @param {HTMLFormElement} form @param {string} field
 */
function controlsFor(form, field) {
  return formControls(form).filter(
    (control) => control.name === field || control.name.startsWith(`${field}.`),
  );
}

/** What a person reads as the control's name: its label, or its group's legend for a box or a radio. */
function labelOf(/** @type {FormControl} */ control) {
  const grouped = control.type === 'checkbox' || control.type === 'radio';
  const text = grouped
    ? control.closest('fieldset')?.querySelector('legend')?.textContent
    : control.labels?.[0]?.textContent;
  return (text ?? control.name).replace(/\s+/g, ' ').trim();
}

/**
 * The run options the form sets, as the CSV upload's query parameters: each control is named by the
 * field it sets (`retry.delay_seconds`, `opt_out.digit`), the ticked boxes of one name are a list, and
 * an empty field sends nothing, so the API's defaults apply. Values go as typed: the API judges them
 * and names the field it refuses, as it does for the CLI.
 * @param {HTMLFormElement} form
 * @returns {Record<string, string>}
 */
function runOptions(form) {
  const data = new FormData(form);
  /** @type {Record<string, string>} */
  const options = {};
  for (const name of new Set(data.keys())) {
    if (name === 'leads' || name === 'concurrency') continue; // the body, and an argument of its own
    const value = data
      .getAll(name)
      .map((item) => (typeof item === 'string' ? item.trim() : ''))
      .filter(Boolean)
      .join(',');
    if (!value || (name === 'frequency_cap' && value === 'end')) continue; // `end` is the API's default
    // The schedule is picked in the browser's own time zone and sent as an instant.
    options[name] = name === 'start_at' || name === 'expires_at' ? new Date(value).toISOString() : value;
  }
  return options;
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
