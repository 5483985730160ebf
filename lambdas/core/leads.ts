// (core) Validation of a run request: leads, phone numbers, sizes and the concurrency cap.
// Every problem is reported with the field and the row it is in, and nothing is created on error.

import { checkPhone, type PhoneRules } from '../definitions/phone-numbers.ts';
import { isValidTimeZone } from './calling-window.ts';
import { type ErrorDetail, PayloadTooLargeError, ValidationError } from './errors.ts';

export type LeadAttributeValue = string | number | boolean | null;

/** One lead as dialgate keeps it: the phone in E.164, the caller's own fields kept as they came. */
export interface Lead {
  phone: string;
  attributes: Record<string, LeadAttributeValue>;
}

export interface RunLimits {
  defaultConcurrency: number;
  maxConcurrency: number;
  maxLeads: number;
}

export interface ValidRunRequest {
  leads: Lead[];
  concurrency: number;
}

/** The lead attribute that overrides the run's calling-window time zone. */
export const LEAD_TIME_ZONE = 'time_zone';

/** A lead's own fields are stored with it; bounded so that a job item stays small (and cheap). */
export const MAX_LEAD_BYTES = 2048;
/** Past this many problems the rest are counted, not listed: an error response stays readable. */
const MAX_DETAILS = 50;

/**
 * Normalises a phone number to E.164 when it is valid for its country (libphonenumber): separators are
 * dropped and an international `00` prefix becomes `+`. Numbers without a country code are refused
 * unless `rules.defaultCountry` says whose national numbers they are.
 */
export function normalizePhone(raw: string, rules: PhoneRules = {}): string | undefined {
  const check = checkPhone(raw, rules);
  return check.ok ? check.phone : undefined;
}

/** Shows enough of a number to recognise it in a log or a list, never the whole of it. */
export function maskPhone(phone: string): string {
  if (phone.length <= 6) return '***';
  return `${phone.slice(0, 4)}${'*'.repeat(phone.length - 6)}${phone.slice(-2)}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The longest name a lead field may have, in characters. */
export const MAX_FIELD_NAME_CHARS = 128;
/** Numbers are kept exactly: a double's integers stop being exact past 2^53 (send bigger ones as strings). */
const MAX_EXACT = Number.MAX_SAFE_INTEGER;
/** Smaller magnitudes than this are refused: DynamoDB's numbers stop at 1e-130 (JSON's do not). */
const MIN_MAGNITUDE = 1e-100;

/**
 * Why a lead field cannot be kept as it came, or undefined when it can. The subset that survives
 * every hop (the API, the queue, DynamoDB, the listings) is flat: a non-empty name of well-formed
 * Unicode, and a string of well-formed Unicode, a boolean, null, or a finite number within ±(2^53 − 1)
 * (and 0 or at least 1e-100 in magnitude). A lone surrogate cannot be written as UTF-8, so it would
 * come back as U+FFFD; a number past 2^53 has already lost digits when JSON was parsed.
 */
export function leadFieldProblem(name: string, value: unknown): string | undefined {
  if (name === '') return 'a lead field needs a name';
  if (name.length > MAX_FIELD_NAME_CHARS)
    return `a field name takes at most ${MAX_FIELD_NAME_CHARS} characters`;
  if (!name.isWellFormed()) return 'the field name is not well-formed Unicode (a lone surrogate)';
  if (value === null || typeof value === 'boolean') return undefined;
  if (typeof value === 'string') {
    return value.isWellFormed() ? undefined : 'not well-formed Unicode (a lone surrogate)';
  }
  if (typeof value === 'number') {
    const magnitude = Math.abs(value);
    if (!Number.isFinite(value) || magnitude > MAX_EXACT) {
      return 'a number beyond ±(2^53 − 1) is not kept exactly; send it as a string';
    }
    if (magnitude !== 0 && magnitude < MIN_MAGNITUDE)
      return 'a number this close to 0 is not kept; send it as a string';
    return undefined;
  }
  return 'lead fields must be strings, numbers, booleans or null (no lists or objects)';
}

export function validateRunRequest(
  body: unknown,
  limits: RunLimits,
  options: LeadCheckOptions = {},
): ValidRunRequest {
  if (!isPlainObject(body)) {
    throw new ValidationError('The request body must be a JSON object.', [
      { field: 'body', message: 'expected a JSON object with "leads" and optional "concurrency"' },
    ]);
  }
  const concurrency = validateConcurrency(body.concurrency, limits);
  const leads = validateLeads(body.leads, limits, options);
  return { leads, concurrency };
}

/** Where a lead's problem is, for the error: a JSON path, or a CSV line. */
export type LeadLocator = (row: number, key?: string) => Pick<ErrorDetail, 'field' | 'row' | 'line'>;

export const jsonLeadLocator: LeadLocator = (row, key) => ({
  field: key === undefined ? `leads[${row}]` : `leads[${row}].${key}`,
  row,
});

/** CSV leads are named by column and by the line (spreadsheet row) they start on. */
export function csvLeadLocator(lines: readonly number[]): LeadLocator {
  return (row, key) => ({
    field: key ?? 'row',
    row,
    ...(lines[row] === undefined ? {} : { line: lines[row] }),
  });
}

export interface LeadCheckOptions {
  locate?: LeadLocator;
  /** The deployment's default country and the number types the run takes. */
  phoneRules?: PhoneRules;
  /** A run with a calling window: a lead's own `time_zone` must be a real IANA zone. */
  checkTimeZone?: boolean;
}

/** Validates a list of leads (a run's, or a batch appended to one); throws naming every bad one. */
export function validateLeads(
  rawLeads: unknown,
  limits: Pick<RunLimits, 'maxLeads'>,
  options: LeadCheckOptions = {},
): Lead[] {
  const locate = options.locate ?? jsonLeadLocator;
  if (!Array.isArray(rawLeads)) {
    throw new ValidationError('"leads" must be a list.', [
      { field: 'leads', message: 'expected an array of lead objects' },
    ]);
  }
  if (rawLeads.length === 0) {
    throw new ValidationError('"leads" is empty.', [
      { field: 'leads', message: 'a run needs at least one lead' },
    ]);
  }
  if (rawLeads.length > limits.maxLeads) {
    throw new PayloadTooLargeError(`A run takes at most ${limits.maxLeads} leads.`, [
      { field: 'leads', message: `${rawLeads.length} leads given, at most ${limits.maxLeads} allowed` },
    ]);
  }

  const details: ErrorDetail[] = [];
  let problems = 0;
  const report = (row: number, key: string | undefined, message: string) => {
    problems += 1;
    if (details.length < MAX_DETAILS) details.push({ ...locate(row, key), message });
  };
  const firstRowOfPhone = new Map<string, number>();
  const leads: Lead[] = [];

  rawLeads.forEach((raw: unknown, row) => {
    if (!isPlainObject(raw)) {
      report(row, undefined, 'expected an object with a "phone"');
      return;
    }
    const { phone: rawPhone, ...rest } = raw;
    if (typeof rawPhone !== 'string' || rawPhone.trim() === '') {
      report(row, 'phone', 'required, a phone number in E.164 (+972522345678)');
      return;
    }
    const check = checkPhone(rawPhone, options.phoneRules);
    if (!check.ok) {
      report(row, 'phone', check.problem);
      return;
    }
    const phone = check.phone;
    const earlier = firstRowOfPhone.get(phone);
    if (earlier !== undefined) {
      const where = locate(earlier);
      report(
        row,
        'phone',
        `the same number as ${where.line === undefined ? where.field : `line ${where.line}`}`,
      );
      return;
    }
    firstRowOfPhone.set(phone, row);
    const bad = Object.entries(rest)
      .map(([key, value]) => ({ key, problem: leadFieldProblem(key, value) }))
      .find((field) => field.problem !== undefined);
    if (bad !== undefined) {
      report(row, bad.key, bad.problem!);
      return;
    }
    const attributes = rest as Record<string, LeadAttributeValue>;
    if (Buffer.byteLength(JSON.stringify(attributes)) > MAX_LEAD_BYTES) {
      report(row, undefined, `a lead's fields take at most ${MAX_LEAD_BYTES} bytes`);
      return;
    }
    const timeZone = attributes[LEAD_TIME_ZONE];
    if (
      options.checkTimeZone &&
      timeZone !== undefined &&
      timeZone !== null &&
      (typeof timeZone !== 'string' || !isValidTimeZone(timeZone))
    ) {
      report(row, LEAD_TIME_ZONE, 'not an IANA time zone such as Asia/Jerusalem');
      return;
    }
    leads.push({ phone, attributes });
  });

  if (problems > 0) {
    const more = problems > details.length ? ` (the first ${details.length} are listed)` : '';
    throw new ValidationError(`${problems} lead(s) are invalid${more}; nothing was created.`, details);
  }
  return leads;
}

function validateConcurrency(value: unknown, limits: RunLimits): number {
  if (value === undefined || value === null) return limits.defaultConcurrency;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > limits.maxConcurrency) {
    throw new ValidationError(`"concurrency" must be a whole number from 1 to ${limits.maxConcurrency}.`, [
      { field: 'concurrency', message: `expected an integer from 1 to ${limits.maxConcurrency}` },
    ]);
  }
  return value;
}
