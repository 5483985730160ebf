// The API's contract, enforced on what the end-to-end tests receive: every response of the API is
// checked against docs/openapi.json — the operation and status must be described, the headers it
// marks required present and valid, the media type described, and the body valid against its schema
// (JSON Schema 2020-12, as OpenAPI 3.1 uses it). A shape the document does not describe fails the test
// that received it.

import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterEach, expect } from 'vitest';
import document from '../../docs/openapi.json' with { type: 'json' };

type Json = Record<string, unknown>;

interface Operation {
  responses: Record<string, Json>;
}

const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats.default(ajv);
// The whole document under one id, so that the schemas' `#/components/…` references resolve in it.
ajv.addSchema(document as Json, 'openapi');
const validators = new Map<string, ValidateFunction>();

/** A JSON pointer to a place in the document, as a URI fragment (each segment escaped once). */
function pointer(segments: string[]): string {
  return segments.map((s) => encodeURIComponent(s.replaceAll('~', '~0').replaceAll('/', '~1'))).join('/');
}

function validatorAt(segments: string[]): ValidateFunction {
  const at = pointer(segments);
  let validate = validators.get(at);
  if (!validate) {
    validate = ajv.compile({ $ref: `openapi#/${at}` });
    validators.set(at, validate);
  }
  return validate;
}

/** An object of the document and where it is, following a `$ref` to a component (responses, headers). */
function resolve(value: Json, at: string[]): { value: Json; at: string[] } {
  const ref = value.$ref;
  if (typeof ref !== 'string') return { value, at };
  const segments = ref
    .replace(/^#\//, '')
    .split('/')
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
  let node: unknown = document;
  for (const segment of segments) node = (node as Json)[segment];
  return { value: node as Json, at: segments };
}

const templates = Object.keys(document.paths).map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`),
}));

export interface ReceivedResponse {
  method: string;
  /** The path under the API's base URL, without the query string. */
  path: string;
  status: number;
  headers: Headers;
  body: string;
}

/** Every way the response departs from the document; empty when it matches. */
export function contractProblems(response: ReceivedResponse): string[] {
  const where = `${response.method} ${response.path} → ${response.status}`;
  const found = templates.find((t) => t.pattern.test(response.path));
  if (!found) return [`${where}: the path is not in the document`];
  const method = response.method.toLowerCase();
  const paths = document.paths as Record<string, Record<string, Operation>>;
  const operation = paths[found.template]![method];
  if (!operation) return [`${where}: ${method.toUpperCase()} ${found.template} is not in the document`];
  const status = String(response.status);
  const key = [status, `${status[0]}XX`, 'default'].find((k) => k in operation.responses);
  if (!key)
    return [`${where}: status ${status} is not described for ${method.toUpperCase()} ${found.template}`];
  const { value: described, at } = resolve(operation.responses[key]!, [
    'paths',
    found.template,
    method,
    'responses',
    key,
  ]);
  const problems: string[] = [];

  for (const [name, raw] of Object.entries((described.headers ?? {}) as Record<string, Json>)) {
    const { value: header, at: headerAt } = resolve(raw, [...at, 'headers', name]);
    const value = response.headers.get(name);
    if (value === null) {
      if (header.required) problems.push(`${where}: header ${name} is missing`);
      continue;
    }
    const validate = validatorAt([...headerAt, 'schema']);
    if (!validate(value)) problems.push(`${where}: header ${name}: ${ajv.errorsText(validate.errors)}`);
  }

  const content = described.content as Record<string, Json> | undefined;
  if (!content) {
    if (response.body !== '') problems.push(`${where}: a body where the document describes none`);
    return problems;
  }
  const mediaType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (!(mediaType in content)) {
    problems.push(`${where}: content-type "${mediaType}" is not one of ${Object.keys(content).join(', ')}`);
    return problems;
  }
  let body: unknown = response.body;
  if (mediaType === 'application/json') {
    try {
      body = JSON.parse(response.body);
    } catch {
      problems.push(`${where}: the body is not JSON`);
      return problems;
    }
  }
  const validate = validatorAt([...at, 'content', mediaType, 'schema']);
  if (!validate(body)) {
    for (const error of validate.errors ?? [])
      problems.push(`${where}: body${error.instancePath} ${error.message} ${JSON.stringify(error.params)}`);
  }
  return problems;
}

/** Whether a path (under the API's base URL) is one of the document's, rather than, say, the console's. */
export function isApiPath(path: string): boolean {
  return templates.some((t) => t.pattern.test(path));
}

/**
 * Checks every response that this test file's `fetch` receives from the API (whose base URL `apiUrl`
 * returns, once it is known), and fails the test that received one the document does not describe.
 * The CLI, run in this process, and the tests' own HTTP helpers all go through the global fetch.
 */
export function enforceContract(apiUrl: () => string | undefined) {
  const original = globalThis.fetch;
  const problems: string[] = [];
  let checked = 0;
  globalThis.fetch = async (input, init) => {
    const response = await original(input, init);
    const base = apiUrl();
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (base !== undefined && url.href.startsWith(base)) {
      const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
      const path = url.pathname.slice(new URL(base).pathname.replace(/\/$/, '').length);
      problems.push(
        ...contractProblems({
          method,
          path,
          status: response.status,
          headers: response.headers,
          body: await response.clone().text(),
        }),
      );
      checked += 1;
    }
    return response;
  };
  afterEach(() => {
    const found = problems.splice(0);
    expect(found, 'responses that the OpenAPI document does not describe').toEqual([]);
  });
  return {
    checked: () => checked,
    /** Checks a response received elsewhere (a browser's), failing the current test like fetch's. */
    check(response: ReceivedResponse) {
      problems.push(...contractProblems(response));
      checked += 1;
    },
  };
}
