// @ts-check
// The run page's panels, drawn from one GET /runs/{id} answer: progress by state, the slots held now,
// the dial rate and the outcomes. `view` keeps what they remember between polls (rate samples, the
// peak, what was last announced to screen readers).

import { byId, duration, h, replace } from './dom.js';

/** @typedef {import('./api.js').Run} Run */
/**
 * @typedef {{
 *   samples: { at: number, started: number }[],
 *   peakLive: number,
 *   announced: { status: string, tenth: number, at: number },
 * }} PanelState
 */

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

/** @param {PanelState} view @param {Run} run */
export function renderProgress(view, run) {
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
  const a = view.announced;
  if (a.status !== run.status || a.tenth !== tenth || now - a.at > 30_000) {
    byId('progress-announce').textContent = summary;
    view.announced = { status: run.status, tenth, at: now };
  }
}

/** @param {PanelState} view @param {Run} run */
export function renderLive(view, run) {
  view.peakLive = Math.max(view.peakLive, run.in_progress);
  const count = byId('live-count');
  count.textContent = String(run.in_progress);
  count.dataset.live = String(run.in_progress);
  count.dataset.cap = String(run.concurrency);
  count.dataset.peak = String(view.peakLive);
  byId('live-cap').textContent = String(run.concurrency);
  byId('live-split').textContent =
    `dialing ${run.dialing} · in a call ${run.calling} · peak ${view.peakLive} while this page was open`;
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

/** Calls started per minute: a lead leaves `queued` when it is dialed. @param {PanelState} view @param {Run} run */
export function renderRate(view, run) {
  const now = Date.now();
  const started = run.total_leads - run.pending_ingest - run.queued;
  view.samples.push({ at: now, started });
  while (view.samples.length > 2 && now - (view.samples[1]?.at ?? now) >= RATE_WINDOW_MS)
    view.samples.shift();
  const first = view.samples[0];
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
export function renderOutcomes(run) {
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

/** @param {string} text */
export function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
