// (adapter) A number's own item (keys.recipient): its suppression, when it has one, and its calls in
// the current frequency-cap window. One item carries both so that the acquire transaction checks and
// counts a number with one item of its own (2 write units a dial, whichever checks are on), not two.
//
// DynamoDB's TTL deletes the item once nothing on it matters any more. Nothing may shorten that:
// a dial counts a number only while no suppression is in force on it (the checks go together), and a
// suppression's own writes keep the item until the longest window that could have started before them
// is over, so that a suppression's removal or expiry never takes a window's count with it.

import type { RecipientChecks } from '../../core/ports.ts';
import { frequencyWindow } from '../../core/recipients.ts';
import { keys, TABLE_SCHEMA } from '../../definitions/table-schema.ts';
import type { TransactItem } from './table.ts';

/** The longest frequency window there can be (RECIPIENT_WINDOW_HOURS is at most 366 days), in s. */
export const LONGEST_WINDOW_S = 366 * 24 * 3600;

/** A suppression is on the item while it has a reason; it is in force until `until`, if given. */
const NOT_SUPPRESSED = 'attribute_not_exists(reason) OR #until <= :now';

/** The attribute counting a number's calls in one window (by its index since the epoch). */
function callsAttribute(windowIndex: number): string {
  return `calls${windowIndex}`;
}

/**
 * The item a job's recipient checks add to its acquire, if any: a condition that the number is not
 * suppressed (or its suppression has expired), and with a frequency cap its call counted in the
 * current window under the cap. Either failing cancels the whole transaction: no slot, no call. It
 * asks for the item's old image, which says which check failed (`refusedBy`).
 */
export function recipientCheckItem(
  table: string,
  phone: string,
  checks: RecipientChecks | undefined,
): TransactItem | undefined {
  if (!checks?.suppression && !checks?.frequency) return undefined;
  const now = new Date(checks.nowMs).toISOString();
  if (!checks.frequency) {
    return {
      ConditionCheck: {
        TableName: table,
        Key: keys.recipient(phone),
        ConditionExpression: NOT_SUPPRESSED,
        ExpressionAttributeNames: { '#until': 'until' },
        ExpressionAttributeValues: { ':now': now },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }
  const window = frequencyWindow(checks.nowMs, checks.frequency.windowMs);
  return {
    Update: {
      TableName: table,
      Key: keys.recipient(phone),
      // The last window's count goes as this one's starts; the item outlives its window by nothing.
      UpdateExpression: 'ADD #calls :one SET phone = :phone, #ttl = :expires REMOVE #previous',
      // With a frequency cap the suppression is always checked too (see recipientChecks).
      ConditionExpression: `(${NOT_SUPPRESSED}) AND (attribute_not_exists(#calls) OR #calls < :max)`,
      ExpressionAttributeNames: {
        '#until': 'until',
        '#calls': callsAttribute(window.index),
        '#previous': callsAttribute(window.index - 1),
        '#ttl': TABLE_SCHEMA.timeToLiveAttribute,
      },
      ExpressionAttributeValues: {
        ':now': now,
        ':one': 1,
        ':phone': phone,
        ':max': checks.frequency.maxCalls,
        ':expires': Math.ceil(window.endsAt / 1000),
      },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    },
  };
}

/** Which check refused a dial, from the old image of its recipient item (raw attribute values). */
export function refusedBy(
  old: Record<string, { S?: string; N?: string }> | undefined,
  nowMs: number,
): 'suppressed' | 'frequency-capped' {
  const until = old?.until?.S;
  const suppressed =
    old?.reason !== undefined && (until === undefined || until > new Date(nowMs).toISOString());
  return suppressed ? 'suppressed' : 'frequency-capped';
}
