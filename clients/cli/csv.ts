// (client) A leads CSV checked before anything is sent, by the API's own code: the same parser as
// `POST /runs` with `text/csv` (lambdas/core/csv-leads.ts) and the same lead rules (numbers valid for
// their country, duplicates, field sizes). Problems are named by the file's 1-based line, the header
// being line 1.

import { parseCsvLeads } from '../../lambdas/core/csv-leads.ts';
import { ValidationError } from '../../lambdas/core/errors.ts';
import { csvLeadLocator, validateLeads } from '../../lambdas/core/leads.ts';

export interface CsvLeads {
  /** One object per data row, `phone` plus the other columns, as the JSON API takes them. */
  leads: Record<string, string>[];
  /** The line each lead starts on, by lead index. */
  lines: number[];
}

export interface CsvProblem {
  /** 1-based line of the file; absent when the problem is about the whole file. */
  line?: number;
  /** The column, when the problem is about one. */
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

/**
 * Parses and validates with the API's rules, but not its limits on run size and concurrency, which
 * belong to the deployment: the API still checks those.
 */
export function readLeadsCsv(text: string): CsvLeads {
  try {
    const parsed = parseCsvLeads(text);
    validateLeads(
      parsed.leads,
      { maxLeads: Number.MAX_SAFE_INTEGER },
      // National numbers are the deployment's to read (its DEFAULT_COUNTRY): the API checks those.
      { locate: csvLeadLocator(parsed.lines), phoneRules: { deferNational: true } },
    );
    return parsed;
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    throw new CsvError(
      error.message.replace(/;? ?nothing was created\.?$/, '.'),
      toCsvProblems(error.details, []),
    );
  }
}

/** The API's details as lines of the file: a JSON request's `row` is a lead index, mapped through `lines`. */
export function toCsvProblems(
  details: { field?: string; row?: number; line?: number; message: string }[],
  lines: readonly number[],
): CsvProblem[] {
  return details.map((detail) => {
    const line = detail.line ?? (detail.row === undefined ? undefined : lines[detail.row]);
    // `leads[3].phone` → `phone`; the whole-file and whole-row fields say nothing a line does not.
    const field = (detail.field ?? '').replace(/^leads\[\d+\]\.?/, '');
    const message = detail.message.replace(/leads\[(\d+)\]/g, (whole, row: string) => {
      const other = lines[Number(row)];
      return other === undefined ? whole : `line ${other}`;
    });
    return {
      ...(line === undefined ? {} : { line }),
      ...(field && !['row', 'body', 'header', 'leads'].includes(field) ? { field } : {}),
      message,
    };
  });
}
