// (adapter) Run items: created (with an Idempotency-Key, atomically), read, grown by appended leads,
// listed while open and closed once every lead is final.

import { randomUUID } from 'node:crypto';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { carriedSlotOf } from '../../core/carried-slot.ts';
import {
  carriedLeadsOf,
  finalOnCounters,
  holderOf,
  type Job,
  NO_SLOT_COUNTS,
  type Run,
  type RunControl,
  type RunRecord,
  type SlotCounts,
} from '../../core/model.ts';
import type {
  CarriedSlot,
  CreateRunResult,
  IdempotencyClaim,
  LeadReservation,
  NewRun,
  OpenRunStore,
  ReservationResult,
  RunIntakeStore,
  RunReader,
} from '../../core/ports.ts';
import { keys, OPEN_RUNS, TABLE_SCHEMA } from '../../definitions/table-schema.ts';
import { jobFromItem, newRunItem, runRecordFromItem } from './items.ts';
import {
  newSlotShardItems,
  runSlotCaps,
  SlotShardMemory,
  type SlotShardState,
  slotShardFromItem,
  sumSlotCounts,
  withSlotShards,
} from './run-slots.ts';
import {
  type DynamoTable,
  isConditionalCheckFailed,
  isLostAnswer,
  MAX_CONFLICT_RETRIES,
  type TransactItem,
} from './table.ts';

/** How long an Idempotency-Key is remembered (Stripe keeps them 24 hours). */
const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;
/** Reads and tries of a keyed append while other appends keep moving the run. */
const MAX_RESERVE_ROUNDS = 20;

export class DynamoRuns implements RunReader, RunIntakeStore, OpenRunStore {
  /** What this process last read of each run's slot counters (run-slots.ts). */
  readonly slotShards = new SlotShardMemory();

  constructor(
    private readonly t: DynamoTable,
    /**
     * Slots per counter of a high-cap run (run-slots.ts). Tests make it small, and split every cap
     * above it, so that small caps are split too.
     */
    private readonly slotShardSize?: number,
  ) {}

  async createRun(run: NewRun, idempotency?: IdempotencyClaim): Promise<CreateRunResult> {
    const caps =
      this.slotShardSize === undefined
        ? runSlotCaps(run.concurrency)
        : runSlotCaps(run.concurrency, this.slotShardSize, this.slotShardSize);
    const putRun = {
      TableName: this.t.name,
      Item: { ...newRunItem(run), ...(caps.length > 0 ? { slotShards: caps.length } : {}) },
      ConditionExpression: 'attribute_not_exists(pk)',
    };
    // The run and its slot counters are written together: no acquire can find one without the other.
    const putShards: TransactItem[] = newSlotShardItems(run, caps).map((Item) => ({
      Put: { TableName: this.t.name, Item, ConditionExpression: 'attribute_not_exists(pk)' },
    }));
    if (!idempotency) {
      if (putShards.length === 0) await this.t.doc.send(new PutCommand(putRun));
      else if ((await this.t.transact([{ Put: putRun }, ...putShards])).length > 0)
        throw new Error(`run ${run.runId} exists already`);
      return { kind: 'created' };
    }
    // The key and the run are written together: two racing retries cannot both create a run.
    const failed = await this.t.transact([
      { Put: putRun },
      ...putShards,
      {
        Put: {
          TableName: this.t.name,
          Item: {
            ...keys.idempotency(idempotency.key),
            entity: 'idempotency',
            runId: run.runId,
            fingerprint: idempotency.fingerprint,
            [TABLE_SCHEMA.timeToLiveAttribute]:
              Math.floor(Date.parse(run.createdAt) / 1000) + IDEMPOTENCY_TTL_SECONDS,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
    ]);
    if (failed.length === 0) return { kind: 'created' };
    if (!failed.includes(1 + putShards.length)) throw new Error(`run ${run.runId} exists already`);
    const { Item } = await this.t.doc.send(
      new GetCommand({
        TableName: this.t.name,
        Key: keys.idempotency(idempotency.key),
        ConsistentRead: true,
      }),
    );
    if (!Item) throw new Error('idempotency key claimed but not found');
    return { kind: 'existing', runId: String(Item.runId), fingerprint: String(Item.fingerprint) };
  }

  async getRunControl(runId: string): Promise<RunControl | undefined> {
    const { Item } = await this.t.doc.send(
      new GetCommand({
        TableName: this.t.name,
        Key: keys.run(runId),
        ConsistentRead: true,
        ProjectionExpression: '#control',
        ExpressionAttributeNames: { '#control': 'control' },
      }),
    );
    return Item ? (Item.control as RunControl) : undefined;
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const [record, live] = await Promise.all([this.getRunRecord(runId), this.liveJobs(runId)]);
    return record ? { ...record, ...live } : undefined;
  }

  /**
   * The run item, and its slot counters when it has them (one query: they sort right after it). A run
   * known to have none (this process has read it before) is read with a plain GetItem.
   */
  async getRunRecord(runId: string): Promise<RunRecord | undefined> {
    const read = await this.readRunAndCounters(runId);
    return read && withSlotShards(runRecordFromItem(read.item), read.shards);
  }

  private async readRunAndCounters(
    runId: string,
  ): Promise<{ item: Record<string, unknown>; shards: SlotShardState[] } | undefined> {
    if (this.slotShards.get(runId)?.length === 0) {
      const { Item } = await this.t.doc.send(
        new GetCommand({ TableName: this.t.name, Key: keys.run(runId), ConsistentRead: true }),
      );
      return Item ? { item: Item, shards: [] } : undefined;
    }
    const { Items = [] } = await this.t.doc.send(
      new QueryCommand({
        TableName: this.t.name,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: {
          ':pk': keys.run(runId).pk,
          ':from': keys.runAndSlots.from,
          ':to': keys.runAndSlots.to,
        },
        ConsistentRead: true,
      }),
    );
    const item = Items.find((entry) => entry.sk === keys.run(runId).sk);
    if (!item) return undefined;
    const shards = Items.filter((entry) => entry.sk !== keys.run(runId).sk).map(slotShardFromItem);
    this.slotShards.remember(runId, shards);
    return { item, shards };
  }

  /** What the run's slot counters hold between them, read now (none: a run of one counter). */
  async slotCounts(runId: string): Promise<SlotCounts> {
    const read = await this.readRunAndCounters(runId);
    return read ? sumSlotCounts(read.shards) : NO_SLOT_COUNTS;
  }

  /**
   * The leads made final on the run's counters, read now: the value of the run item's `queued` once
   * the run is over (run-slots.ts). A write conditioned on `queued > ` this is refused by a run over.
   */
  async countersFinal(runId: string): Promise<number> {
    if (this.slotShards.get(runId)?.length === 0) return 0;
    return finalOnCounters(await this.slotCounts(runId));
  }

  /** A run from its item as a write returned it (its counters read anew), with its holders. */
  async runWithHolders(item: Record<string, unknown>): Promise<Run> {
    const runId = String(item.runId);
    if (item.slotShards !== undefined)
      return (await this.getRun(runId)) ?? { ...runRecordFromItem(item), holders: {} };
    return {
      ...runRecordFromItem(item),
      ...(Number(item.active) > 0 ? await this.liveJobs(runId) : { holders: {} }),
    };
  }

  /** The run's slot counters as this process knows them, read when it does not (empty: it has none). */
  async slotShardsOf(runId: string): Promise<SlotShardState[]> {
    const known = this.slotShards.get(runId);
    if (known) return known;
    await this.getRunRecord(runId);
    return this.slotShards.get(runId) ?? [];
  }

  /**
   * The run's live jobs: the sparse live index (keys only, eventually consistent on AWS) names
   * them, and the jobs themselves say their attempt and state. A job the index still lists but that
   * no longer holds a slot is left out.
   */
  async listHolders(runId: string): Promise<Run['holders']> {
    return (await this.liveJobs(runId)).holders;
  }

  /** The jobs the live index lists: the holders, and the leads whose jobs carry a slot (Run.carried). */
  private async liveJobs(runId: string): Promise<Pick<Run, 'holders' | 'carried'>> {
    const jobKeys = await this.liveJobKeys(runId);
    const holders: Run['holders'] = {};
    // What makes a job a holder (eventually consistent, like the index), or a carrier.
    const jobs = (
      await this.t.batchGet(jobKeys, {
        projection:
          'jobId, #status, attempt, dialedAt, queuedAt, accountShard, slotShard, callSid, carriedSlot, outcome',
        names: { '#status': 'status' },
      })
    ).map(jobFromItem);
    for (const job of jobs) {
      const holder = holderOf(job);
      if (holder) holders[job.jobId] = holder;
    }
    const carried = carriedLeadsOf(jobs);
    return carried.length > 0 ? { holders, carried } : { holders };
  }

  /** The keys of the jobs the run's live index lists: its holders, and the released jobs that carry a slot. */
  private async liveJobKeys(runId: string): Promise<Record<string, unknown>[]> {
    const jobKeys: Record<string, unknown>[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.t.doc.send(
        new QueryCommand({
          TableName: this.t.name,
          IndexName: TABLE_SCHEMA.liveIndex.name,
          KeyConditionExpression: '#live = :run',
          ExpressionAttributeNames: { '#live': TABLE_SCHEMA.liveIndex.partitionKey },
          ExpressionAttributeValues: { ':run': runId },
          ...(ExclusiveStartKey ? { ExclusiveStartKey } : {}),
        }),
      );
      for (const item of page.Items ?? []) jobKeys.push({ pk: item.pk, sk: item.sk });
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return jobKeys;
  }

  async carriedSlots(runId: string, everyJob: boolean): Promise<(CarriedSlot & { endedAt: string })[]> {
    const carried = (item: Record<string, unknown>) => {
      const carry = carriedSlotOf(runId, jobFromItem(item));
      return carry ? [{ ...carry, endedAt: String(item.endedAt) }] : [];
    };
    const projection = 'jobId, attempt, carriedShard, carriedSlot, endedAt, #status, outcome';
    const names = { '#status': 'status' };
    if (!everyJob) {
      // A carrying job keeps its place in the live index (slots.ts): the holders' query finds it.
      const jobKeys = await this.liveJobKeys(runId);
      return (await this.t.batchGet(jobKeys, { projection, names })).flatMap(carried);
    }
    // Every job of the run, strongly consistent: read once, when the run is about to be closed.
    const found: (CarriedSlot & { endedAt: string })[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.t.doc.send(
        new QueryCommand({
          TableName: this.t.name,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :jobs)',
          FilterExpression: 'attribute_exists(carriedShard) OR attribute_exists(carriedSlot)',
          ProjectionExpression: projection,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ':pk': keys.run(runId).pk, ':jobs': 'JOB#' },
          ConsistentRead: true,
          ...(ExclusiveStartKey ? { ExclusiveStartKey } : {}),
        }),
      );
      for (const item of page.Items ?? []) found.push(...carried(item));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return found;
  }

  async claimedCalls(callSids: readonly string[]): Promise<Set<string>> {
    const claims = await this.t.batchGet(
      [...new Set(callSids)].map((sid) => keys.callClaim(sid)),
      { consistent: true, projection: 'pk' },
    );
    return new Set(claims.map((item) => String(item.pk).slice('CALL#'.length)));
  }

  async getJob(runId: string, jobId: string): Promise<Job | undefined> {
    const { Item } = await this.t.doc.send(
      new GetCommand({ TableName: this.t.name, Key: keys.job(runId, jobId), ConsistentRead: true }),
    );
    return Item ? jobFromItem(Item) : undefined;
  }

  async reserveLeads(runId: string, request: LeadReservation): Promise<ReservationResult> {
    if (request.idempotency) return this.reserveLeadsOnce(runId, request, request.idempotency);
    // The reservation names itself, so that a retry after a lost answer finds it already made (the
    // run keeps the last one's id and places) instead of reserving the leads a second time.
    const id = randomUUID();
    for (let retry = 0; ; retry++) {
      try {
        return await this.tryReserve(runId, request, id);
      } catch (error) {
        if (!isLostAnswer(error) || retry >= MAX_CONFLICT_RETRIES) throw error;
        await this.t.sleep(this.t.random() * Math.min(1000, 10 * 2 ** retry));
      }
    }
  }

  private async tryReserve(runId: string, request: LeadReservation, id: string): Promise<ReservationResult> {
    const countersFinal = await this.countersFinal(runId);
    try {
      const { Attributes = {} } = await this.t.doc.send(
        new UpdateCommand({
          TableName: this.t.name,
          Key: keys.run(runId),
          // One write for the whole append: the run cannot look completed while any of it is pending.
          UpdateExpression:
            'SET totalLeads = totalLeads + :n, chunkCount = if_not_exists(chunkCount, :zero) + :k, ' +
            // Operands read the item as it was: the places this reservation starts at, kept with its id.
            'reservationId = :id, reservationIndex = totalLeads, reservationChunk = if_not_exists(chunkCount, :zero)',
          ConditionExpression:
            'attribute_exists(pk) AND #control <> :canceled AND totalLeads <= :room ' +
            'AND (queued > :countersFinal OR active > :zero OR ingestedLeads < totalLeads) ' +
            'AND (attribute_not_exists(reservationId) OR reservationId <> :id)',
          ExpressionAttributeNames: { '#control': 'control' },
          ExpressionAttributeValues: {
            ':n': request.leads,
            ':k': request.chunks,
            ':zero': 0,
            ':countersFinal': countersFinal,
            ':canceled': 'canceled',
            ':room': request.maxLeads - request.leads,
            ':id': id,
          },
          ReturnValues: 'UPDATED_OLD',
        }),
      );
      return {
        kind: 'reserved',
        firstIndex: Number(Attributes.totalLeads),
        firstChunk: Number(Attributes.chunkCount ?? 0),
      };
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      const { Item } = await this.t.doc.send(
        new GetCommand({ TableName: this.t.name, Key: keys.run(runId), ConsistentRead: true }),
      );
      if (Item?.reservationId === id) {
        // This reservation was made by the try whose answer was lost.
        return {
          kind: 'reserved',
          firstIndex: Number(Item.reservationIndex),
          firstChunk: Number(Item.reservationChunk),
        };
      }
      const run = await this.getRun(runId);
      return run ? { kind: 'refused', run } : { kind: 'not-found' };
    }
  }

  /**
   * An append with an Idempotency-Key: the reservation and the key (with the places reserved) in one
   * transaction. A transaction returns no old values, so the places are read first and the update is
   * conditioned on the run still being there; a concurrent append moves it, and the read is redone.
   */
  private async reserveLeadsOnce(
    runId: string,
    request: LeadReservation,
    claim: IdempotencyClaim,
  ): Promise<ReservationResult> {
    const keyItem = keys.idempotency(`${runId}#leads#${claim.key}`);
    for (let round = 0; ; round++) {
      const run = await this.getRun(runId);
      if (!run) return { kind: 'not-found' };
      const places = { firstIndex: run.totalLeads, firstChunk: run.chunkCount };
      const countersFinal = await this.countersFinal(runId);
      const failed = await this.t.transact([
        {
          Update: {
            TableName: this.t.name,
            Key: keys.run(runId),
            UpdateExpression: 'SET totalLeads = totalLeads + :n, chunkCount = chunkCount + :k',
            ConditionExpression:
              'attribute_exists(pk) AND #control <> :canceled AND totalLeads <= :room ' +
              'AND (queued > :countersFinal OR active > :zero OR ingestedLeads < totalLeads) ' +
              'AND totalLeads = :total AND chunkCount = :chunks',
            ExpressionAttributeNames: { '#control': 'control' },
            ExpressionAttributeValues: {
              ':n': request.leads,
              ':k': request.chunks,
              ':zero': 0,
              ':countersFinal': countersFinal,
              ':canceled': 'canceled',
              ':room': request.maxLeads - request.leads,
              ':total': places.firstIndex,
              ':chunks': places.firstChunk,
            },
          },
        },
        {
          Put: {
            TableName: this.t.name,
            Item: {
              ...keyItem,
              entity: 'idempotency',
              runId,
              fingerprint: claim.fingerprint,
              ...places,
              [TABLE_SCHEMA.timeToLiveAttribute]: Math.floor(Date.now() / 1000) + IDEMPOTENCY_TTL_SECONDS,
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
      ]);
      if (failed.length === 0) return { kind: 'reserved', ...places };
      if (failed.includes(1)) {
        const { Item } = await this.t.doc.send(
          new GetCommand({ TableName: this.t.name, Key: keyItem, ConsistentRead: true }),
        );
        if (!Item) throw new Error('idempotency key claimed but not found');
        return {
          kind: 'existing',
          firstIndex: Number(Item.firstIndex),
          firstChunk: Number(Item.firstChunk),
          fingerprint: String(Item.fingerprint),
        };
      }
      const now = await this.getRun(runId);
      if (!now) return { kind: 'not-found' };
      const moved = now.totalLeads !== places.firstIndex || now.chunkCount !== places.firstChunk;
      if (!moved) return { kind: 'refused', run: now };
      if (round >= MAX_RESERVE_ROUNDS) throw new Error('the run kept growing under a keyed append');
    }
  }

  async listOpenRuns(): Promise<string[]> {
    const runIds: string[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.t.doc.send(
        new QueryCommand({
          TableName: this.t.name,
          IndexName: TABLE_SCHEMA.openRunsIndex.name,
          KeyConditionExpression: '#open = :open',
          ExpressionAttributeNames: { '#open': TABLE_SCHEMA.openRunsIndex.partitionKey },
          ExpressionAttributeValues: { ':open': OPEN_RUNS },
          ...(ExclusiveStartKey ? { ExclusiveStartKey } : {}),
        }),
      );
      for (const item of page.Items ?? []) runIds.push(String(item.pk).slice('RUN#'.length));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return runIds;
  }

  async closeRun(runId: string): Promise<'closed' | 'still-open'> {
    const countersFinal = await this.countersFinal(runId);
    try {
      await this.t.doc.send(
        new UpdateCommand({
          TableName: this.t.name,
          Key: keys.run(runId),
          UpdateExpression: 'REMOVE #open',
          // Every lead ingested and none queued or live means every lead is final. With slot
          // counters, the run item's `queued` then equals the leads made final on them (run-slots.ts).
          ConditionExpression: 'ingestedLeads = totalLeads AND queued = :countersFinal AND active = :zero',
          ExpressionAttributeNames: { '#open': TABLE_SCHEMA.openRunsIndex.partitionKey },
          ExpressionAttributeValues: { ':zero': 0, ':countersFinal': countersFinal },
        }),
      );
      return 'closed';
    } catch (error) {
      if (isConditionalCheckFailed(error)) return 'still-open';
      throw error;
    }
  }
}
