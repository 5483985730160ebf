// The OpenAPI document: committed as the schemas generate it, valid to a standard validator, its
// examples valid against their own schemas, and the contract check of the end-to-end tests able to
// tell a matching answer from one whose shape the document does not describe.

import { readFileSync } from 'node:fs';
import { compileErrors, validate } from '@readme/openapi-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, test } from 'vitest';
import { AppendLeadsRequest, RunRequest, RunView } from '../../lambdas/core/api-schemas.ts';
import { parseCsvLeads } from '../../lambdas/core/csv-leads.ts';
import type { ErrorDetail } from '../../lambdas/core/errors.ts';
import { validateLeads, validateRunRequest } from '../../lambdas/core/leads.ts';
import { validateRunOptions } from '../../lambdas/core/run-options.ts';
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

describe('the request schemas and the API validators agree', () => {
  const limits = { defaultConcurrency: 3, maxConcurrency: 20, maxLeads: 100_000 };
  const policy = { allowedFrom: ['+15005550006'], twimlUrlPrefixes: [], maxTwimlBytes: 4000 };
  /** Whether the API accepts a run request: its own validators, as POST /runs runs them. */
  const apiAccepts = (body: Record<string, unknown>) => {
    const details: ErrorDetail[] = [];
    validateRunOptions(body, policy, details, Date.now());
    try {
      validateRunRequest(body, limits, { checkTimeZone: body.window !== undefined });
    } catch {
      return false;
    }
    return details.length === 0;
  };
  const operation = (path: string) => document.paths[path].post.requestBody.content;

  test('every example request of the document is accepted by both', () => {
    const runs = Object.values(operation('/runs')['application/json'].examples) as { value: never }[];
    const appends = Object.values(operation('/runs/{run_id}/leads')['application/json'].examples) as {
      value: { leads: unknown };
    }[];
    expect(runs.length + appends.length).toBeGreaterThanOrEqual(3);
    for (const { value } of runs) {
      expect(RunRequest.safeParse(value).success).toBe(true);
      // POST /runs reads `from_run` into leads (from the table) before it validates them.
      const { from_run: fromRun, ...rest } = value as Record<string, unknown>;
      const asLeads = fromRun === undefined ? value : { ...rest, leads: [{ phone: '+972524118203' }] };
      expect(apiAccepts(asLeads)).toBe(true);
    }
    for (const { value } of appends) {
      expect(AppendLeadsRequest.safeParse(value).success).toBe(true);
      expect(validateLeads(value.leads, limits)).toHaveLength((value.leads as unknown[]).length);
    }
    for (const media of [operation('/runs'), operation('/runs/{run_id}/leads')]) {
      for (const { value } of Object.values(media['text/csv'].examples) as { value: string }[]) {
        expect(validateLeads(parseCsvLeads(value).leads, limits).length).toBeGreaterThan(0);
      }
    }
  });

  test('requests of the wrong shape are refused by both', () => {
    const lead = { phone: '+972524118203' };
    const wrong: Record<string, unknown>[] = [
      {},
      { leads: [] },
      { leads: 'x' },
      { leads: [{ name: 'no phone' }] },
      { leads: [{ phone: '+972524118203', tags: ['a'] }] },
      { leads: [lead], concurrency: 0 },
      { leads: [lead], concurrency: 2.5 },
      { leads: [lead], retry: { on: [] } },
      { leads: [lead], retry: { on: ['completed'] } },
      { leads: [lead], retry: { max_attempts: 11 } },
      { leads: [lead], retry: { delay_seconds: -1 } },
      { leads: [lead], retry: { tries: 2 } },
      { leads: [lead], window: { start: '09:00', end: '20:00' } },
      { leads: [lead], window: { time_zone: 'Asia/Jerusalem', start: '9am', end: '20:00' } },
      {
        leads: [lead],
        window: { time_zone: 'Asia/Jerusalem', days: ['sunday'], start: '09:00', end: '20:00' },
      },
    ];
    // `from_run` instead of leads, or a wrong one: refused by the schema as by the API (from-run.ts).
    for (const body of [
      { leads: [lead], from_run: { run_id: 'r1', outcomes: ['busy'] } },
      { from_run: { run_id: 'r1', outcomes: [] } },
      { from_run: { run_id: 'r1', outcomes: ['answered'] } },
      { from_run: { run: 'r1', outcomes: ['busy'] } },
    ]) {
      expect(RunRequest.safeParse(body).success, JSON.stringify(body)).toBe(false);
    }
    for (const body of wrong) {
      expect(RunRequest.safeParse(body).success, JSON.stringify(body)).toBe(false);
      expect(apiAccepts(body), JSON.stringify(body)).toBe(false);
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
