// @ts-check
// The run page's calls table: one row per lead, as GET /runs/{id}/calls lists them. A final call's
// status and outcome are one column (`failed: busy`), since they say the same thing twice otherwise.

import { byId, dateTime, duration, h, plural, replace, zone } from './dom.js';

/** @typedef {import('./api.js').Call} Call */

/** Shown while the first page of calls is on its way, so that a table still loading never looks empty. */
export function showCallsLoading() {
  const box = byId('calls-table');
  box.setAttribute('aria-busy', 'true');
  replace(box, h('p', { class: 'muted loading', role: 'status' }, 'Loading calls…'));
  /** @type {HTMLButtonElement} */ (byId('calls-more')).hidden = true;
}

/** `completed`, `failed: busy`, `failed: rejected (21211)`: the status, and the outcome when it adds to it. @param {Call} call */
function result(call) {
  const outcome = call.outcome && call.outcome !== call.status ? call.outcome : '';
  const code = call.error_code == null ? '' : ` (${call.error_code})`;
  return outcome ? `: ${outcome}${code}` : code;
}

/**
 * @param {Call[]} calls
 * @param {{ status: string, outcome: string }} filters what the calls were listed with ('' for any)
 * @param {boolean} more whether another page follows
 */
export function renderCallsTable(calls, { status, outcome }, more) {
  const which = outcome ? ` with outcome ${outcome}` : '';
  /** @type {HTMLButtonElement} */ (byId('calls-more')).hidden = !more;
  const box = byId('calls-table');
  box.removeAttribute('aria-busy');
  if (calls.length === 0) {
    replace(
      box,
      h(
        'p',
        { class: 'muted' },
        status || outcome ? `No ${status ? `${status} ` : ''}calls${which}.` : 'No calls yet.',
      ),
    );
    return;
  }
  const columns = [
    'Job',
    'Phone',
    'Status',
    'Answered by',
    'Attempts',
    'Dialed',
    'Answered',
    'Ended',
    'Talk',
    'Lead',
  ];
  replace(
    box,
    h('p', { class: 'hint' }, `Times are this browser's local time (UTC${zone()}).`),
    h(
      'div',
      { class: 'table-scroll' },
      h(
        'table',
        { class: 'data' },
        h(
          'caption',
          {},
          `${plural(calls.length, status ? `${status} call` : 'call')}${which} shown${more ? ' (more below)' : ''}`,
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
              h(
                'td',
                {},
                h('span', { class: 'badge', 'data-status': call.status }, call.status),
                result(call),
              ),
              h('td', {}, call.answered_by ?? ''),
              h('td', { class: 'num' }, String(call.attempts ?? '')),
              h('td', { class: 'nowrap' }, dateTime(call.dialed_at, false)),
              h('td', { class: 'nowrap' }, dateTime(call.answered_at, false)),
              h('td', { class: 'nowrap' }, dateTime(call.ended_at, false)),
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
    ),
  );
}
