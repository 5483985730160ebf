// (core) Inline TwiML as a template of the lead's fields: `{{name}}`, or `{{name|a default}}` for a
// lead without one. Values are text, never markup: each is XML-escaped (and stripped of characters XML
// cannot carry at all), so a field like `</Say><Dial>…` is read out, not obeyed. A template is checked
// against every lead when the run is created (or leads appended), so a field some lead lacks is a 400
// naming the field and the row, never a call that says nothing.
//
// Written here rather than taken from a library: mustache-style libraries escape for HTML, have no
// `|default`, and bring sections, partials and unescaped forms (`{{{…}}}`) that would have to be refused.

import type { LeadAttributeValue } from './leads.ts';

/** A piece of a template: literal TwiML, or a lead's field with its default. */
export type TemplatePart = string | { field: string; fallback?: string };

export interface Template {
  parts: TemplatePart[];
  /** The fields named, each once, in order of first use. */
  fields: { field: string; hasDefault: boolean }[];
}

const OPEN = '{{';
const CLOSE = '}}';

/** A template, or why it is not one (an unclosed `{{`, an empty name). */
export function parseTemplate(text: string): Template | { problem: string } {
  const parts: TemplatePart[] = [];
  let at = 0;
  for (;;) {
    const open = text.indexOf(OPEN, at);
    if (open < 0) break;
    const close = text.indexOf(CLOSE, open + OPEN.length);
    if (close < 0) return { problem: `a {{ at character ${open + 1} is never closed with }}` };
    if (open > at) parts.push(text.slice(at, open));
    const inner = text.slice(open + OPEN.length, close);
    const bar = inner.indexOf('|');
    const field = (bar < 0 ? inner : inner.slice(0, bar)).trim();
    if (field === '' || field.includes('{'))
      return { problem: `{{${inner}}} at character ${open + 1} names no field` };
    parts.push(bar < 0 ? { field } : { field, fallback: inner.slice(bar + 1).trim() });
    at = close + CLOSE.length;
  }
  if (at < text.length) parts.push(text.slice(at));
  const fields = new Map<string, boolean>();
  for (const part of parts) {
    if (typeof part === 'string') continue;
    // A lead must have the field unless every use of it has a default.
    fields.set(part.field, (fields.get(part.field) ?? true) && part.fallback !== undefined);
  }
  return { parts, fields: [...fields].map(([field, hasDefault]) => ({ field, hasDefault })) };
}

/** Whether a template names any field: one without is plain TwiML, sent as it is. */
export function isTemplate(text: string): boolean {
  return text.includes(OPEN);
}

/** A lead's value as template text; null and absent have none (the default applies). */
function textOf(value: LeadAttributeValue | undefined): string | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : String(value);
}

/** The fields a template needs that this lead has no value for (and no default covers). */
export function missingFields(template: Template, values: Record<string, LeadAttributeValue>): string[] {
  return template.fields
    .filter(({ field, hasDefault }) => !hasDefault && textOf(values[field]) === undefined)
    .map(({ field }) => field);
}

/** The template filled in with `values`, each XML-escaped; a missing value without a default is empty. */
export function renderTemplate(template: Template, values: Record<string, LeadAttributeValue>): string {
  return template.parts
    .map((part) =>
      typeof part === 'string' ? part : escapeXml(textOf(values[part.field]) ?? part.fallback ?? ''),
    )
    .join('');
}

/**
 * Characters XML 1.0 allows (tab, line feed, carriage return, and the rest of Unicode but the other
 * C0 controls, lone surrogates, U+FFFE and U+FFFF); no escape can make the others well-formed.
 */
const NOT_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Text safe in XML content and in attribute values (either quote). */
export function escapeXml(text: string): string {
  return text
    .replace(NOT_XML, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}
