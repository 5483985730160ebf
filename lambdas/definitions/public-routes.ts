// The API's routes that need no credentials, read by the CDK app (a method without authorization)
// and by the local stack (no API key asked): only the OpenAPI document, which describes the API and
// holds no data, so that code generators, gateways and the console's reference page can fetch it.

export const OPENAPI_PATH = '/openapi.json';

export const PUBLIC_ROUTES: readonly { method: string; path: string }[] = [
  { method: 'GET', path: OPENAPI_PATH },
];
