// Pure parts of the dialer policy: calling-window arithmetic across days, zones and DST, the
// validation of run options, and CSV leads named by line.

import { describe, expect, it } from 'vitest';
import { type CallingWindow, isOpen, nextOpening } from '../../lambdas/core/calling-window.ts';
import { parseCsvLeads } from '../../lambdas/core/csv-leads.ts';
import type { ErrorDetail } from '../../lambdas/core/errors.ts';
import { type CallPolicy, optionsFromQuery, validateRunOptions } from '../../lambdas/core/run-options.ts';
import { readEnv } from '../../lambdas/definitions/environment.ts';

const jerusalem: CallingWindow = {
  timeZone: 'Asia/Jerusalem',
  days: ['sun', 'mon', 'tue', 'wed', 'thu'],
  start: '09:00',
  end: '20:00',
};
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
/** "Now" for run options that are judged against it (start_at, expires_at). */
const NOW = Date.parse('2026-11-30T08:00:00Z');

describe('calling window', () => {
  it('is open from start (inclusive) to end (exclusive) on its days, in its zone', () => {
    expect(isOpen(jerusalem, at('2026-11-29T07:00:00Z'))).toBe(true); // Sun 09:00 (UTC+2)
    expect(isOpen(jerusalem, at('2026-11-29T06:59:59Z'))).toBe(false);
    expect(isOpen(jerusalem, at('2026-11-29T17:59:59Z'))).toBe(true);
    expect(isOpen(jerusalem, at('2026-11-29T18:00:00Z'))).toBe(false); // 20:00
    expect(isOpen(jerusalem, at('2026-11-27T10:00:00Z'))).toBe(false); // Friday
  });

  it('finds the next opening: later today, the next day, or after the weekend', () => {
    expect(iso(nextOpening(jerusalem, at('2026-11-29T05:00:00Z')))).toBe('2026-11-29T07:00:00.000Z');
    expect(iso(nextOpening(jerusalem, at('2026-11-29T19:00:00Z')))).toBe('2026-11-30T07:00:00.000Z');
    // Thursday evening → Sunday morning.
    expect(iso(nextOpening(jerusalem, at('2026-12-03T18:30:00Z')))).toBe('2026-12-06T07:00:00.000Z');
    const now = at('2026-11-29T12:34:56Z');
    expect(nextOpening(jerusalem, now)).toBe(now);
  });

  it('uses a lead’s own zone when it has one', () => {
    const now = at('2026-11-29T12:00:00Z'); // 14:00 in Jerusalem, 07:00 in New York
    expect(isOpen(jerusalem, now)).toBe(true);
    expect(isOpen(jerusalem, now, 'America/New_York')).toBe(false);
    expect(iso(nextOpening(jerusalem, now, 'America/New_York'))).toBe('2026-11-29T14:00:00.000Z');
  });

  it('follows daylight saving time', () => {
    const ny: CallingWindow = {
      timeZone: 'America/New_York',
      days: ['sun', 'mon'],
      start: '09:00',
      end: '17:00',
    };
    // Sunday 8 March 2026 is the switch to EDT (UTC−4): 09:00 is 13:00Z, not 14:00Z.
    expect(iso(nextOpening(ny, at('2026-03-08T05:00:00Z')))).toBe('2026-03-08T13:00:00.000Z');
    expect(iso(nextOpening(ny, at('2026-03-01T05:00:00Z')))).toBe('2026-03-01T14:00:00.000Z');
  });
});

const policy: CallPolicy = {
  allowedFrom: ['+15005550006', '+972502345678'],
  twimlUrlPrefixes: ['https://twiml.example.com/'],
  maxTwimlBytes: 100,
};
function check(body: Record<string, unknown>) {
  const details: ErrorDetail[] = [];
  const options = validateRunOptions(body, policy, details, NOW);
  return { options, fields: details.map((d) => d.field) };
}

describe('schedule and failure breaker options', () => {
  it('takes start_at and expires_at with any offset, kept in UTC, and a breaker', () => {
    const { options, fields } = check({
      start_at: '2026-12-01T09:00:00+02:00',
      expires_at: '2026-12-01T20:30Z',
      pause_when: { failed_ratio: 0.25, min_calls: 20 },
    });
    expect(fields).toEqual([]);
    expect(options).toEqual({
      startAt: '2026-12-01T07:00:00.000Z',
      expiresAt: '2026-12-01T20:30:00.000Z',
      pauseWhen: { failedRatio: 0.25, minCalls: 20 },
    });
    expect(check({ pause_when: { failed_ratio: 0, min_calls: 1 } }).fields).toEqual([]);
    expect(check({ pause_when: { failed_ratio: 1, min_calls: 100 } }).fields).toEqual([]);
  });

  it('names the field of a bad time: past, malformed, without an offset, no such date, out of order', () => {
    const fieldsOf = (body: Record<string, unknown>) => check(body).fields;
    expect(fieldsOf({ start_at: '2026-11-30T07:59:59Z' })).toEqual(['start_at']); // NOW is 08:00Z
    expect(fieldsOf({ start_at: '2026-11-30T08:00:00Z' })).toEqual(['start_at']);
    expect(fieldsOf({ expires_at: '2026-11-30T09:00:00+02:00' })).toEqual(['expires_at']); // 07:00Z
    expect(fieldsOf({ start_at: '2026-12-01T09:00:00' })).toEqual(['start_at']); // no offset: whose 09:00?
    expect(fieldsOf({ start_at: '2026-12-01 09:00:00Z' })).toEqual(['start_at']);
    expect(fieldsOf({ start_at: '2027-02-30T09:00:00Z' })).toEqual(['start_at']);
    expect(fieldsOf({ start_at: '2026-12-01T24:00:00Z' })).toEqual(['start_at']);
    expect(fieldsOf({ start_at: 1764576000000 })).toEqual(['start_at']);
    expect(fieldsOf({ start_at: '2028-12-01T09:00:00Z' })).toEqual(['start_at']); // beyond the horizon
    expect(fieldsOf({ start_at: '2026-12-02T09:00:00Z', expires_at: '2026-12-02T09:00:00Z' })).toEqual([
      'expires_at',
    ]);
    expect(fieldsOf({ start_at: '2026-12-02T09:00:00Z', expires_at: '2026-12-01T09:00:00Z' })).toEqual([
      'expires_at',
    ]);
    const message = check({ start_at: '2026-11-29T08:00:00Z' });
    expect(message.options.startAt).toBeUndefined();
  });

  it('names every bad field of pause_when, unknown ones included', () => {
    expect(check({ pause_when: { failed_ratio: 1.5, min_calls: 0, window: 3 } }).fields).toEqual([
      'pause_when.window',
      'pause_when.failed_ratio',
      'pause_when.min_calls',
    ]);
    expect(check({ pause_when: { failed_ratio: '0.5', min_calls: 2.5 } }).fields).toEqual([
      'pause_when.failed_ratio',
      'pause_when.min_calls',
    ]);
    expect(check({ pause_when: { min_calls: 10 } }).fields).toEqual(['pause_when.failed_ratio']);
    expect(check({ pause_when: { failed_ratio: 0.5, min_calls: 101 } }).fields).toEqual([
      'pause_when.min_calls',
    ]);
    expect(check({ pause_when: 0.5 }).fields).toEqual(['pause_when']);
  });

  it("reads them from a CSV upload's query string", () => {
    const details: ErrorDetail[] = [];
    const body = optionsFromQuery(
      {
        start_at: '2026-12-01T09:00:00+02:00',
        expires_at: '2026-12-01T18:00:00+02:00',
        'pause_when.failed_ratio': '0.5',
        'pause_when.min_calls': '10',
      },
      details,
    );
    expect(details).toEqual([]);
    expect(validateRunOptions(body, policy, details, NOW)).toEqual({
      startAt: '2026-12-01T07:00:00.000Z',
      expiresAt: '2026-12-01T16:00:00.000Z',
      pauseWhen: { failedRatio: 0.5, minCalls: 10 },
    });
    expect(details).toEqual([]);
  });
});

describe('run options', () => {
  it('takes valid options, with defaults for what is left out', () => {
    const { options, fields } = check({
      retry: { on: ['busy'] },
      window: { time_zone: 'Asia/Jerusalem', start: '09:00', end: '24:00' },
      from: '+972502345678',
      twiml_url: 'https://twiml.example.com/hello.xml',
    });
    expect(fields).toEqual([]);
    expect(options).toEqual({
      retry: { on: ['busy'], delaySeconds: 600, maxAttempts: 3 },
      window: {
        timeZone: 'Asia/Jerusalem',
        days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'],
        start: '09:00',
        end: '24:00',
      },
      from: '+972502345678',
      twimlUrl: 'https://twiml.example.com/hello.xml',
    });
  });

  it('names every bad field', () => {
    expect(
      check({
        retry: { on: ['busy', 'busy'], delay_seconds: -1, max_attempts: 11, extra: 1 },
        window: { time_zone: 'Mars/Olympus', days: ['sun', 'funday'], start: '9am', end: '08:00' },
        from: '+14155234567',
        twiml: `<Response>${'x'.repeat(200)}</Response>`,
      }).fields,
    ).toEqual([
      'retry.extra',
      'retry.on',
      'retry.delay_seconds',
      'retry.max_attempts',
      'window.time_zone',
      'window.days',
      'window.start',
      'from',
      'twiml',
    ]);
    expect(check({ window: { time_zone: 'UTC', start: '10:00', end: '09:00' } }).fields).toEqual([
      'window.end',
    ]);
    expect(check({ twiml_url: 'https://evil.example.com/x', twiml: '<Response/>' }).fields).toEqual([
      'twiml',
    ]);
    expect(check({ twiml_url: 'https://evil.example.com/x' }).fields).toEqual(['twiml_url']);
  });

  it('checks twiml_url as a parsed URL: https, the exact host, within the path prefix', () => {
    const strict: CallPolicy = { ...policy, twimlUrlPrefixes: ['https://twiml.example.com/voice'] };
    const urlCheck = (twimlUrl: string) => {
      const details: ErrorDetail[] = [];
      const options = validateRunOptions({ twiml_url: twimlUrl }, strict, details, NOW);
      return details.length === 0 ? options.twimlUrl : undefined;
    };
    for (const refused of [
      'https://twiml.example.com@evil.example/x',
      'https://twiml.example.com@evil.example/voice/x',
      'https://twiml.example.com.evil.example/voice/x',
      'https://user:pw@twiml.example.com/voice/x',
      'https://twiml.example.com:8443/voice/x',
      'http://twiml.example.com/voice/x',
      'https://twiml.example.com/voice-admin/x',
      'https://twiml.example.com/voicex',
      'https://twiml.example.com/voice/../admin/x',
      'https://twiml.example.com/voice/%2e%2e/admin/x',
      'https://twiml.example.com/',
      'javascript:alert(1)',
      'not a url',
    ]) {
      expect(urlCheck(refused), refused).toBeUndefined();
    }
    expect(urlCheck('https://twiml.example.com/voice')).toBe('https://twiml.example.com/voice');
    expect(urlCheck('https://TWIML.example.com/voice/hello.xml?lang=he')).toBe(
      'https://twiml.example.com/voice/hello.xml?lang=he',
    );
    expect(urlCheck('https://twiml.example.com:443/voice/a/../b.xml')).toBe(
      'https://twiml.example.com/voice/b.xml',
    );
  });

  it('refuses inline TwiML when the deployment allows none (MAX_TWIML_BYTES 0, the default)', () => {
    const details: ErrorDetail[] = [];
    const options = validateRunOptions(
      { twiml: '<Response><Dial>+972522345677</Dial></Response>' },
      { ...policy, maxTwimlBytes: 0 },
      details,
      NOW,
    );
    expect(options.twiml).toBeUndefined();
    expect(details).toEqual([expect.objectContaining({ field: 'twiml' })]);
    expect(readEnv(['MAX_TWIML_BYTES'], {}).MAX_TWIML_BYTES).toBe(0);
  });

  it('takes only https places as TwiML URL prefixes in the configuration', () => {
    expect(
      readEnv(['TWIML_URL_ALLOWED_PREFIXES'], {
        TWIML_URL_ALLOWED_PREFIXES: 'https://twiml.example.com/voice/, https://b.example/',
      }).TWIML_URL_ALLOWED_PREFIXES,
    ).toEqual(['https://twiml.example.com/voice/', 'https://b.example/']);
    for (const bad of [
      'http://twiml.example.com/',
      'https://u@twiml.example.com/',
      'https://a.example/?x=1',
    ]) {
      expect(() => readEnv(['TWIML_URL_ALLOWED_PREFIXES'], { TWIML_URL_ALLOWED_PREFIXES: bad }), bad).toThrow(
        /TWIML_URL_ALLOWED_PREFIXES/,
      );
    }
  });

  it('reads a CSV upload’s options from the query string, refusing unknown ones', () => {
    const details: ErrorDetail[] = [];
    expect(
      optionsFromQuery(
        {
          concurrency: '2',
          'retry.on': 'busy, no-answer',
          'retry.delay_seconds': '60',
          'window.days': 'sun,mon',
          typo: 'x',
        },
        details,
      ),
    ).toEqual({
      concurrency: 2,
      retry: { on: ['busy', 'no-answer'], delay_seconds: 60 },
      window: { days: ['sun', 'mon'] },
    });
    expect(details.map((d) => d.field)).toEqual(['typo']);
  });
});

describe('CSV leads', () => {
  it('keeps every column but phone as attributes, and knows each lead’s line', () => {
    const csv =
      '\uFEFFName,PHONE,notes\r\nDana,+972502345678,"likes ""quotes"", and\ncommas"\r\n\r\nEli,+14155550100,\n';
    expect(parseCsvLeads(csv)).toEqual({
      leads: [
        { Name: 'Dana', phone: '+972502345678', notes: 'likes "quotes", and\ncommas' },
        { Name: 'Eli', phone: '+14155550100' },
      ],
      lines: [2, 5],
    });
  });

  it('names the line of a row it cannot read', () => {
    expect(() => parseCsvLeads('phone,name\n+1,a\n+2,b,c\n')).toThrow(
      expect.objectContaining({ details: [expect.objectContaining({ field: 'body', line: 3 })] }),
    );
    expect(() => parseCsvLeads('')).toThrow(expect.objectContaining({ message: 'The CSV is empty.' }));
    expect(() => parseCsvLeads('phone,phone\n+1,+2\n')).toThrow(
      expect.objectContaining({ details: [expect.objectContaining({ field: 'header', line: 1 })] }),
    );
  });

  it('reads semicolon- and tab-separated files by their header row, commas in cells included', () => {
    expect(parseCsvLeads('phone;name\n+972522345677;Dana, from Haifa\n').leads).toEqual([
      { phone: '+972522345677', name: 'Dana, from Haifa' },
    ]);
    expect(parseCsvLeads('name\tphone\nEli\t+14155550100\n').leads).toEqual([
      { name: 'Eli', phone: '+14155550100' },
    ]);
  });

  it('says when the line breaks were lost (curl -d), rather than that there are no leads', () => {
    expect(() => parseCsvLeads('phone,name+14155550100,Dana+14155550101,Eli')).toThrow(
      expect.objectContaining({
        details: [expect.objectContaining({ message: expect.stringContaining('--data-binary @leads.csv') })],
      }),
    );
  });
});
