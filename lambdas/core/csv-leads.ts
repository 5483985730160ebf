// (core) Leads as CSV: a header row with a `phone` column (any case); every other column is kept as a
// lead attribute. Problems are reported by line, counted from 1 with the header on line 1, which is
// the row number a spreadsheet shows (as long as no cell holds a line break).

import { CsvError, parse } from 'csv-parse/sync';
import { ValidationError } from './errors.ts';

export interface CsvLeads {
  /** One object per data row: `phone` plus the other columns, as the JSON API takes them. */
  leads: Record<string, string>[];
  /** The line each lead starts on, by lead index. */
  lines: number[];
}

export function parseCsvLeads(text: string): CsvLeads {
  let records: { record: string[]; info: { lines: number; empty_lines: number } }[];
  try {
    records = parse(text, {
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
