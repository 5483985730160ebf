// Phone numbers as dialgate takes them: valid for their country by libphonenumber's full metadata, on
// real formats of several countries; national numbers only with DEFAULT_COUNTRY; number types restricted
// by the deployment or the run; and the E.164 form is what is stored and called.

import { describe, expect, it } from 'vitest';
import { appendLeads } from '../../lambdas/core/append-leads.ts';
import { createRun } from '../../lambdas/core/create-run.ts';
import { csvRequest } from '../../lambdas/core/csv-leads.ts';
import { ValidationError } from '../../lambdas/core/errors.ts';
import type { CallPolicy } from '../../lambdas/core/run-options.ts';
import { readEnv } from '../../lambdas/definitions/environment.ts';
import { PHONE_TYPES } from '../../lambdas/definitions/formats.ts';
import { checkPhone, phoneSettingProblems } from '../../lambdas/definitions/phone-numbers.ts';
import { drain, type World, world } from '../support/unit-world.ts';

describe('checkPhone on real formats of several countries', () => {
  it.each([
    ['an Israeli mobile', '+972 52-234-5678', '+972522345678', 'mobile'],
    ['an Israeli mobile with 00', '00972 53 665 1094', '+972536651094', 'mobile'],
    ['an Israeli landline (Jerusalem)', '+972 2-625-1111', '+97226251111', 'fixed_line'],
    ['a US number (San Francisco)', '+1 (415) 555-0123', '+14155550123', 'fixed_line_or_mobile'],
    ['a US toll-free number', '+1 800 555 0199', '+18005550199', 'toll_free'],
    ['a UK landline (London)', '+44 20 7183 8750', '+442071838750', 'fixed_line'],
    ['a UK mobile', '+44 7911 123456', '+447911123456', 'mobile'],
    ['a French mobile', '+33 6 12 34 56 78', '+33612345678', 'mobile'],
    ['a German mobile', '+49 151 23456789', '+4915123456789', 'mobile'],
  ])('accepts %s: %s → %s (%s)', (_case, raw, e164, type) => {
    expect(checkPhone(raw)).toEqual({ ok: true, phone: e164 });
    // The type is told when a restriction needs it.
    expect(checkPhone(raw, { types: PHONE_TYPES })).toEqual({ ok: true, phone: e164, type });
  });

  it.each([
    // 1xx is no area code in the North American plan: the regular expression took it.
    ['a US number with area code 123', '+1 123 456 7890', 'no country with calling code +1 has this range'],
    // Israel assigns no mobiles at 052-1 and 050-1 (the well-worn example +972 50-123-4567 among them).
    ['an Israeli 052-1 number', '+972 52-123-4567', 'not a valid number in IL'],
    ['an Israeli 050-1 number', '+972501234567', 'not a valid number in IL'],
    // Ofcom keeps 07700 900xxx for drama: no one has it.
    ['a UK drama-range mobile', '+44 7700 900123', 'not a valid number'],
    ['a country code no one has', '+999 123 456 789', 'no country has this calling code'],
    ['a number too short', '+1 415 555', 'too short'],
    ['a number too long', '+1 415 555 0123 4567', 'too long'],
    ['letters', '+972 52-ABC-5678', 'not a phone number'],
    ['an extension', '+1 415 555 0123 ext 5', 'not a phone number'],
    ['a tel: URI', 'tel:+14155550123', 'not a phone number'],
    ['a national number without DEFAULT_COUNTRY', '052-234-5678', 'no country code'],
  ])('refuses %s (%s)', (_case, raw, problem) => {
    const check = checkPhone(raw);
    expect(check.ok).toBe(false);
    expect(check.ok ? '' : check.problem).toContain(problem);
    // The message names what is wrong, never the number.
    expect(check.ok ? '' : check.problem).not.toMatch(/\d{5}/);
  });

  it('reads national numbers as the default country’s, and stores them in E.164', () => {
    expect(checkPhone('052-234-5678', { defaultCountry: 'IL' })).toEqual({
      ok: true,
      phone: '+972522345678',
    });
    expect(checkPhone('(415) 555-0123', { defaultCountry: 'US' })).toMatchObject({ phone: '+14155550123' });
    // A number with its country code is read as written, whatever the default.
    expect(checkPhone('+44 20 7183 8750', { defaultCountry: 'IL' })).toMatchObject({
      phone: '+442071838750',
    });
    // A national number the default country does not assign is refused like an international one.
    expect(checkPhone('052-123-4567', { defaultCountry: 'IL' })).toMatchObject({ ok: false });
  });

  it('refuses a landline when only mobiles are taken, and says why a US number never is one', () => {
    const rules = { types: ['mobile'] as const, typesFrom: 'phone_types' };
    expect(checkPhone('+972 52-234-5678', rules)).toMatchObject({ ok: true });
    expect(checkPhone('+972 2-625-1111', rules)).toEqual({
      ok: false,
      problem: 'a fixed_line number; only mobile numbers are taken (phone_types)',
    });
    expect(checkPhone('+1 415 555 0123', rules)).toMatchObject({
      ok: false,
      problem: expect.stringContaining('add fixed_line_or_mobile for US and Canadian numbers'),
    });
    expect(checkPhone('+1 415 555 0123', { types: ['mobile', 'fixed_line_or_mobile'] })).toMatchObject({
      ok: true,
    });
  });
});

describe('the deployment’s phone settings', () => {
  it('DEFAULT_COUNTRY: an alpha-2 code (any case) is its form; a country with numbers is its meaning', () => {
    expect(readEnv(['DEFAULT_COUNTRY'], { DEFAULT_COUNTRY: 'il' }).DEFAULT_COUNTRY).toBe('IL');
    expect(readEnv(['DEFAULT_COUNTRY'], {}).DEFAULT_COUNTRY).toBeUndefined();
    expect(() => readEnv(['DEFAULT_COUNTRY'], { DEFAULT_COUNTRY: 'ISR' })).toThrow(/DEFAULT_COUNTRY/);
    const named = (value: string) => ({ name: 'DEFAULT_COUNTRY', value });
    expect(phoneSettingProblems({ fromNumbers: [], defaultCountry: named('IL') })).toEqual([]);
    // Well-formed, but no country: ZZ; Antarctica has no numbering plan of its own.
    expect(phoneSettingProblems({ fromNumbers: [], defaultCountry: named('ZZ') })).toEqual([
      expect.stringMatching(/^DEFAULT_COUNTRY: "ZZ" is not an ISO 3166 alpha-2 country/),
    ]);
    expect(phoneSettingProblems({ fromNumbers: [], defaultCountry: named('AQ') })).toHaveLength(1);
  });

  it('ALLOWED_PHONE_TYPES: libphonenumber’s types, comma-separated', () => {
    expect(readEnv(['ALLOWED_PHONE_TYPES'], { ALLOWED_PHONE_TYPES: 'mobile, fixed_line_or_mobile' })).toEqual(
      {
        ALLOWED_PHONE_TYPES: ['mobile', 'fixed_line_or_mobile'],
      },
    );
    expect(readEnv(['ALLOWED_PHONE_TYPES'], {}).ALLOWED_PHONE_TYPES).toEqual([]);
    expect(() => readEnv(['ALLOWED_PHONE_TYPES'], { ALLOWED_PHONE_TYPES: 'mobile,cell' })).toThrow(
      /ALLOWED_PHONE_TYPES/,
    );
  });

  it('caller ids must be E.164 numbers valid for their country; the report names the setting, not the number', () => {
    expect(
      phoneSettingProblems({
        fromNumbers: [
          { name: 'TWILIO_FROM_NUMBER', value: '+15005550006' }, // Twilio's test caller id: valid
          { name: 'ALLOWED_FROM_NUMBERS[0]', value: '+972522345678' },
          { name: 'ALLOWED_FROM_NUMBERS[1]', value: '+11234567890' },
          { name: 'ALLOWED_FROM_NUMBERS[2]', value: '+1 415 555 0123' },
        ],
      }),
    ).toEqual([
      'ALLOWED_FROM_NUMBERS[1]: not a valid number: no country with calling code +1 has this range',
      'ALLOWED_FROM_NUMBERS[2]: not written in E.164 (+ country code, digits only)',
    ]);
  });
});

function deps(w: World, policy: Partial<CallPolicy> = {}) {
  let n = 0;
  return {
    store: w.store,
    queue: w.queue,
    clock: w.clock,
    limits: { defaultConcurrency: 2, maxConcurrency: 10, maxLeads: 100 },
    policy: { allowedFrom: ['+15005550006'], twimlUrlPrefixes: [], maxTwimlBytes: 0, ...policy },
    newRunId: () => `run-${++n}`,
  };
}

async function refusal(promise: Promise<unknown>): Promise<ValidationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ValidationError);
  return error as ValidationError;
}

describe('runs: what is refused by row, and what is stored and called', () => {
  it('with DEFAULT_COUNTRY, national numbers are stored and called in E.164; a duplicate across forms is one number', async () => {
    const w = world();
    const d = deps(w, { defaultCountry: 'IL' });
    const view = await createRun(d, {
      leads: [
        { phone: '052-234-5678', name: 'Dana' },
        { phone: '+1 415 555 0123' },
        { phone: '03-123-4567' },
      ],
    });
    await drain(w);
    const jobs = (await w.store.listJobs(view.run_id, { limit: 10 })).items;
    expect(jobs.map((job) => job.phone)).toEqual(['+972522345678', '+14155550123', '+97231234567']);
    expect([...w.telephony.calls.values()].map((call) => call.to).sort()).toEqual([
      '+14155550123',
      '+97231234567',
      '+972522345678',
    ]);

    const duplicate = await refusal(
      createRun(d, { leads: [{ phone: '+972 52-234-5678' }, { phone: '0522345678' }] }),
    );
    expect(duplicate.details).toEqual([
      { field: 'leads[1].phone', row: 1, message: 'the same number as leads[0]' },
    ]);
  });

  it('without DEFAULT_COUNTRY a national number is refused by row, and nothing is created', async () => {
    const w = world();
    const error = await refusal(
      createRun(deps(w), { leads: [{ phone: '+972522345678' }, { phone: '052-234-5679' }] }),
    );
    expect(error.details).toEqual([
      { field: 'leads[1].phone', row: 1, message: expect.stringContaining('no country code') },
    ]);
    expect(await w.store.getRun('run-1')).toBeUndefined();
    expect(w.queue.chunks).toEqual([]);
  });

  it('an invalid US area code is refused by row; the valid leads beside it do not make a run', async () => {
    const w = world();
    const error = await refusal(
      createRun(deps(w), { leads: [{ phone: '+14155550123' }, { phone: '+1 123 555 0123' }] }),
    );
    expect(error.details).toEqual([
      {
        field: 'leads[1].phone',
        row: 1,
        message: 'not a valid number: no country with calling code +1 has this range',
      },
    ]);
    expect(w.queue.chunks).toEqual([]);
  });

  it('phone_types: a landline refused by row, in the run and in what is appended to it', async () => {
    const w = world();
    const d = deps(w);
    const mobileOnly = await refusal(
      createRun(d, {
        phone_types: ['mobile'],
        leads: [{ phone: '+972522345678' }, { phone: '+97226251111' }],
      }),
    );
    expect(mobileOnly.details).toEqual([
      {
        field: 'leads[1].phone',
        row: 1,
        message: 'a fixed_line number; only mobile numbers are taken (phone_types)',
      },
    ]);

    const view = await createRun(d, { phone_types: ['mobile'], leads: [{ phone: '+972522345678' }] });
    expect(view.phone_types).toEqual(['mobile']);
    const appended = await refusal(
      appendLeads(d, view.run_id, { leads: [{ phone: '+972536651094' }, { phone: '+97231234567' }] }),
    );
    expect(appended.details).toEqual([
      { field: 'leads[1].phone', row: 1, message: expect.stringContaining('a fixed_line number') },
    ]);
    expect((await appendLeads(d, view.run_id, { leads: [{ phone: '+972536651094' }] })).appended).toBe(1);
  });

  it('ALLOWED_PHONE_TYPES applies to runs that set none, and bounds the ones a run may set', async () => {
    const w = world();
    const d = deps(w, { allowedPhoneTypes: ['mobile', 'fixed_line_or_mobile'] });
    const landline = await refusal(createRun(d, { leads: [{ phone: '+442071838750' }] }));
    expect(landline.details[0]).toMatchObject({
      field: 'leads[0].phone',
      message: expect.stringContaining('(ALLOWED_PHONE_TYPES)'),
    });
    const wider = await refusal(
      createRun(d, { phone_types: ['mobile', 'voip'], leads: [{ phone: '+447911123456' }] }),
    );
    expect(wider.details).toEqual([
      {
        field: 'phone_types',
        message: 'not allowed here: voip (ALLOWED_PHONE_TYPES is mobile, fixed_line_or_mobile)',
      },
    ]);
    const ok = await createRun(d, { leads: [{ phone: '+447911123456' }, { phone: '+14155550123' }] });
    expect(ok.total_leads).toBe(2);
    expect(ok.phone_types).toBeNull();
  });

  it('a CSV’s bad rows are named by line, the query’s phone_types applying to them', async () => {
    const w = world();
    const text =
      'name,phone\nDana,052-234-5678\nEli,+1 123 456 7890\nGil,+972 2-625-1111\nNoa,+972536651094\n';
    const { body, locate } = csvRequest(
      text,
      { phone_types: 'mobile,fixed_line_or_mobile' },
      { runOptions: true },
    );
    const error = await refusal(createRun(deps(w, { defaultCountry: 'IL' }), body, { locate }));
    expect(error.details).toEqual([
      { field: 'phone', row: 1, line: 3, message: expect.stringContaining('calling code +1') },
      { field: 'phone', row: 2, line: 4, message: expect.stringContaining('a fixed_line number') },
    ]);
  });

  it('a caller id is read like a lead’s and compared in E.164', async () => {
    const w = world();
    const d = deps(w, { defaultCountry: 'IL', allowedFrom: ['+15005550006', '+97233761234'] });
    const view = await createRun(d, { from: '03-376-1234', leads: [{ phone: '+972522345678' }] });
    expect(view.from).toBe('+97233761234');
    const bad = await refusal(createRun(d, { from: '+1 123 456 7890', leads: [{ phone: '+972522345678' }] }));
    expect(bad.details).toEqual([{ field: 'from', message: expect.stringContaining('calling code +1') }]);
  });
});
