// (adapter) A DynamoDB stream record as the core's model: which entity changed, and what it was before
// and after the write (NEW_AND_OLD_IMAGES). Items map to runs and jobs through items.ts, as everywhere
// else; a run's slot counters map to their counts; chunk markers, idempotency keys, account items,
// suppressions and frequency counters change nothing the outside is told.

import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import type { Change } from '../../core/events.ts';
import { jobFromItem, runRecordFromItem } from './items.ts';
import { slotCountsOf } from './run-slots.ts';

type Image = Record<string, AttributeValue>;

export function changeOf(record: DynamoDBRecord): Change | undefined {
  // Lambda's event types spell AttributeValue its own way; the wire format is the same.
  const image = (value: unknown) => (value ? unmarshall(value as Image) : undefined);
  const before = image(record.dynamodb?.OldImage);
  const after = image(record.dynamodb?.NewImage);
  const entity = (after ?? before)?.entity;
  if (entity === 'job') {
    return { entity, before: before && jobFromItem(before), after: after && jobFromItem(after) };
  }
  if (entity === 'run') {
    return { entity, before: before && runRecordFromItem(before), after: after && runRecordFromItem(after) };
  }
  if (entity === 'run-slots') {
    return {
      entity: 'slots',
      runId: String((after ?? before)?.runId),
      before: before && slotCountsOf(before),
      after: after && slotCountsOf(after),
    };
  }
  return undefined;
}

/** When the change was written: the record's approximate creation time (whole seconds), as ISO 8601. */
export function changeTime(record: DynamoDBRecord): string {
  const seconds = record.dynamodb?.ApproximateCreationDateTime;
  return new Date(seconds === undefined ? Date.now() : seconds * 1000).toISOString();
}

/**
 * The run whose item this record is, when its cap is split over slot counters (run-slots.ts): its
 * item alone does not say how many calls are live or how many leads are final (the counters do).
 */
export function runWithSlotCounters(record: DynamoDBRecord): string | undefined {
  const image = record.dynamodb?.NewImage ?? record.dynamodb?.OldImage;
  if (image?.entity?.S !== 'run' || image.slotShards === undefined) return undefined;
  return image.runId?.S;
}
