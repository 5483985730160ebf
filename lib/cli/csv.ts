// (client) A leads CSV read the way the API's JSON body expects it: a header row naming a `phone`
// column, one lead per record, the other columns kept as the lead's own fields. Validation is the
// API's own (lambdas/core/leads.ts), run here first so that a bad file is refused before any request,
// with its problems named by the 1-based line of the file they are on.

import { ValidationError } from '../../lambdas/core/errors.ts';
import { validateRunRequest } from '../../lambdas/core/leads.ts';

export interface CsvLead {
  /** 1-based line of the file the record starts on (the header is line 1). */
  line: number;
  fields: Record<string, string>;
}

export interface CsvProblem {
  /** 1-based line of the file; absent when the problem is about the whole file. */
  line?: number;
  field?: string;
  message: string;
}

export class CsvError extends Error {
  override readonly name = 'CsvError';
  constructor(
    message: string,
    readonly problems: CsvProblem[],
  ) {
    super(message);
  }
}

interface CsvRecord {
  line: number;
  cells: string[];
}

/** RFC 4180: quoted cells may hold commas, doubled quotes and line breaks; CRLF or LF; a BOM is dropped. */
export function parseCsvRecords(text: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endRecord = () => {
    cells.push(cell);
    // A blank line is not a lead (spreadsheets often end a file with one).
    if (!(cells.length === 1 && cells[0]!.trim() === '')) records.push({ line: recordLine, cells });
    cells = [];
    cell = '';
  };
  for (; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else {
        if (ch === '\n') line++;
        cell += ch;
      }
    } else if (ch === '"' && cell.trim() === '') {
      quoted = true;
      cell = '';
    } else if (ch === ',') {
      cells.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      recordLine = line;
    } else {
      cell += ch;
    }
  }
  if (quoted)
    throw new CsvError('The file ends inside a quoted cell.', [
      { line: recordLine, message: 'a quote (") is never closed' },
    ]);
  if (cell !== '' || cells.length > 0) endRecord();
  return records;
}

/** Records → leads: the header names the columns; `phone` is required, other empty cells are left out. */
export function parseLeadsCsv(text: string): CsvLead[] {
  const records = parseCsvRecords(text);
  const header = records.shift();
  if (!header)
    throw new CsvError('The file is empty.', [{ message: 'expected a header row with a "phone" column' }]);
  const names = header.cells.map((name) => name.trim());
  const phoneAt = names.findIndex((name) => name.toLowerCase() === 'phone');
  if (phoneAt === -1) {
    throw new CsvError('The header row has no "phone" column.', [
      { line: header.line, message: `expected a "phone" column, found: ${names.join(', ') || 'nothing'}` },
    ]);
  }
  const problems: CsvProblem[] = [];
  const seen = new Set<string>();
  names.forEach((name, index) => {
    if (name === '') problems.push({ line: header.line, message: `column ${index + 1} has no name` });
    else if (seen.has(name.toLowerCase()))
      problems.push({ line: header.line, message: `column "${name}" appears twice` });
    seen.add(name.toLowerCase());
  });
  const leads: CsvLead[] = [];
  for (const record of records) {
    if (record.cells.length !== names.length) {
      problems.push({
        line: record.line,
        message: `${record.cells.length} cells where the header has ${names.length}`,
      });
      continue;
    }
    const fields: Record<string, string> = {};
    record.cells.forEach((value, index) => {
      const name = index === phoneAt ? 'phone' : names[index]!;
      if (index === phoneAt || value.trim() !== '') fields[name] = value.trim();
    });
    leads.push({ line: record.line, fields });
  }
  if (leads.length === 0 && problems.length === 0)
    problems.push({ message: 'the file has a header row but no leads' });
  if (problems.length > 0) throw new CsvError(`The file has ${problems.length} problem(s).`, problems);
  return leads;
}

/**
 * Parses and validates with the API's rules (E.164, duplicates, field sizes), but not its limits on
 * run size and concurrency, which belong to the deployment: the API still checks those.
 */
export function readLeadsCsv(text: string): CsvLead[] {
  const leads = parseLeadsCsv(text);
  try {
    validateRunRequest(
      { leads: leads.map((lead) => lead.fields) },
      { defaultConcurrency: 1, maxConcurrency: 1, maxLeads: Number.MAX_SAFE_INTEGER },
    );
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    throw new CsvError(
      error.message.replace(/;? ?nothing was created\.?$/, '.'),
      toCsvProblems(error.details, leads),
    );
  }
  return leads;
}

/** The API names a lead by its index (`leads[3].phone`, row 3); a person wants the file's line. */
export function toCsvProblems(
  details: { field?: string; row?: number; message: string }[],
  leads: CsvLead[],
): CsvProblem[] {
  return details.map((detail) => {
    const lead = detail.row === undefined ? undefined : leads[detail.row];
    const field = (detail.field ?? '').replace(/^leads\[\d+\]\.?/, '');
    const message = detail.message.replace(/leads\[(\d+)\]/g, (whole, row: string) => {
      const other = leads[Number(row)];
      return other ? `line ${other.line}` : whole;
    });
    return {
      ...(lead ? { line: lead.line } : {}),
      ...(field ? { field } : {}),
      message,
    };
  });
}
