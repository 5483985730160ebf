// (core) Leads as CSV: a header row with a `phone` column (any case); every other column is kept as a
// lead attribute. Problems are reported by line, counted from 1 with the header on line 1, which is
// the row number a spreadsheet shows (as long as no cell holds a line break). The delimiter is the
// header row's: a comma, or a semicolon or tab as spreadsheets in many locales save.

import { CsvError, parse } from 'csv-parse/sync';
import { type ErrorDetail, ValidationError } from './errors.ts';
import { csvLeadLocator, type LeadLocator } from './leads.ts';
import { optionsFromQuery } from './run-options.ts';

export interface CsvLeads {
  /** One object per data row: `phone` plus the other columns, as the JSON API takes them. */
  leads: Record<string, string>[];
  /** The line each lead starts on, by lead index. */
  lines: number[];
}

/** The header row's delimiter: whichever of comma, semicolon and tab it has most of, outside quotes. */
export function detectDelimiter(text: string): ',' | ';' | '\t' {
  const header =
    text
      .replace(/^\uFEFF/, '')
      .split(/\r?\n/)
      .find((line) => line.trim() !== '') ?? '';
  const unquoted = header.replace(/"[^"]*"/g, '');
  const counts = ([',', ';', '\t'] as const).map((d) => [d, unquoted.split(d).length - 1] as const);
  const [best] = [...counts].sort((a, b) => b[1] - a[1]);
  return best && best[1] > 0 ? best[0] : ',';
}

export function parseCsvLeads(text: string): CsvLeads {
  let records: { record: string[]; info: { lines: number; empty_lines: number } }[];
  try {
    records = parse(text, {
      delimiter: detectDelimiter(text),
      bom: true, // spreadsheets save UTF-8 with a byte order mark
      info: true,
      skip_empty_lines: true,
      trim: true,
    }) as unknown as typeof records;
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    const line = (error as CsvError & { lines?: number }).lines;
    throw new ValidationError('The CSV could not be read; nothing was created.', [
      {
        field: 'body',
        ...(line === undefined ? {} : { line }),
        message: error.message.replace(/^[A-Za-z ]+: /, ''),
      },
    ]);
  }
  const [header, ...rows] = records;
  if (!header) {
    throw new ValidationError('The CSV is empty.', [
      { field: 'body', message: 'expected a header row with a "phone" column, then one lead per row' },
    ]);
  }
  const names = header.record;
  const phoneColumn = names.findIndex((name) => name.toLowerCase() === 'phone');
  const duplicate = names.find((name, column) => names.indexOf(name) !== column);
  if (phoneColumn < 0 || duplicate !== undefined || names.some((name) => name === '')) {
    throw new ValidationError('The CSV header row is not usable; nothing was created.', [
      {
        field: phoneColumn < 0 ? 'phone' : 'header',
        line: header.info.lines,
        message:
          phoneColumn < 0
            ? 'the header row needs a "phone" column'
            : duplicate !== undefined
              ? `the column "${duplicate}" appears twice`
              : 'every column needs a name',
      },
    ]);
  }

  // `curl -d @leads.csv` drops the file's line breaks: what arrives is a header row holding the leads.
  if (rows.length === 0 && !/[\r\n]/.test(text.trim()) && names.some((name) => /\d{7,}/.test(name))) {
    throw new ValidationError('The CSV is one line: its line breaks were lost; nothing was created.', [
      {
        field: 'body',
        line: 1,
        message:
          'the body has no line breaks (curl -d removes them: send the file with --data-binary @leads.csv)',
      },
    ]);
  }

  const leads: Record<string, string>[] = [];
  const lines: number[] = [];
  let previousEnd = header.info.lines;
  let previousEmpty = header.info.empty_lines;
  for (const { record, info } of rows) {
    // csv-parse reports the line a record ends on; it starts after the previous one and any blank lines.
    lines.push(previousEnd + 1 + (info.empty_lines - previousEmpty));
    previousEnd = info.lines;
    previousEmpty = info.empty_lines;
    const lead: Record<string, string> = {};
    names.forEach((name, column) => {
      const value = record[column] ?? '';
      if (column === phoneColumn) lead.phone = value;
      else if (value !== '') lead[name] = value; // an empty cell is an absent attribute
    });
    leads.push(lead);
  }
  return { leads, lines };
}

/**
 * A CSV upload as the JSON request it stands for: the leads from the body and, for a new run, the
 * options from the query string (`?concurrency=3&retry.on=busy`); an append takes no options.
 */
export function csvRequest(
  text: string,
  query: Record<string, string | undefined> | null | undefined,
  options: { runOptions: boolean },
): { body: Record<string, unknown>; locate: LeadLocator } {
  const details: ErrorDetail[] = [];
  const fields: Record<string, unknown> = {};
  if (options.runOptions) Object.assign(fields, optionsFromQuery(query ?? {}, details));
  else {
    for (const name of Object.keys(query ?? {})) {
      details.push({ field: name, message: 'appended leads take the run’s own options' });
    }
  }
  if (details.length > 0)
    throw new ValidationError('Invalid options in the query string; nothing was created.', details);
  const { leads, lines } = parseCsvLeads(text);
  return { body: { ...fields, leads }, locate: csvLeadLocator(lines) };
}
