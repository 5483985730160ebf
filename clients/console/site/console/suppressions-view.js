// @ts-check
// The suppression page: numbers dialgate never calls. Search by the first digits, add one, remove one,
// import a CSV file (every row or none; the API names bad rows by line).

import { ApiError } from './api.js';
import { byId, dateTime, h, replace } from './dom.js';

const PAGE = 50;

export class SuppressionsView {
  /**
   * @param {import('./api.js').Api} api
   * @param {{ showError: (error: unknown) => void }} page
   */
  constructor(api, page) {
    this.api = api;
    this.page = page;
    this.section = byId('suppressions-view');
    this.list = byId('suppressions-list');
    this.status = byId('suppressions-status');
    this.more = /** @type {HTMLButtonElement} */ (byId('suppressions-more'));
    this.prefixInput = /** @type {HTMLInputElement} */ (byId('suppressions-prefix'));
    /** @type {import('./api.js').Suppression[]} */
    this.items = [];
    /** @type {string | undefined} */
    this.cursor = undefined;
    byId('suppressions-search').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.load();
    });
    this.more.addEventListener('click', () => void this.load(true));
    byId('suppress-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.add();
    });
    byId('import-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.import();
    });
  }

  show() {
    this.section.hidden = false;
    void this.load();
  }

  hide() {
    this.section.hidden = true;
  }

  /** @param {boolean} [more] the next page, after those shown */
  async load(more = false) {
    const prefix = this.prefixInput.value.trim();
    this.prefixInput.removeAttribute('aria-invalid');
    try {
      const page = await this.api.listSuppressions({
        limit: PAGE,
        ...(prefix ? { prefix } : {}),
        ...(more && this.cursor ? { cursor: this.cursor } : {}),
      });
      this.items = more ? [...this.items, ...page.suppressions] : page.suppressions;
      this.cursor = page.next_cursor ?? undefined;
      this.render(prefix);
    } catch (error) {
      if (error instanceof ApiError && error.status === 400) {
        this.prefixInput.setAttribute('aria-invalid', 'true');
        replace(this.status, error.details[0]?.message ?? error.message);
        return;
      }
      this.page.showError(error);
    }
  }

  /** @param {string} prefix */
  render(prefix) {
    this.more.hidden = !this.cursor;
    const shown = `${this.items.length}${this.cursor ? '+' : ''}`;
    replace(
      this.status,
      this.items.length === 0
        ? prefix
          ? `No suppressed number starts with ${prefix}.`
          : 'No number is suppressed.'
        : `${shown} suppressed number${this.items.length === 1 ? '' : 's'}${prefix ? ` starting with ${prefix}` : ''}.`,
    );
    if (this.items.length === 0) {
      replace(this.list);
      return;
    }
    replace(
      this.list,
      h(
        'div',
        { class: 'table-scroll' },
        h(
          'table',
          { class: 'data', id: 'suppressions-table' },
          h('caption', { class: 'visually-hidden' }, 'Suppressed numbers, in E.164 order'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Phone', 'Reason', 'Run', 'Since', 'Until', ''].map((name) => h('th', { scope: 'col' }, name)),
            ),
          ),
          h(
            'tbody',
            {},
            this.items.map((item) =>
              h(
                'tr',
                { 'data-phone': item.phone },
                h('td', {}, h('code', {}, item.phone)),
                h('td', {}, item.reason),
                h(
                  'td',
                  {},
                  item.run_id
                    ? h(
                        'a',
                        { href: `#/runs/${encodeURIComponent(item.run_id)}` },
                        h('code', {}, item.run_id),
                      )
                    : '–',
                ),
                h('td', {}, dateTime(item.created_at)),
                h('td', {}, item.expires_at ? dateTime(item.expires_at) : 'for good'),
                h(
                  'td',
                  {},
                  h(
                    'button',
                    {
                      type: 'button',
                      class: 'secondary',
                      'aria-label': `Remove ${item.phone}`,
                      onclick: () => void this.remove(item.phone),
                    },
                    'Remove',
                  ),
                ),
              ),
            ),
          ),
        ),
      ),
    );
  }

  async add() {
    const phoneInput = /** @type {HTMLInputElement} */ (byId('suppress-phone'));
    const reasonInput = /** @type {HTMLInputElement} */ (byId('suppress-reason'));
    const result = byId('suppress-result');
    const phone = phoneInput.value.trim();
    const reason = reasonInput.value.trim();
    phoneInput.removeAttribute('aria-invalid');
    if (!phone) {
      phoneInput.setAttribute('aria-invalid', 'true');
      replace(result, h('p', { class: 'error', role: 'alert' }, 'Enter a phone number.'));
      phoneInput.focus();
      return;
    }
    try {
      const stored = await this.api.putSuppression(phone, reason ? { reason } : {});
      replace(result, h('p', {}, `${stored.phone} is suppressed (${stored.reason}).`));
      phoneInput.value = '';
      reasonInput.value = '';
      await this.load();
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 400) {
        this.page.showError(error);
        return;
      }
      phoneInput.setAttribute('aria-invalid', 'true');
      replace(
        result,
        h(
          'div',
          { class: 'error', role: 'alert' },
          h('p', {}, error.message),
          h(
            'ul',
            {},
            error.details.map((d) => h('li', {}, `${d.field ? `${d.field}: ` : ''}${d.message}`)),
          ),
        ),
      );
    }
  }

  /** @param {string} phone */
  async remove(phone) {
    try {
      await this.api.deleteSuppression(phone);
      replace(byId('suppress-result'), h('p', {}, `${phone} may be called again.`));
    } catch (error) {
      // Removed meanwhile (another tab, an expiry): the list below says how it is now.
      if (!(error instanceof ApiError) || error.status !== 404) {
        this.page.showError(error);
        return;
      }
    }
    await this.load();
  }

  async import() {
    const fileInput = /** @type {HTMLInputElement} */ (byId('import-file'));
    const button = /** @type {HTMLButtonElement} */ (byId('import-button'));
    const result = byId('import-result');
    const file = fileInput.files?.[0];
    fileInput.removeAttribute('aria-invalid');
    if (!file) {
      fileInput.setAttribute('aria-invalid', 'true');
      replace(result, h('p', { class: 'error', role: 'alert' }, 'Choose a CSV file of numbers.'));
      return;
    }
    button.disabled = true;
    replace(result, h('p', {}, `Importing ${file.name}…`));
    try {
      const { imported } = await this.api.importSuppressions(await file.text());
      replace(result, h('p', {}, `${file.name}: ${imported} number${imported === 1 ? '' : 's'} suppressed.`));
      await this.load();
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 400) {
        replace(result);
        this.page.showError(error);
        return;
      }
      replace(
        result,
        h(
          'div',
          { class: 'error', role: 'alert' },
          h('p', {}, `${file.name}: ${error.message}`),
          h(
            'ul',
            {},
            error.details.map((d) =>
              h(
                'li',
                {},
                `${d.line !== undefined ? `line ${d.line}: ` : ''}${d.field ? `${d.field}: ` : ''}${d.message}`,
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
