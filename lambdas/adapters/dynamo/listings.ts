// (adapter) Pages of runs (newest first, through the keys-only `runs` index) and of a run's jobs (in
// lead order), with cursors that are DynamoDB's own keys, checked on the way back in.

import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ValidationError } from '../../core/errors.ts';
import type { Job, Run } from '../../core/model.ts';
import type { JobPageRequest, Page, PageRequest, RunQueries } from '../../core/ports.ts';
import { ID_CHARS } from '../../definitions/formats.ts';
import { keys, RUN_LIST, TABLE_SCHEMA } from '../../definitions/table-schema.ts';
import { jobFromItem } from './items.ts';
import type { DynamoRuns } from './runs.ts';
import type { DynamoTable } from './table.ts';

/** Pages read for one page of a filtered job list, before answering with what was found. */
const MAX_FILTERED_PAGES = 5;

export class DynamoListings implements RunQueries {
  constructor(
    private readonly t: DynamoTable,
    private readonly runs: DynamoRuns,
  ) {}

  async listRuns(page: PageRequest): Promise<Page<Run>> {
    const start = page.cursor === undefined ? undefined : decodeCursor(page.cursor, isRunsCursor);
    const { Items = [], LastEvaluatedKey } = await this.t.doc.send(
      new QueryCommand({
        TableName: this.t.name,
        IndexName: TABLE_SCHEMA.runsIndex.name,
        KeyConditionExpression: '#list = :list',
        ExpressionAttributeNames: { '#list': TABLE_SCHEMA.runsIndex.partitionKey },
        ExpressionAttributeValues: { ':list': RUN_LIST },
        ScanIndexForward: false, // newest first
        Limit: page.limit,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    const runs = await this.batchGetRuns(Items.map((item) => String(item.pk)));
    return {
      items: runs,
      ...(LastEvaluatedKey ? { nextCursor: encodeCursor(LastEvaluatedKey) } : {}),
    };
  }

  /** The runs behind `pks`, in that order (consistent reads; at most 100 keys). */
  private async batchGetRuns(pks: string[]): Promise<Run[]> {
    if (pks.length === 0) return [];
    const items = await this.t.batchGet(
      pks.map((pk) => ({ pk, sk: 'RUN' })),
      { consistent: true },
    );
    const found = new Map(items.map((item) => [String(item.pk), item]));
    // Holders only for runs with live calls: a finished run's page costs no index read.
    return Promise.all(
      pks
        .flatMap((pk): Record<string, unknown>[] => {
          const item = found.get(pk);
          return item ? [item] : [];
        })
        .map((item) => this.runs.runWithHolders(item)),
    );
  }

  async listJobs(runId: string, page: JobPageRequest): Promise<Page<Job>> {
    const runPk = keys.run(runId).pk;
    let start: Record<string, unknown> | undefined =
      page.cursor === undefined ? undefined : decodeTableKeyCursor(page.cursor, runPk, JOB_SK);
    const statuses = page.statuses ?? [];
    const outcomes = page.outcomes ?? [];
    const byStatus = Object.fromEntries(statuses.map((status, i) => [`:s${i}`, status]));
    const byOutcome = Object.fromEntries(outcomes.map((outcome, i) => [`:o${i}`, outcome]));
    const filter = { ...byStatus, ...byOutcome };
    const filters = [
      ...(statuses.length > 0 ? [`#status IN (${Object.keys(byStatus).join(', ')})`] : []),
      ...(outcomes.length > 0 ? [`outcome IN (${Object.keys(byOutcome).join(', ')})`] : []),
    ];
    const jobs: Job[] = [];
    let next: Record<string, unknown> | undefined;
    // A filter applies after the read's Limit, so a filtered page may take a few reads to fill.
    for (let read = 0; read < (filters.length > 0 ? MAX_FILTERED_PAGES : 1); read++) {
      const want = page.limit - jobs.length;
      const { Items = [], LastEvaluatedKey } = await this.t.doc.send(
        new QueryCommand({
          TableName: this.t.name,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :job)',
          ExpressionAttributeValues: { ':pk': runPk, ':job': 'JOB#', ...filter },
          ...(filters.length > 0
            ? {
                FilterExpression: filters.join(' AND '),
                ...(statuses.length > 0 ? { ExpressionAttributeNames: { '#status': 'status' } } : {}),
                Limit: Math.max(want, 100),
              }
            : { Limit: want }),
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      const taken = Items.slice(0, want);
      jobs.push(...taken.map(jobFromItem));
      const last = taken.at(-1);
      // Cut short inside a page: resume after the last job shown, not after the page.
      next = taken.length < Items.length && last ? { pk: last.pk, sk: last.sk } : LastEvaluatedKey;
      if (!next || jobs.length >= page.limit) break;
      start = next;
    }
    return { items: jobs, ...(next ? { nextCursor: encodeCursor(next) } : {}) };
  }
}

export function encodeCursor(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** Longer than any cursor this API gives out (a key of a few short strings). */
const MAX_CURSOR_CHARS = 512;
const JOB_SK = /^JOB#\d{6,15}$/;
const RUN_PK = new RegExp(`^RUN#${ID_CHARS}$`);
const CREATED_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * A cursor is the client's to hold, so it is checked like any input: exactly the key attributes a
 * page ends on, each in the form dialgate writes, so that DynamoDB never sees a start key it refuses.
 */
function decodeCursor(
  cursor: string,
  valid: (key: Record<string, unknown>) => boolean,
): Record<string, unknown> {
  let key: unknown;
  try {
    key =
      cursor.length <= MAX_CURSOR_CHARS && /^[A-Za-z0-9_-]+$/.test(cursor)
        ? JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
        : undefined;
  } catch {
    key = undefined;
  }
  const ok =
    typeof key === 'object' &&
    key !== null &&
    !Array.isArray(key) &&
    Object.values(key).every((value) => typeof value === 'string') &&
    valid(key as Record<string, unknown>);
  if (!ok) {
    throw new ValidationError('The cursor is not one this list gave out.', [
      { field: 'cursor', message: 'pass the next_cursor of the previous page unchanged' },
    ]);
  }
  return key as Record<string, unknown>;
}

function isRunsCursor(key: Record<string, unknown>): boolean {
  return (
    Object.keys(key).length === 4 &&
    typeof key.pk === 'string' &&
    RUN_PK.test(key.pk) &&
    key.sk === 'RUN' &&
    key[TABLE_SCHEMA.runsIndex.partitionKey] === RUN_LIST &&
    typeof key[TABLE_SCHEMA.runsIndex.sortKey] === 'string' &&
    CREATED_AT.test(key[TABLE_SCHEMA.runsIndex.sortKey] as string)
  );
}

/** A cursor that names a table key of partition `pk` whose sort key matches `sk`; any other is refused. */
export function decodeTableKeyCursor(cursor: string, pk: string, sk: RegExp): Record<string, unknown> {
  return decodeCursor(
    cursor,
    (key) => Object.keys(key).length === 2 && key.pk === pk && typeof key.sk === 'string' && sk.test(key.sk),
  );
}
