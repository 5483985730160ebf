// (adapter) The suppression list. A suppressed number has two items, written and removed together in
// one transaction: its own item (keys.recipient, a partition per number, so that no partition takes
// every dial's check), which the acquire transaction checks and which also counts the number's calls
// for the frequency cap, and its entry in the list's partition (for GET /suppressions, in E.164
// order). A suppression is therefore written into the number's item, never over it: its counts stay.
// A suppression that has expired stays until DynamoDB's TTL deletes it, and is read as absent
// everywhere, the acquire's condition included.

import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Page, PageRequest, Suppression, SuppressionStore } from '../../core/ports.ts';
import { isInForce } from '../../core/recipients.ts';
import { E164 } from '../../definitions/formats.ts';
import { keys, SUPPRESSION_LIST, TABLE_SCHEMA } from '../../definitions/table-schema.ts';
import { decodeTableKeyCursor, encodeCursor } from './listings.ts';
import { LONGEST_WINDOW_S } from './recipient-item.ts';
import type { DynamoTable, TransactItem } from './table.ts';

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
        const entry = { ...keys.suppressionEntry(s.phone), ...suppressionAttributes(s) };
        return [this.suppressNumber(s), { Put: { TableName: this.t.name, Item: entry } }];
      });
      const failed = await this.t.transact(items);
      if (failed.length > 0) throw new Error('suppression write refused (no condition expected)');
    }
  }

  async getSuppression(phone: string, nowMs: number): Promise<Suppression | undefined> {
    const { Item } = await this.t.doc.send(
      new GetCommand({ TableName: this.t.name, Key: keys.recipient(phone), ConsistentRead: true }),
    );
    // The number's item without a reason holds only its call counts: no suppression.
    const suppression = Item?.reason !== undefined ? suppressionFromItem(Item) : undefined;
    return suppression && isInForce(suppression, nowMs) ? suppression : undefined;
  }

  async suppressedAmong(phones: readonly string[], nowMs: number): Promise<Set<string>> {
    const items = await this.t.batchGet(
      [...new Set(phones)].map((phone) => keys.recipient(phone)),
      { projection: 'phone, reason, #until', names: { '#until': 'until' } },
    );
    const found = new Set<string>();
    for (const item of items) {
      if (item.reason === undefined) continue; // call counts only
      const until = typeof item.until === 'string' ? item.until : undefined;
      if (isInForce(until === undefined ? {} : { expiresAt: until }, nowMs)) found.add(String(item.phone));
    }
    return found;
  }

  async deleteSuppression(phone: string, nowMs: number): Promise<'deleted' | 'absent'> {
    const failed = await this.t.transact([
      {
        Update: {
          TableName: this.t.name,
          Key: keys.recipient(phone),
          // The suppression goes, the number's call counts stay: the item is kept until any window
          // they could be in is over.
          UpdateExpression: 'REMOVE reason, createdAt, runId, #until, entity SET #ttl = :keep',
          ConditionExpression: 'attribute_exists(reason) AND (attribute_not_exists(#until) OR #until > :now)',
          ExpressionAttributeNames: { '#until': 'until', '#ttl': TABLE_SCHEMA.timeToLiveAttribute },
          ExpressionAttributeValues: {
            ':now': new Date(nowMs).toISOString(),
            ':keep': Math.ceil(nowMs / 1000) + LONGEST_WINDOW_S,
          },
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
      page.cursor === undefined ? undefined : decodeTableKeyCursor(page.cursor, SUPPRESSION_LIST, E164);
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

  /**
   * A suppression written into the number's item. Its TTL is the suppression's expiry plus the
   * longest window (a window counted before the expiry is over by then), or none while it is in
   * force for good.
   */
  private suppressNumber(s: Suppression): TransactItem {
    const set = ['phone = :phone', 'reason = :reason', 'createdAt = :createdAt'];
    const remove: string[] = [];
    const values: Record<string, unknown> = {
      ':phone': s.phone,
      ':reason': s.reason,
      ':createdAt': s.createdAt,
    };
    if (s.runId) {
      set.push('runId = :runId');
      values[':runId'] = s.runId;
    } else remove.push('runId');
    if (s.expiresAt) {
      set.push('#until = :until', '#ttl = :ttl');
      values[':until'] = s.expiresAt;
      values[':ttl'] = Math.ceil(Date.parse(s.expiresAt) / 1000) + LONGEST_WINDOW_S;
    } else remove.push('#until', '#ttl');
    return {
      Update: {
        TableName: this.t.name,
        Key: keys.recipient(s.phone),
        UpdateExpression: `SET ${set.join(', ')}${remove.length > 0 ? ` REMOVE ${remove.join(', ')}` : ''}`,
        ExpressionAttributeNames: { '#until': 'until', '#ttl': TABLE_SCHEMA.timeToLiveAttribute },
        ExpressionAttributeValues: values,
      },
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
