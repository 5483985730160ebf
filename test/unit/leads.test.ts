import { describe, expect, it } from 'vitest';
import { asciiJson } from '../../lambdas/core/ascii-json.ts';
import { chunk, LEADS_PER_CHUNK } from '../../lambdas/core/create-run.ts';
import { PayloadTooLargeError, ValidationError } from '../../lambdas/core/errors.ts';
import { maskPhone, normalizePhone, validateRunRequest } from '../../lambdas/core/leads.ts';

const limits = { defaultConcurrency: 3, maxConcurrency: 10, maxLeads: 5 };

function errorOf(body: unknown): ValidationError | PayloadTooLargeError {
  try {
    validateRunRequest(body, limits);
  } catch (error) {
    if (error instanceof ValidationError || error instanceof PayloadTooLargeError) return error;
    throw error;
  }
  throw new Error('expected the request to be refused');
}

describe('normalizePhone', () => {
  it.each([
    ['+972502345678', '+972502345678'],
    ['+972 50-234-5678', '+972502345678'],
    ['00972502345678', '+972502345678'],
    ['+1 (415) 555-0100', '+14155550100'],
  ])('%s → %s', (raw, e164) => expect(normalizePhone(raw)).toBe(e164));

  it.each(['0501234567', '+0501234567', '+97250abc4567', '+1234', '+1234567890123456', ''])(
    'refuses %s',
    (raw) => {
      expect(normalizePhone(raw)).toBeUndefined();
    },
  );
});

describe('maskPhone', () => {
  it('keeps only the country prefix and the last two digits', () => {
    expect(maskPhone('+972502345678')).toBe('+972*******78');
  });
});

describe('validateRunRequest', () => {
  it('accepts leads, normalises phones and keeps the other fields', () => {
    const result = validateRunRequest(
      { leads: [{ phone: '+972 50 234 5678', name: 'Dana', id: 'crm-1', vip: true }], concurrency: 2 },
      limits,
    );
    expect(result).toEqual({
      concurrency: 2,
      leads: [{ phone: '+972502345678', attributes: { name: 'Dana', id: 'crm-1', vip: true } }],
    });
  });

  it('defaults the concurrency to 3', () => {
    expect(validateRunRequest({ leads: [{ phone: '+14155550100' }] }, limits).concurrency).toBe(3);
  });

  it.each([
    [null, 'body'],
    [[], 'body'],
    [{}, 'leads'],
    [{ leads: 'x' }, 'leads'],
    [{ leads: [] }, 'leads'],
    [{ leads: [{ phone: '+14155550100' }], concurrency: 0 }, 'concurrency'],
    [{ leads: [{ phone: '+14155550100' }], concurrency: 11 }, 'concurrency'],
    [{ leads: [{ phone: '+14155550100' }], concurrency: 2.5 }, 'concurrency'],
    [{ leads: [{ phone: '+14155550100' }], concurrency: '3' }, 'concurrency'],
  ])('refuses %j naming %s', (body, field) => {
    const error = errorOf(body);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.details.map((d) => d.field)).toContain(field);
  });

  it('names the row of each bad lead, and the first row of a duplicate', () => {
    const error = errorOf({
      leads: [
        { phone: '+14155550100' },
        { phone: 'nope' },
        { name: 'no phone' },
        { phone: '+1 415 555 0100' },
        7,
      ],
    });
    expect(error.details).toEqual([
      { field: 'leads[1].phone', row: 1, message: expect.stringContaining('not a phone number') },
      { field: 'leads[2].phone', row: 2, message: expect.stringContaining('required') },
      { field: 'leads[3].phone', row: 3, message: 'the same number as leads[0]' },
      { field: 'leads[4]', row: 4, message: expect.any(String) },
    ]);
  });

  it('refuses nested lead fields', () => {
    const error = errorOf({ leads: [{ phone: '+14155550100', tags: ['a'] }] });
    expect(error.details[0]).toMatchObject({ field: 'leads[0].tags', row: 0 });
  });

  it('refuses too many leads with 413', () => {
    const leads = Array.from({ length: 6 }, (_, i) => ({ phone: `+1415555010${i}` }));
    expect(errorOf({ leads })).toBeInstanceOf(PayloadTooLargeError);
  });
});

describe('queue messages', () => {
  it('writes JSON in ASCII alone that parses back to the same value, whatever the text', () => {
    const value = { a: '😀 שלום \uffff\ufffe\u0000\u007f', b: ['\ud800'], c: 1.5 };
    const text = asciiJson(value);
    expect(text).toMatch(/^[\x20-\x7e]*$/);
    expect(JSON.parse(text)).toEqual(value);
  });

  it('cuts chunks by size as well as by count, so every message stays within SQS’s 256 KiB', () => {
    // 90 leads of 2 KB of Hebrew each: 180 KB as UTF-8, three times that once escaped.
    const note = 'ש'.repeat(1000);
    const jobs = Array.from({ length: 200 }, (_, i) => ({
      jobId: String(i).padStart(6, '0'),
      phone: `+97252${String(2_000_000 + i)}`,
      attributes: { note },
    }));
    const chunks = chunk(jobs, LEADS_PER_CHUNK, 4);
    expect(chunks.flatMap((c) => c.jobs)).toEqual(jobs);
    expect(chunks.map((c) => c.chunk)).toEqual(chunks.map((_, i) => 4 + i));
    for (const c of chunks) {
      expect(
        asciiJson({ type: 'ingest', runId: 'r'.repeat(64), chunk: c.chunk, jobs: c.jobs }).length,
      ).toBeLessThan(256 * 1024);
    }
    expect(chunks.length).toBeGreaterThan(Math.ceil(200 / LEADS_PER_CHUNK));
    // Small leads still go 90 to a message.
    expect(
      chunk(
        jobs.map((job) => ({ ...job, attributes: {} })),
        LEADS_PER_CHUNK,
      ).map((c) => c.jobs.length),
    ).toEqual([90, 90, 20]);
  });
});
