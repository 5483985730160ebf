// The OpenAPI document: committed as the schemas generate it, valid to a standard validator, its
// examples valid against their own schemas, and the contract check of the end-to-end tests able to
// tell a matching answer from one whose shape the document does not describe.

import { readFileSync } from 'node:fs';
import { compileErrors, validate } from '@readme/openapi-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, test } from 'vitest';
import { RunView } from '../../lambdas/core/api-schemas.ts';
import {
  CLIENT_TYPES_PATH,
  clientTypesText,
  OPENAPI_PATH,
  openApiText,
} from '../../tools/openapi/document.ts';
import { contractProblems } from '../support/contract.ts';

const committed = readFileSync(OPENAPI_PATH, 'utf8');
const document = JSON.parse(committed);

describe('docs/openapi.json', () => {
  test('is what the API schemas generate (run `npm run openapi` after changing them)', () => {
    expect(committed).toBe(openApiText());
  });

  test('types the CLI: clients/cli/api-types.ts is what openapi-typescript generates from it', async () => {
    expect(readFileSync(CLIENT_TYPES_PATH, 'utf8')).toBe(await clientTypesText(document));
  });

  test('is a valid OpenAPI 3.1 document to @readme/openapi-parser', async () => {
    const result = await validate(structuredClone(document));
    expect(result.valid, compileErrors(result)).toBe(true);
    expect(document.openapi).toMatch(/^3\.1\./);
  });

  test('every schema example is valid against its schema', () => {
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    addFormats.default(ajv);
    ajv.addSchema(document, 'openapi');
    const schemas = Object.entries(document.components.schemas as Record<string, { example?: unknown }>);
    const withExamples = schemas.filter(([, schema]) => schema.example !== undefined);
    expect(withExamples.length).toBeGreaterThanOrEqual(8);
    for (const [name, schema] of withExamples) {
      const check = ajv.compile({ $ref: `openapi#/components/schemas/${name}` });
      expect(check(schema.example), `${name}: ${ajv.errorsText(check.errors)}`).toBe(true);
    }
  });
});

describe('the contract check of the end-to-end tests', () => {
  const example = document.components.schemas.RunView.example;
  const answer = (body: unknown, status = 200, headers: Record<string, string> = {}) => ({
    method: 'GET',
    path: `/runs/${example.run_id}`,
    status,
    headers: new Headers({ 'content-type': 'application/json', 'x-amzn-RequestId': 'r-1', ...headers }),
    body: JSON.stringify(body),
  });

  test('passes an answer the document describes (the zod schema agrees)', () => {
    expect(RunView.parse(example)).toEqual(example);
    expect(contractProblems(answer(example))).toEqual([]);
  });

  test('fails a renamed field, an undescribed status, a missing required header, another media type', () => {
    const { total_leads, ...rest } = example;
    expect(contractProblems(answer({ ...rest, leads_total: total_leads })).join('\n')).toMatch(
      /must have required property 'total_leads'[\s\S]*must NOT have additional properties/,
    );
    expect(contractProblems(answer(example, 418))).toEqual([
      `GET /runs/${example.run_id} → 418: status 418 is not described for GET /runs/{run_id}`,
    ]);
    const noId = answer(example);
    noId.headers.delete('x-amzn-RequestId');
    expect(contractProblems(noId)).toEqual([
      `GET /runs/${example.run_id} → 200: header x-amzn-RequestId is missing`,
    ]);
    expect(contractProblems(answer(example, 200, { 'content-type': 'text/plain' }))[0]).toMatch(
      /content-type "text\/plain" is not one of application\/json/,
    );
    expect(contractProblems({ ...answer(example), path: '/nowhere' })[0]).toMatch(/not in the document/);
  });
});
