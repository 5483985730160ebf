// Phone numbers for the load tools (benchmarks, chaos): distinct per run and valid under libphonenumber's
// full metadata, as the API requires, so that a run of thousands is never refused for its test data.

import { isValidPhoneNumber } from 'libphonenumber-js/max';

/**
 * North American area codes from 300 to 999 whose numbers +1 AAA 2xx xxxx and 5xx xxxx are valid: about
 * 390 of them (unassigned codes, such as 433 or 555, are left out).
 */
const AREA_CODES = Array.from({ length: 700 }, (_, i) => 300 + i).filter((area) =>
  ['2000000', '2999999', '5000000', '5999999'].every((line) => isValidPhoneNumber(`+1${area}${line}`)),
);

/** The `index`-th area code (wrapping), as a prefix: `+1415`. */
export function areaPrefix(index: number): string {
  return `+1${AREA_CODES[index % AREA_CODES.length]}`;
}

/** The `n`-th number (0 ≤ n < 1,000,000) under an area prefix, in its 2xx xxxx exchanges. */
export function usNumber(prefix: string, n: number): string {
  return `${prefix}${String(2_000_000 + n)}`;
}
