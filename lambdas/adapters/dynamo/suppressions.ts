// (adapter) The suppression list. Each number has two items, written and removed together in one
// transaction: the one the acquire transaction's condition checks (a partition per number, so that no
// partition takes every dial's check) and its entry in the list's partition (for GET /suppressions, in
// E.164 order). A suppression that has expired stays until DynamoDB's TTL deletes it, and is read as
// absent everywhere, the acquire's condition included.

import { BatchGetCommand, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Page, PageRequest, Suppression, SuppressionStore } from '../../core/ports.ts';
import { isInForce } from '../../core/recipients.ts';
import { E164 } from '../../definitions/formats.ts';
import { keys, SUPPRESSION_LIST, TABLE_SCHEMA } from '../../definitions/table-schema.ts';
import { decodeCursor, encodeCursor } from './listings.ts';
import { type DynamoTable, MAX_CONFLICT_RETRIES, type TransactItem } from './table.ts';

/** Numbers per transaction of an import: two items each, within DynamoDB's 100. */
const IMPORT_BATCH = 50;

export class DynamoSuppressions implements SuppressionStore {
  constructor(private readonly t: DynamoTable) {}

  async putSuppression(suppression: Suppression): Promise<void> {
    await this.putSuppressions([suppression]);
  }

  async putSuppressions(suppressions: Suppression[]): Promise<void> {
    for (let i = 0; i < suppressions.length; i += IMPORT_BATCH) {
      const items = suppressions.slice(i, i + IMPORT_BATCH).flatMap((s): TransactItem[] => {
        const attributes = suppressionAttributes(s);
        return [
          { Put: { TableName: this.t.name, Item: { ...keys.suppression(s.phone), ...attributes } } },
          { Put: { TableName: this.t.name, Item: { ...keys.suppressionEntry(s.phone), ...attributes } } },
        ];
      });
      const failed = await this.t.transact(items);
      if (failed.length > 0) throw new Error('suppression write refused (no condition expected)');
    }
  }

  async getSuppression(phone: string, nowMs: number): Promise<Suppression | undefined> {
    const { Item } = await this.t.doc.send(
      new GetCommand({ TableName: this.t.name, Key: keys.suppression(phone), ConsistentRead: true }),
    );
    const suppression = Item ? suppressionFromItem(Item) : undefined;
    return suppression && isInForce(suppression, nowMs) ? suppression : undefined;
  }

  async suppressedAmong(phones: readonly string[], nowMs: number): Promise<Set<string>> {
    const found = new Set<string>();
    const distinct = [...new Set(phones)];
    // BatchGetItem takes 100 keys a request; keys left unprocessed are asked again after a backoff.
    for (let i = 0; i < distinct.length; i += 100) {
      let pending: Record<string, unknown>[] = distinct
        .slice(i, i + 100)
        .map((phone) => keys.suppression(phone));
      for (let round = 0; pending.length > 0; round++) {
        const { Responses, UnprocessedKeys } = await this.t.doc.send(
          new BatchGetCommand({
            RequestItems: {
              [this.t.name]: {
                Keys: pending,
                ProjectionExpression: 'phone, #until',
                ExpressionAttributeNames: { '#until': 'until' },
              },
            },
          }),
        );
        for (const item of Responses?.[this.t.name] ?? []) {
          const until = typeof item.until === 'string' ? item.until : undefined;
          if (isInForce(until === undefined ? {} : { expiresAt: until }, nowMs))
            found.add(String(item.phone));
        }
        pending = (UnprocessedKeys?.[this.t.name]?.Keys ?? []) as Record<string, unknown>[];
        if (pending.length > 0) {
          if (round >= MAX_CONFLICT_RETRIES) throw new Error('BatchGetItem kept leaving keys unprocessed');
          await this.t.sleep(this.t.random() * Math.min(1000, 10 * 2 ** round));
        }
      }
    }
    return found;
  }

  async deleteSuppression(phone: string, nowMs: number): Promise<'deleted' | 'absent'> {
    const failed = await this.t.transact([
      {
        Delete: {
          TableName: this.t.name,
          Key: keys.suppression(phone),
          ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(#until) OR #until > :now)',
          ExpressionAttributeNames: { '#until': 'until' },
          ExpressionAttributeValues: { ':now': new Date(nowMs).toISOString() },
        },
      },
      { Delete: { TableName: this.t.name, Key: keys.suppressionEntry(phone) } },
    ]);
    return failed.length === 0 ? 'deleted' : 'absent';
  }

  async listSuppressions(
    page: PageRequest & { prefix?: string | undefined; nowMs: number },
  ): Promise<Page<Suppression>> {
    const start =
      page.cursor === undefined
        ? undefined
        : decodeCursor(
            page.cursor,
            (key) =>
              Object.keys(key).length === 2 &&
              key.pk === SUPPRESSION_LIST &&
              typeof key.sk === 'string' &&
              E164.test(key.sk),
          );
    const { Items = [], LastEvaluatedKey } = await this.t.doc.send(
      new QueryCommand({
        TableName: this.t.name,
        KeyConditionExpression: page.prefix ? 'pk = :pk AND begins_with(sk, :prefix)' : 'pk = :pk',
        // Expired entries wait for the TTL: left out here (a page may then be short of `limit`).
        FilterExpression: 'attribute_not_exists(#until) OR #until > :now',
        ExpressionAttributeNames: { '#until': 'until' },
        ExpressionAttributeValues: {
          ':pk': SUPPRESSION_LIST,
          ':now': new Date(page.nowMs).toISOString(),
          ...(page.prefix ? { ':prefix': page.prefix } : {}),
        },
        Limit: page.limit,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    return {
      items: Items.map(suppressionFromItem),
      ...(LastEvaluatedKey ? { nextCursor: encodeCursor(LastEvaluatedKey) } : {}),
    };
  }
}

function suppressionAttributes(s: Suppression): Record<string, unknown> {
  return {
    entity: 'suppression',
    phone: s.phone,
    reason: s.reason,
    createdAt: s.createdAt,
    ...(s.runId ? { runId: s.runId } : {}),
    // `until` is what every check compares; the TTL attribute only lets DynamoDB delete it later.
    ...(s.expiresAt
      ? {
          until: s.expiresAt,
          [TABLE_SCHEMA.timeToLiveAttribute]: Math.ceil(Date.parse(s.expiresAt) / 1000),
        }
      : {}),
  };
}

function suppressionFromItem(item: Record<string, unknown>): Suppression {
  return {
    phone: String(item.phone),
    reason: String(item.reason),
    createdAt: String(item.createdAt),
    ...(typeof item.runId === 'string' ? { runId: item.runId } : {}),
    ...(typeof item.until === 'string' ? { expiresAt: item.until } : {}),
  };
}
