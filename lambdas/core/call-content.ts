// (core) What one lead's callee hears: the run's content made the lead's own.

import type { LeadAttributeValue } from './leads.ts';
import type { CallContent } from './ports.ts';

/** The lead a call is for, as its content may use it. */
export interface ContentLead {
  runId: string;
  jobId: string;
  attempt: number;
  phone: string;
  attributes: Record<string, LeadAttributeValue>;
}

/** The content of one call to `lead`. */
export function contentForLead(content: CallContent, _lead: ContentLead): CallContent {
  return content;
}
