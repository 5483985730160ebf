// @ts-check
// The run page's calls table: one row per lead, as GET /runs/{id}/calls lists them.

import { byId, duration, h, plural, replace, time } from './dom.js';

/** @typedef {import('./api.js').Call} Call */

/**
 * @param {Call[]} calls
 * @param {string} status the filter the calls were listed with ('' for all)
 * @param {boolean} more whether another page follows
 */
export function renderCallsTable(calls, status, more) {
  /** @type {HTMLButtonElement} */ (byId('calls-more')).hidden = !more;
  const box = byId('calls-table');
  if (calls.length === 0) {
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
        `${plural(calls.length, status ? `${status} call` : 'call')} shown${more ? ' (more below)' : ''}`,
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
        calls.map((call) =>
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
