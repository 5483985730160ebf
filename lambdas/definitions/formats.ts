// (definitions) The formats of dialgate's identifiers and phone numbers, written once: request
// validation, the configuration schema, the queue's message schema, the callback URL and the API's
// routes read them.

/** A phone number in E.164: `+`, a country code (no leading 0), 8 to 15 digits in all. */
export const E164 = /^\+[1-9]\d{7,14}$/;

/**
 * A run or job id: URL-safe, so that the status callback URL Twilio signs is byte for byte the one
 * dialgate builds, and short enough for a DynamoDB key and an SQS message.
 */
export const ID_CHARS = '[A-Za-z0-9_-]{1,64}';
export const ID = new RegExp(`^${ID_CHARS}$`);

/**
 * The number types a deployment (ALLOWED_PHONE_TYPES) or a run (`phone_types`) may restrict leads to:
 * libphonenumber's types, in snake case. In the US and Canada a number's type cannot be told from the
 * number: there they are `fixed_line_or_mobile`.
 */
export const PHONE_TYPES = [
  'mobile',
  'fixed_line',
  'fixed_line_or_mobile',
  'voip',
  'toll_free',
  'premium_rate',
  'shared_cost',
  'personal_number',
  'pager',
  'uan',
  'voicemail',
] as const;
export type PhoneType = (typeof PHONE_TYPES)[number];

/** An ISO 3166-1 alpha-2 country code, the form of DEFAULT_COUNTRY (`IL`, `US`). */
export const COUNTRY_CODE = /^[A-Z]{2}$/;
