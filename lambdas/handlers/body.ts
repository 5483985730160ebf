// (handler support) A Lambda event's body as text. API Gateway and Function URLs base64-encode the
// bodies they do not pass as text (a Function URL does so for Twilio's form-encoded callbacks).

export function eventBody(event: { body?: string | null | undefined; isBase64Encoded?: boolean }): string {
  const raw = event.body ?? '';
  return event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
}
