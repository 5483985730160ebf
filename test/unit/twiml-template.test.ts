// The lead-field template of inline TwiML: `{{field}}` and `{{field|default}}`, values XML-escaped.
// A property over any text a lead's field can hold (any Unicode, lone surrogates and controls
// included): the TwiML stays well-formed XML (checked by a conforming parser, saxes) with the same
// elements, and the field comes out as text. And the checks a run's leads get against its templates,
// and a TwiML URL's parameters.

import fc from 'fast-check';
import { SaxesParser } from 'saxes';
import { describe, expect, it } from 'vitest';
import { contentForLead, templateProblems, twimlUrlFor } from '../../lambdas/core/call-content.ts';
import { csvLeadLocator, type LeadAttributeValue } from '../../lambdas/core/leads.ts';
import {
  escapeXml,
  missingFields,
  parseTemplate,
  renderTemplate,
  type Template,
} from '../../lambdas/core/twiml-template.ts';

function template(text: string): Template {
  const parsed = parseTemplate(text);
  if ('problem' in parsed) throw new Error(parsed.problem);
  return parsed;
}

interface Element {
  name: string;
  attributes: Record<string, string>;
  text: string;
  children: Element[];
}

/** The document as elements, or the parser's first error: saxes checks XML 1.0 well-formedness. */
function parseXml(xml: string): Element | Error {
  const parser = new SaxesParser();
  const root: Element = { name: '#document', attributes: {}, text: '', children: [] };
  const stack = [root];
  let error: Error | undefined;
  parser.on('error', (e) => {
    error ??= e;
  });
  parser.on('opentag', (tag) => {
    const element: Element = {
      name: tag.name,
      attributes: Object.fromEntries(Object.entries(tag.attributes).map(([k, v]) => [k, String(v)])),
      text: '',
      children: [],
    };
    stack.at(-1)!.children.push(element);
    stack.push(element);
  });
  parser.on('text', (text) => {
    stack.at(-1)!.text += text;
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  parser.write(xml).close();
  return error ?? root;
}

/**
 * Any text, from the whole of Unicode (lone surrogates included), and text made mostly of what XML
 * treats specially (markup, quotes, line ends, characters it cannot carry), which random code points
 * would seldom hit.
 */
const fieldText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({
    unit: fc.constantFrom(
      '<',
      '>',
      '&',
      '"',
      "'",
      '/',
      ']',
      '\r',
      '\n',
      '\t',
      '\u0000',
      '\u001f',
      '\ufffe',
      '\ud800',
      'a',
      ' ',
      '{',
      '}',
    ),
    maxLength: 60,
  }),
);

const SAY =
  '<Response><Say voice="{{voice|Polly.Joanna}}">Hello {{name}}, this is {{ company | us }}.</Say></Response>';

describe('TwiML templates', () => {
  it('fills in fields and defaults, escaping every value', () => {
    const t = template(SAY);
    expect(t.fields).toEqual([
      { field: 'voice', hasDefault: true },
      { field: 'name', hasDefault: false },
      { field: 'company', hasDefault: true },
    ]);
    expect(renderTemplate(t, { name: 'Dana & Noa', company: null })).toBe(
      '<Response><Say voice="Polly.Joanna">Hello Dana &amp; Noa, this is us.</Say></Response>',
    );
    expect(renderTemplate(t, { name: 42, company: true, voice: 'a"b' })).toBe(
      '<Response><Say voice="a&quot;b">Hello 42, this is true.</Say></Response>',
    );
  });

  it('reads out a field that looks like TwiML instead of obeying it', () => {
    const t = template('<Response><Say>Hi {{name}}</Say></Response>');
    for (const name of ['<Say>', '</Say><Dial>+14155550123</Dial><Say>', ']]><Hangup/>', "' onload='x"]) {
      const xml = renderTemplate(t, { name });
      const doc = parseXml(xml);
      if (doc instanceof Error) throw doc;
      const [response] = doc.children;
      expect(response?.name).toBe('Response');
      expect(response?.children.map((c) => c.name)).toEqual(['Say']);
      expect(response?.children[0]?.children).toEqual([]);
      expect(response?.children[0]?.text).toBe(`Hi ${name}`);
    }
  });

  it('keeps well-formed XML with the same elements for any text a field can hold', () => {
    const t = template(SAY);
    fc.assert(
      fc.property(fieldText, fieldText, (name, voice) => {
        const doc = parseXml(renderTemplate(t, { name, voice }));
        expect(doc).not.toBeInstanceOf(Error);
        const [response] = (doc as Element).children;
        expect((doc as Element).children).toHaveLength(1);
        expect(response!.children.map((c) => c.name)).toEqual(['Say']);
        const say = response!.children[0]!;
        expect(say.children).toEqual([]);
        // The text is the field's, less what XML cannot carry (line ends as an XML parser reads them).
        const kept = escapeXml(name)
          .replace(/&lt;/g, '<')
          .replace(/&gt;/g, '>')
          .replace(/&quot;/g, '"')
          .replace(/&apos;/g, "'")
          .replace(/&amp;/g, '&')
          .replace(/\r\n?/g, '\n');
        expect(say.text).toBe(`Hello ${kept}, this is us.`);
        expect(Object.keys(say.attributes)).toEqual(['voice']);
      }),
      { numRuns: 300 },
    );
  });

  it('needs a field unless every use of it has a default; absent and null alike', () => {
    const t = template(
      '<Response><Say>{{name|friend}}, {{name}}</Say><Play>{{clip|https://x/a.mp3}}</Play></Response>',
    );
    expect(missingFields(t, {})).toEqual(['name']);
    expect(missingFields(t, { name: null })).toEqual(['name']);
    expect(missingFields(t, { name: '' })).toEqual([]);
    expect(missingFields(t, { name: 0 })).toEqual([]);
  });

  it('refuses what is not a template', () => {
    expect(parseTemplate('<Response><Say>{{name</Say></Response>')).toEqual({
      problem: 'a {{ at character 16 is never closed with }}',
    });
    expect(parseTemplate('<Response>{{ }}</Response>')).toMatchObject({
      problem: expect.stringContaining('names no field'),
    });
    expect(parseTemplate('<Response>{{|x}}</Response>')).toMatchObject({
      problem: expect.stringContaining('names no field'),
    });
    expect(parseTemplate('<Response><Say>no fields</Say></Response>')).toEqual({
      parts: ['<Response><Say>no fields</Say></Response>'],
      fields: [],
    });
  });
});

describe('leads against a run’s templates', () => {
  const leads: { phone: string; attributes: Record<string, LeadAttributeValue> }[] = [
    { phone: '+972522000001', attributes: { name: 'Dana' } },
    { phone: '+972522000002', attributes: {} },
    { phone: '+972522000003', attributes: { name: null } },
  ];

  it('names each lead without a field the template needs, by row (and CSV line)', () => {
    const options = { twiml: '<Response><Say>Hi {{name}}, from {{phone}}</Say></Response>' };
    expect(templateProblems(leads, options).details).toEqual([
      { field: 'leads[1].name', row: 1, message: expect.stringContaining('twiml uses {{name}}') },
      { field: 'leads[2].name', row: 2, message: expect.stringContaining('twiml uses {{name}}') },
    ]);
    expect(templateProblems(leads, options, csvLeadLocator([2, 3, 5])).details).toEqual([
      { field: 'name', row: 1, line: 3, message: expect.any(String) },
      { field: 'name', row: 2, line: 5, message: expect.any(String) },
    ]);
    expect(
      templateProblems(leads, { twiml: '<Response><Say>Hi {{name|there}}</Say></Response>' }).count,
    ).toBe(0);
    expect(
      templateProblems(leads, {
        machineDetection: 'DetectMessageEnd',
        voicemailTwiml: '<Response><Say>{{name}}</Say></Response>',
      }).details.map((d) => d.field),
    ).toEqual(['leads[1].name', 'leads[2].name']);
  });

  it('refuses a lead whose filled-in TwiML would pass Twilio’s 4000', () => {
    const long = [{ phone: '+972522000001', attributes: { note: '<'.repeat(1000) } }];
    const { details } = templateProblems(long, { twiml: '<Response><Say>{{note}}</Say></Response>' });
    expect(details).toEqual([{ field: 'leads[0]', row: 0, message: expect.stringContaining('4032 bytes') }]);
  });

  it('calls a TwiML URL with the run, the job, the attempt and the lead’s fields', () => {
    const lead = {
      runId: '3f1c9a4e-7b2d-4c55-9e0a-1d2b3c4d5e6f',
      jobId: '000007',
      attempt: 2,
      phone: '+972522000001',
      attributes: { name: 'Dana & Noa', crm_id: 'C-1042', vip: true, note: null },
    };
    const url = new URL(twimlUrlFor('https://twiml.example.com/voice.xml?lang=he', lead));
    expect(url.origin + url.pathname).toBe('https://twiml.example.com/voice.xml');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      lang: 'he',
      run_id: lead.runId,
      job_id: '000007',
      attempt: '2',
      lead_name: 'Dana & Noa',
      lead_crm_id: 'C-1042',
      lead_vip: 'true',
      lead_note: '',
    });
    expect(contentForLead({ twiml: '<Response><Say>{{name}}</Say></Response>' }, lead)).toEqual({
      twiml: '<Response><Say>Dana &amp; Noa</Say></Response>',
    });
    expect(contentForLead({ twiml: '<Response/>' }, lead)).toEqual({ twiml: '<Response/>' });
  });
});
