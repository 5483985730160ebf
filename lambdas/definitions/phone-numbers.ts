// (definitions) Phone numbers as dialgate takes them: valid for their country by libphonenumber's full
// metadata (`max`: the ranges each country assigns, not only lengths), normalised to E.164. The API
// checks leads and caller ids with it, and the CDK app its context; the other functions never import
// it, so only the API's bundle carries the metadata.

import {
  type CountryCode,
  isSupportedCountry,
  type PhoneNumber,
  parsePhoneNumberFromString,
  validatePhoneNumberLength,
} from 'libphonenumber-js/max';
import { COUNTRY_CODE, PHONE_TYPES, type PhoneType } from './formats.ts';

export interface PhoneRules {
  /** Numbers without a country code are read as national numbers of this country (ISO 3166 alpha-2). */
  defaultCountry?: string | undefined;
  /** Only numbers of these types are taken; none given: any type. */
  types?: readonly PhoneType[] | undefined;
  /** Where the types come from, for the message (`phone_types`, ALLOWED_PHONE_TYPES). */
  typesFrom?: string;
  /**
   * A number without a country code is passed as written, unchecked: for a client checking a file
   * before sending it, which does not know the deployment's DEFAULT_COUNTRY (the API checks it).
   */
  deferNational?: boolean;
}

/**
 * A number read: `phone` in E.164 and, when `rules.types` asked for it, its type (undefined:
 * libphonenumber cannot tell); or why not.
 */
export type PhoneCheck =
  | { ok: true; phone: string; type?: PhoneType | undefined }
  | { ok: false; problem: string };

/** Characters people put between digits; dropped before parsing. */
const SEPARATORS = /[\s\-().]/g;
const DIGITS = /^\+?\d+$/;

/**
 * Reads a phone number: E.164 (`+972 52-234-5678`, `00972…`), or a national number
 * (`052-234-5678`) when a default country is given. Refused when it is not a number this way written
 * (letters, an extension, a `tel:` URI), when no country is known for it, when its country does not
 * assign it, or when its type is not among `rules.types`. The message says which, never the number.
 */
export function checkPhone(raw: string, rules: PhoneRules = {}): PhoneCheck {
  let text = raw.trim().replace(SEPARATORS, '');
  if (text.startsWith('00')) text = `+${text.slice(2)}`;
  if (!DIGITS.test(text)) {
    return {
      ok: false,
      problem:
        'not a phone number in E.164 (+ country code and digits; spaces, dashes, dots and brackets may separate them)',
    };
  }
  const international = text.startsWith('+');
  const country =
    !international && rules.defaultCountry && isSupportedCountry(rules.defaultCountry)
      ? rules.defaultCountry
      : undefined;
  if (!international && country === undefined) {
    if (rules.deferNational) return { ok: true, phone: text };
    return {
      ok: false,
      problem: 'no country code: write it in E.164 (+972…), or set DEFAULT_COUNTRY to take national numbers',
    };
  }
  // The text is digits alone by now: no need to look for a number inside it (`extract`), which costs.
  const parsed = parsePhoneNumberFromString(text, { defaultCountry: country, extract: false });
  if (parsed === undefined || !parsed.isValid())
    return { ok: false, problem: invalidProblem(text, parsed, country) };
  // Telling the type matches the number against each type's ranges: a third of the cost, so only on demand.
  if (rules.types === undefined || rules.types.length === 0) return { ok: true, phone: parsed.number };
  const type = typeOf(parsed);
  if (type === undefined || !rules.types.includes(type)) {
    const only = `only ${rules.types.join(', ')} numbers are taken${rules.typesFrom ? ` (${rules.typesFrom})` : ''}`;
    // US and Canadian numbers never say whether they are mobiles: say so, or "mobile only" is a puzzle.
    const hint =
      type === 'fixed_line_or_mobile' ? '; add fixed_line_or_mobile for US and Canadian numbers' : '';
    return { ok: false, problem: `a ${type ?? 'number of no known type'} number; ${only}${hint}` };
  }
  return { ok: true, phone: parsed.number, type };
}

function typeOf(parsed: PhoneNumber): PhoneType | undefined {
  const type = parsed.getType()?.toLowerCase();
  return (PHONE_TYPES as readonly string[]).includes(type ?? '') ? (type as PhoneType) : undefined;
}

function invalidProblem(
  text: string,
  parsed: PhoneNumber | undefined,
  country: CountryCode | undefined,
): string {
  const length = validatePhoneNumberLength(text, country);
  if (length === 'INVALID_COUNTRY') return 'no country has this calling code';
  if (length === 'TOO_SHORT') return 'too short for a phone number of its country';
  if (length === 'TOO_LONG') return 'too long for a phone number of its country';
  if (parsed?.country) return `not a valid number in ${parsed.country}: no such range there`;
  if (parsed)
    return `not a valid number: no country with calling code +${parsed.countryCallingCode} has this range`;
  return 'not a valid phone number';
}

/** The number in E.164 when it is one and valid for its country, else undefined. */
export function validE164(value: string): string | undefined {
  const check = checkPhone(value);
  return check.ok && check.phone === value.trim() ? check.phone : undefined;
}

/**
 * What is wrong with a deployment's phone settings beyond their form, one line each: caller ids must
 * be E.164 numbers valid for their country, and DEFAULT_COUNTRY one that libphonenumber knows.
 */
export function phoneSettingProblems(settings: {
  /** Each setting with the name to report it by (the variable, or the CDK context key). */
  fromNumbers: { name: string; value: string }[];
  defaultCountry?: { name: string; value: string | undefined };
}): string[] {
  const problems: string[] = [];
  for (const { name, value } of settings.fromNumbers) {
    if (validE164(value) === undefined) {
      const check = checkPhone(value);
      problems.push(
        `${name}: ${check.ok ? 'not written in E.164 (+ country code, digits only)' : check.problem}`,
      );
    }
  }
  const country = settings.defaultCountry;
  if (
    country?.value !== undefined &&
    !(COUNTRY_CODE.test(country.value) && isSupportedCountry(country.value))
  ) {
    problems.push(
      `${country.name}: "${country.value}" is not an ISO 3166 alpha-2 country with phone numbers (IL, US, GB…)`,
    );
  }
  return problems;
}
