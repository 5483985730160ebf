// (core) What one lead's callee hears: the run's content made the lead's own. Inline TwiML that names
// the lead's fields is filled in (XML-escaped, twiml-template.ts); a TwiML URL is called with the run,
// the job, the attempt and the lead's fields in its query string, which Twilio keeps (and signs) when
// it requests the URL, so that a TwiML app can answer for this lead without calling back.

import type { ErrorDetail } from './errors.ts';
import { jsonLeadLocator, type Lead, type LeadAttributeValue, type LeadLocator } from './leads.ts';
import type { CallContent } from './ports.ts';
import type { RunOptions } from './run-options.ts';
import { isTemplate, missingFields, parseTemplate, renderTemplate, type Template } from './twiml-template.ts';

/** The lead a call is for, as its content may use it. */
export interface ContentLead {
  runId: string;
  jobId: string;
  attempt: number;
  phone: string;
  attributes: Record<string, LeadAttributeValue>;
}

/** Twilio's limit on inline TwiML (the `Twiml` parameter), which a filled-in template must keep to. */
const TWILIO_MAX_TWIML = 4000;

/** The prefix of a lead's field among a TwiML URL's query parameters (`lead_name=Dana`). */
const LEAD_PARAMETER_PREFIX = 'lead_';

/** Whether calls with this content need their lead's fields (a URL, or TwiML that names fields). */
export function needsLead(content: CallContent): boolean {
  return 'twimlUrl' in content || isTemplate(content.twiml);
}

/** The content of one call to `lead`. */
export function contentForLead(content: CallContent, lead: ContentLead): CallContent {
  if ('twimlUrl' in content) return { twimlUrl: twimlUrlFor(content.twimlUrl, lead) };
  if (!isTemplate(content.twiml)) return content;
  const template = parseTemplate(content.twiml);
  // Checked when the run was created; a template that no longer parses is sent as it is.
  if ('problem' in template) return content;
  return { twiml: renderTemplate(template, templateValues(lead)) };
}

/**
 * The URL Twilio requests for this call: the run's, with `run_id`, `job_id`, `attempt` and each of the
 * lead's fields as `lead_<name>` (null as empty) in its query string. Twilio requests it with POST (its
 * default), its own call parameters (CallSid, To, From, …) in the form body, and signs the whole URL.
 */
export function twimlUrlFor(base: string, lead: ContentLead): string {
  const url = new URL(base);
  url.searchParams.set('run_id', lead.runId);
  url.searchParams.set('job_id', lead.jobId);
  url.searchParams.set('attempt', String(lead.attempt));
  for (const [name, value] of Object.entries(lead.attributes)) {
    url.searchParams.set(`${LEAD_PARAMETER_PREFIX}${name}`, value === null ? '' : String(value));
  }
  return url.toString();
}

/** What a template may name: the lead's fields, and its `phone`. */
function templateValues(lead: Pick<ContentLead, 'phone' | 'attributes'>): Record<string, LeadAttributeValue> {
  return { ...lead.attributes, phone: lead.phone };
}

/** The run's inline TwiML that names lead fields, by the request field it came in. */
function templatesOf(options: RunOptions): { field: 'twiml' | 'voicemail_twiml'; template: Template }[] {
  const found: { field: 'twiml' | 'voicemail_twiml'; template: Template }[] = [];
  for (const [field, text] of [
    ['twiml', options.twiml],
    ['voicemail_twiml', options.voicemailTwiml],
  ] as const) {
    if (text === undefined || !isTemplate(text)) continue;
    const template = parseTemplate(text);
    if (!('problem' in template)) found.push({ field, template });
  }
  return found;
}

/**
 * Every lead against the run's templates: a field some lead lacks (absent or null) without a default,
 * or TwiML that, filled in for a lead, would pass Twilio's limit, is a problem named by the lead's row
 * and the field. At most `max` problems are listed.
 */
export function templateProblems(
  leads: readonly Lead[],
  options: RunOptions,
  locate: LeadLocator = jsonLeadLocator,
  max = 50,
): { details: ErrorDetail[]; count: number } {
  const details: ErrorDetail[] = [];
  let count = 0;
  const report = (detail: ErrorDetail) => {
    count += 1;
    if (details.length < max) details.push(detail);
  };
  const templates = templatesOf(options);
  if (templates.length === 0) return { details, count };
  leads.forEach((lead, row) => {
    const values = templateValues(lead);
    for (const { field, template } of templates) {
      const missing = missingFields(template, values);
      for (const name of missing) {
        report({
          ...locate(row, name),
          message: `${field} uses {{${name}}}, which this lead does not have; give every lead one, or the template a default ({{${name}|…}})`,
        });
      }
      if (missing.length > 0) continue;
      const bytes = Buffer.byteLength(renderTemplate(template, values));
      if (bytes > TWILIO_MAX_TWIML) {
        report({
          ...locate(row),
          message: `${field} filled in for this lead is ${bytes} bytes; Twilio takes at most ${TWILIO_MAX_TWIML}`,
        });
      }
    }
  });
  return { details, count };
}
