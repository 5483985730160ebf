// (core) JSON written in ASCII alone: every character past U+007E as a \uXXXX escape (a character
// outside the BMP as its two surrogate escapes). SQS takes only some Unicode in a message body (no
// U+FFFE or U+FFFF, few C0 controls) and the local emulator refuses characters outside the BMP, while
// an escaped body passes both and parses back to the same value. Its length is also its size in bytes,
// which is what SQS's limits count.

export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
