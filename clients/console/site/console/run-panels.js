// @ts-check
// The run page's panels, drawn from one GET /runs/{id} answer: progress by state, the slots held now,
// the dial rate and the outcomes. `view` keeps what they remember between polls (rate samples, the
// peak, what was last announced to screen readers).

import { byId, duration, h, plural, replace } from './dom.js';

/** @typedef {import('./api.js').Run} Run */
/**
 * A finished run's own figures, from its calls' times: how many were dialed, over how long, and the
 * most that were live at once.
 * @typedef {{ dialed: number, spanMs: number, peak: number, partial: boolean }} FinishedStats
 */
/**
 * @typedef {{
 *   samples: { at: number, started: number }[],
 *   peakLive: number,
 *   announced: { status: string, tenth: number, at: number },
 *   finished?: FinishedStats | undefined,
 * }} PanelState
 */

/**
 * @param {import('./api.js').Call[]} calls
 * @param {boolean} partial whether more calls exist than were read
 * @returns {FinishedStats}
 */
export function finishedStats(calls, partial) {
  /** @type {[number, number][]} */
  const events = [];
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  let dialed = 0;
  for (const call of calls) {
    if (!call.dialed_at) continue;
    const start = Date.parse(call.dialed_at);
    const end = call.ended_at ? Date.parse(call.ended_at) : start;
    dialed += 1;
    first = Math.min(first, start);
    last = Math.max(last, end);
    events.push([start, 1], [end, -1]);
  }
  // Ends before starts at the same instant: a slot freed and taken again is not two live calls.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let live = 0;
  let peak = 0;
  for (const [, change] of events) {
    live += change;
    peak = Math.max(peak, live);
  }
  return { dialed, spanMs: dialed > 0 ? last - first : 0, peak, partial };
}

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
    // The run's own figures, from its calls' times, not what this page happened to see.
    const stats = view.finished;
    if (!stats) {
      rate.textContent = '…';
      byId('rate-detail').textContent = 'The run is over; reading its calls for its average rate and peak.';
      return;
    }
    const of = stats.partial ? ` (from its first ${stats.dialed} calls)` : '';
    rate.textContent = stats.spanMs >= 1_000 ? ((stats.dialed / stats.spanMs) * 60_000).toFixed(1) : '–';
    byId('rate-detail').textContent =
      `The run's average: ${plural(stats.dialed, 'call')} dialed in ${duration(stats.spanMs)}${of}. ` +
      'No more calls will start.';
    byId('rate-peak').textContent = `Peak: ${stats.peak} of ${run.concurrency} slots live at once.`;
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
