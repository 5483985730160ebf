// (core) The suppression (do-not-call) list as the API shows it: PUT, GET and DELETE of one number,
// pages of the list, and a CSV import that adds every row or none. Numbers are read as leads are
// (libphonenumber, DEFAULT_COUNTRY) and stored in E.164, the form the acquire transaction checks.

import { ID } from '../definitions/formats.ts';
import { checkPhone } from '../definitions/phone-numbers.ts';
import { PAGE_DEFAULT, PAGE_MAX, type SuppressionView } from './api-schemas.ts';
import { parseCsvLeads } from './csv-leads.ts';
import { type ErrorDetail, NotFoundError, ValidationError } from './errors.ts';
import type { Clock, Suppression, SuppressionStore } from './ports.ts';

export interface SuppressionDeps {
  store: SuppressionStore;
  clock: Clock;
  /** Whose national numbers a number without a country code is (DEFAULT_COUNTRY). */
  defaultCountry?: string | undefined;
}

/** The reason when a request gives none. */
const DEFAULT_REASON = 'manual';
/** A reason: a short word or phrase of letters, digits and `-_.: `, no phone number in it. */
const REASON = /^[A-Za-z][A-Za-z0-9 _.:-]{0,63}$/;
/** Rows of one CSV import, at most. */
const MAX_IMPORT_ROWS = 10_000;

function toSuppressionView(s: Suppression): SuppressionView {
  return {
    phone: s.phone,
    reason: s.reason,
    run_id: s.runId ?? null,
    created_at: s.createdAt,
    expires_at: s.expiresAt ?? null,
  };
}

/** A number from a path or a row, in E.164; a problem goes to `details`. */
function readPhone(
  raw: string,
  deps: Pick<SuppressionDeps, 'defaultCountry'>,
  where: Omit<ErrorDetail, 'message'>,
  details: ErrorDetail[],
): string | undefined {
  const check = checkPhone(raw, { defaultCountry: deps.defaultCountry });
  if (check.ok) return check.phone;
  details.push({ ...where, message: check.problem });
  return undefined;
}

/** The phone of a `/suppressions/{phone}` path, as its one problem when it is not a valid number. */
function phoneFromPath(raw: string, deps: Pick<SuppressionDeps, 'defaultCountry'>): string {
  const details: ErrorDetail[] = [];
  let text = raw;
  try {
    text = decodeURIComponent(raw);
  } catch {
    // left as it came: checkPhone names the problem
  }
  const phone = readPhone(text, deps, { field: 'phone' }, details);
  if (phone === undefined) throw new ValidationError('Not a phone number that can be suppressed.', details);
  return phone;
}

interface SuppressionFields {
  reason: string;
  expiresAt?: string;
  runId?: string;
}

/** `reason`, `expires_at`, `run_id` of a body or a row; unknown fields are problems. */
function readFields(
  fields: Record<string, unknown>,
  nowMs: number,
  where: (field: string) => Omit<ErrorDetail, 'message'>,
  details: ErrorDetail[],
  known: readonly string[],
): SuppressionFields {
  for (const name of Object.keys(fields)) {
    if (!known.includes(name))
      details.push({ ...where(name), message: `unknown field; expected ${known.join(', ')}` });
  }
  const out: SuppressionFields = { reason: DEFAULT_REASON };
  if (fields.reason !== undefined && fields.reason !== null) {
    if (typeof fields.reason === 'string' && REASON.test(fields.reason)) out.reason = fields.reason;
    else
      details.push({
        ...where('reason'),
        message: 'expected a short reason: a letter, then up to 63 letters, digits, spaces or -_.:',
      });
  }
  if (fields.expires_at !== undefined && fields.expires_at !== null) {
    const at = typeof fields.expires_at === 'string' ? Date.parse(fields.expires_at) : Number.NaN;
    if (!Number.isFinite(at) || !/^\d{4}-\d{2}-\d{2}T/.test(String(fields.expires_at)))
      details.push({ ...where('expires_at'), message: 'expected an ISO 8601 time (2027-01-31T00:00:00Z)' });
    else if (at <= nowMs) details.push({ ...where('expires_at'), message: 'must be in the future' });
    else out.expiresAt = new Date(at).toISOString();
  }
  if (fields.run_id !== undefined && fields.run_id !== null) {
    if (typeof fields.run_id === 'string' && ID.test(fields.run_id)) out.runId = fields.run_id;
    else details.push({ ...where('run_id'), message: 'expected a run id' });
  }
  return out;
}

/** PUT /suppressions/{phone}: adds or replaces the number's suppression. */
export async function putSuppression(
  deps: SuppressionDeps,
  rawPhone: string,
  body: unknown,
): Promise<SuppressionView> {
  const phone = phoneFromPath(rawPhone, deps);
  const details: ErrorDetail[] = [];
  const object = body === undefined || body === null ? {} : body;
  if (typeof object !== 'object' || Array.isArray(object)) {
    throw new ValidationError('The body must be a JSON object (or empty).', [
      { field: 'body', message: 'expected { reason?, expires_at?, run_id? }' },
    ]);
  }
  const now = deps.clock.now();
  const fields = readFields(
    object as Record<string, unknown>,
    now.getTime(),
    (field) => ({ field }),
    details,
    ['reason', 'expires_at', 'run_id'],
  );
  if (details.length > 0) throw new ValidationError('Invalid suppression; nothing was changed.', details);
  const suppression: Suppression = { phone, ...fields, createdAt: now.toISOString() };
  await deps.store.putSuppression(suppression);
  return toSuppressionView(suppression);
}

/** GET /suppressions/{phone}. */
export async function getSuppression(deps: SuppressionDeps, rawPhone: string): Promise<SuppressionView> {
  const phone = phoneFromPath(rawPhone, deps);
  const found = await deps.store.getSuppression(phone, deps.clock.now().getTime());
  if (!found) throw new NotFoundError('That number is not suppressed.');
  return toSuppressionView(found);
}

/** DELETE /suppressions/{phone}: 404 when the number was not suppressed. */
export async function deleteSuppression(deps: SuppressionDeps, rawPhone: string): Promise<void> {
  const phone = phoneFromPath(rawPhone, deps);
  const result = await deps.store.deleteSuppression(phone, deps.clock.now().getTime());
  if (result === 'absent') throw new NotFoundError('That number is not suppressed.');
}

/** GET /suppressions: a page, in E.164 order; `prefix` (digits, `+` optional) narrows it. */
export async function listSuppressions(
  deps: SuppressionDeps,
  query: Record<string, string | undefined> | null | undefined,
): Promise<{ suppressions: SuppressionView[]; next_cursor: string | null }> {
  const details: ErrorDetail[] = [];
  let limit = PAGE_DEFAULT;
  if (query?.limit !== undefined) {
    const n = /^\d+$/.test(query.limit) ? Number(query.limit) : Number.NaN;
    if (n >= 1 && n <= PAGE_MAX) limit = n;
    else details.push({ field: 'limit', message: `expected a whole number from 1 to ${PAGE_MAX}` });
  }
  let prefix: string | undefined;
  if (query?.prefix !== undefined && query.prefix !== '') {
    const digits = query.prefix.trim().replace(/^\+/, '');
    if (/^\d{1,15}$/.test(digits)) prefix = `+${digits}`;
    else details.push({ field: 'prefix', message: 'expected the first digits of E.164 numbers (+9725)' });
  }
  if (details.length > 0) throw new ValidationError('Invalid list parameters.', details);
  const page = await deps.store.listSuppressions({
    limit,
    cursor: query?.cursor,
    prefix,
    nowMs: deps.clock.now().getTime(),
  });
  return { suppressions: page.items.map(toSuppressionView), next_cursor: page.nextCursor ?? null };
}

/**
 * POST /suppressions (text/csv): a `phone` column, optional `reason` and `expires_at` columns. Every
 * row is checked first; one bad row refuses the whole file, each problem named by its line.
 */
export async function importSuppressions(deps: SuppressionDeps, csv: string): Promise<{ imported: number }> {
  const { leads: rows, lines } = parseCsvLeads(csv);
  const details: ErrorDetail[] = [];
  if (rows.length === 0)
    details.push({
      field: 'body',
      message: 'expected a header row with a "phone" column, then one number per row',
    });
  if (rows.length > MAX_IMPORT_ROWS)
    details.push({ field: 'body', message: `at most ${MAX_IMPORT_ROWS} rows per import` });
  if (details.length > 0) throw new ValidationError('Nothing was imported.', details);
  const now = deps.clock.now();
  const byPhone = new Map<string, Suppression>();
  rows.forEach((row, index) => {
    const line = lines[index]!;
    const { phone: raw, ...rest } = row;
    const phone = readPhone(raw ?? '', deps, { field: 'phone', row: index, line }, details);
    const fields = readFields(rest, now.getTime(), (field) => ({ field, row: index, line }), details, [
      'reason',
      'expires_at',
    ]);
    // A number twice in one file: the later row wins, as two PUTs would.
    if (phone) byPhone.set(phone, { phone, ...fields, createdAt: now.toISOString() });
  });
  if (details.length > 0) throw new ValidationError('Invalid rows; nothing was imported.', details);
  await deps.store.putSuppressions([...byPhone.values()]);
  return { imported: byPhone.size };
}
