// (adapter) Lead chunks in, exactly once: the one worker that claims a chunk's marker item writes its
// jobs, and only the transaction that marks the chunk done adds its counters (see `ingestChunk`).

import { randomUUID } from 'node:crypto';
import { BatchWriteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { NewJob } from '../../core/model.ts';
import type { IngestStore, RunReader } from '../../core/ports.ts';
import { keys } from '../../definitions/table-schema.ts';
import { inPool } from '../pool.ts';
import { type IngestMode, type JobItem, newJobItem } from './items.ts';
import { isRefusal, sendOnce } from './send-once.ts';
import { type DynamoTable, isConditionalCheckFailed } from './table.ts';

/** A chunk's marker: `writing` while claimed, `abandoned` by an owner that failed, `done` once counted. */
interface ChunkMarker {
  state: 'writing' | 'abandoned' | 'done';
  mode: IngestMode;
  /** When the current claim was made (ms since the epoch, the claimer's clock). */
  claimedAt: number;
  token: string | undefined;
}

/** A claim this worker sent. */
interface ChunkClaim {
  token: string;
  mode: IngestMode;
  /** Only the first claimer of a chunk may use unconditional BatchWriteItem. */
  batch: boolean;
  /** performance.now() just before the claim was sent: the ownership window runs from here. */
  startedMs: number;
}

export interface IngestTiming {
  takeoverMs: number;
  batchWindowMs: number;
  unknownOutcomeSettleMs: number;
}

/**
 * A `writing` chunk marker younger than this may still have a live owner: a redelivery fails and
 * comes back later instead of writing. An owner runs in the dispatcher, whose Lambda timeout (30 s,
 * lambdas/definitions/resources.ts) ends it at most 30 s after its claim, plus 10 s for clock
 * differences between hosts and requests still in flight. What safety needs is that it be far beyond
 * CHUNK_BATCH_WINDOW_MS: no batch the owner sent can still land when a taker starts, and after the
 * window the owner writes only conditionally, which is safe alongside a taker.
 */
export const CHUNK_TAKEOVER_MS = 40_000;
/**
 * The owner sends unconditional BatchWriteItem only this long after its claim, far below the
 * takeover age: none of its batches can land once another worker may have taken the chunk over (and
 * a dispatcher one of its jobs). Past it, the rest is written with conditional puts.
 */
export const CHUNK_BATCH_WINDOW_MS = 10_000;
/**
 * A BatchWriteItem that failed without a refusal (5xx, network error, timeout) may still be applied:
 * its items are written conditionally only after this long, so that it cannot land after them.
 */
export const UNKNOWN_OUTCOME_SETTLE_MS = 5_000;

/** A redelivered chunk whose first delivery is still being written: fail the record, try later. */
export class ChunkBusyError extends Error {
  override readonly name = 'ChunkBusyError';
}

/** BatchWriteItem takes at most 25 items. */
const BATCH_WRITE_ITEMS = 25;
/** An owner's BatchWriteItem requests in flight at once (a chunk of 90 is 4). */
const BATCHES_IN_FLIGHT = 4;
/** Conditional puts in flight at once (a takeover, or a group past the window or after an error). */
const PUTS_IN_FLIGHT = 8;
/** Reads of a chunk marker before ingest gives up on a claim that keeps changing hands. */
const MAX_CLAIM_LOOKS = 4;

export class DynamoIngest implements IngestStore {
  private readonly timing: IngestTiming;

  constructor(
    private readonly t: DynamoTable,
    private readonly runs: RunReader,
    timing: Partial<IngestTiming> = {},
  ) {
    this.timing = {
      takeoverMs: CHUNK_TAKEOVER_MS,
      batchWindowMs: CHUNK_BATCH_WINDOW_MS,
      unknownOutcomeSettleMs: UNKNOWN_OUTCOME_SETTLE_MS,
      ...timing,
    };
  }

  /**
   * One chunk of leads in, exactly once, whoever else delivers it (SQS redelivers, and may deliver
   * twice at once). The chunk's marker item says who writes its jobs and whether its counters are in:
   *
   * - no marker: this call claims it (`writing`, with a random token and the mode the run's control
   *   gives: `queued`, or `canceled` for a canceled run) and is the owner. Nobody can have written
   *   a job of the chunk yet, so the owner writes them with unconditional BatchWriteItem, which is
   *   cheaper (1 write unit a job instead of a transaction's 2) and faster than anything
   *   conditional — but only within CHUNK_BATCH_WINDOW_MS of its claim, and never resending a batch
   *   whose outcome it does not know (see `batchWriteGroup`): a late or repeated unconditional put
   *   would turn a job a dispatcher has already taken back into a queued one, and call it twice.
   * - `writing`, younger than CHUNK_TAKEOVER_MS: its owner may still be writing; this call fails
   *   (ChunkBusyError) and its SQS record comes back later, when the chunk is done.
   * - `writing` and older, or `abandoned` (its owner failed and said so): this call takes the claim
   *   over and writes every job with a conditional put (a job that is there stays as it is).
   * - `done`, or a marker without a state (written with its jobs and counters): 'duplicate'.
   *
   * The counters are added only by the transaction that turns the writer's claim into `done`, so a
   * chunk is counted once. Its jobs are visible in the queued index a little before that: a
   * dispatcher may take one and decrement `queued` first (the run's `queued` can be briefly
   * negative; `ingestedLeads` is not counted yet, so the run cannot close early meanwhile).
   */
  async ingestChunk(
    runId: string,
    chunk: number,
    jobs: NewJob[],
    at: string,
  ): Promise<'ingested' | 'duplicate'> {
    const token = randomUUID();
    // The claim this call sent last: if its answer was lost (the SDK retried a claim that had been
    // applied, and the retry failed its condition), the marker carries our token.
    let sent: ChunkClaim | undefined;
    for (let look = 0; look < MAX_CLAIM_LOOKS; look++) {
      const marker = await this.readChunkMarker(runId, chunk);
      if (sent && marker?.token === token && marker.state === 'writing') {
        return this.writeChunk(runId, chunk, jobs, at, sent);
      }
      if (!marker) {
        const run = await this.runs.getRun(runId);
        if (!run) throw new Error(`ingest of chunk ${chunk} failed: run ${runId} not found`);
        // Read once: a run canceled after this is handled by the cancel sweep (see `finishChunk`).
        const mode: IngestMode = run.control === 'canceled' ? 'canceled' : 'queued';
        sent = { token, mode, batch: true, startedMs: performance.now() };
        if (await this.claimChunk(runId, chunk, jobs.length, at, sent)) {
          return this.writeChunk(runId, chunk, jobs, at, sent);
        }
        continue;
      }
      if (marker.state === 'done') return 'duplicate';
      const age = this.t.now() - marker.claimedAt;
      if (marker.state === 'writing' && age < this.timing.takeoverMs) {
        throw new ChunkBusyError(
          `chunk ${chunk} of run ${runId} is being written by another worker (claimed ${Math.round(age)} ms ago)`,
        );
      }
      sent = { token, mode: marker.mode, batch: false, startedMs: performance.now() };
      if (await this.takeOverChunk(runId, chunk, marker, sent)) {
        return this.writeChunk(runId, chunk, jobs, at, sent);
      }
    }
    throw new Error(`ingest of chunk ${chunk} failed: its claim kept changing hands`);
  }

  private async readChunkMarker(runId: string, chunk: number): Promise<ChunkMarker | undefined> {
    const { Item } = await this.t.doc.send(
      new GetCommand({ TableName: this.t.name, Key: keys.chunk(runId, chunk), ConsistentRead: true }),
    );
    if (!Item) return undefined;
    // A marker without a state was written together with its jobs and counters: done.
    const state = Item.state === undefined ? 'done' : Item.state;
    if (state !== 'writing' && state !== 'abandoned' && state !== 'done') {
      throw new Error(`chunk ${chunk} of run ${runId}: unknown marker state ${String(state)}`);
    }
    if (state !== 'done' && Item.mode !== 'queued' && Item.mode !== 'canceled') {
      throw new Error(`chunk ${chunk} of run ${runId}: marker without a mode`);
    }
    return {
      state,
      mode: Item.mode === 'canceled' ? 'canceled' : 'queued',
      claimedAt: Number(Item.claimedAt ?? 0),
      token: typeof Item.token === 'string' ? Item.token : undefined,
    };
  }

  /** Claims a chunk nobody has claimed; false if someone else has (or our retried claim did). */
  private async claimChunk(
    runId: string,
    chunk: number,
    leads: number,
    at: string,
    claim: ChunkClaim,
  ): Promise<boolean> {
    return this.t.applies(
      new PutCommand({
        TableName: this.t.name,
        Item: {
          ...keys.chunk(runId, chunk),
          entity: 'chunk',
          leads,
          at,
          state: 'writing',
          mode: claim.mode,
          claimedAt: this.t.now(),
          token: claim.token,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  /** Takes over a stale or abandoned claim, as long as nobody else did since it was read. */
  private async takeOverChunk(
    runId: string,
    chunk: number,
    seen: ChunkMarker,
    claim: ChunkClaim,
  ): Promise<boolean> {
    return this.t.applies(
      new UpdateCommand({
        TableName: this.t.name,
        Key: keys.chunk(runId, chunk),
        UpdateExpression: 'SET #state = :writing, claimedAt = :now, #token = :token, takenOver = :true',
        ConditionExpression: '#state = :seen AND #token = :seenToken',
        ExpressionAttributeNames: { '#state': 'state', '#token': 'token' },
        ExpressionAttributeValues: {
          ':writing': 'writing',
          ':now': this.t.now(),
          ':token': claim.token,
          ':true': true,
          ':seen': seen.state,
          ':seenToken': seen.token ?? '',
        },
      }),
    );
  }

  /** The claimed chunk's jobs, then its counters; on failure the claim is let go (`abandoned`). */
  private async writeChunk(
    runId: string,
    chunk: number,
    jobs: NewJob[],
    at: string,
    claim: ChunkClaim,
  ): Promise<'ingested' | 'duplicate'> {
    const items = jobs.map((job) => newJobItem(runId, job, at, claim.mode));
    try {
      if (claim.batch) await this.batchWriteJobs(items, claim.startedMs);
      else await this.putJobsIfAbsent(items);
      return await this.finishChunk(runId, chunk, jobs.length, claim);
    } catch (error) {
      // Every write this call started has settled by now (the writers wait for all of theirs, and an
      // unknown batch outcome for its settling time): a redelivery may take over at once instead of
      // waiting for the takeover age. Best effort: failing here leaves it to the age.
      await this.abandonChunk(runId, chunk, claim.token).catch(() => undefined);
      throw error;
    }
  }

  /**
   * The owner's writes: groups of 25, a few in flight. A group is written with BatchWriteItem while
   * the owner is inside its window, else (and after any error) with conditional puts.
   */
  private async batchWriteJobs(items: JobItem[], startedMs: number): Promise<void> {
    const groups: JobItem[][] = [];
    for (let i = 0; i < items.length; i += BATCH_WRITE_ITEMS)
      groups.push(items.slice(i, i + BATCH_WRITE_ITEMS));
    await inPool(groups, BATCHES_IN_FLIGHT, (group) => this.batchWriteGroup(group, startedMs));
  }

  private async batchWriteGroup(items: JobItem[], startedMs: number): Promise<void> {
    let pending = items;
    for (let round = 0; pending.length > 0; round++) {
      // Checked before every send: no unconditional put leaves this worker after the window, so none
      // can land after a takeover (CHUNK_TAKEOVER_MS is far beyond it).
      if (performance.now() - startedMs >= this.timing.batchWindowMs) break;
      const command = sendOnce(
        new BatchWriteCommand({
          RequestItems: { [this.t.name]: pending.map((Item) => ({ PutRequest: { Item } })) },
        }),
      );
      try {
        const { UnprocessedItems } = await this.t.batchDoc.send(command);
        // Unprocessed items were not written: they may be sent again.
        pending = (UnprocessedItems?.[this.t.name] ?? []).flatMap((request) =>
          request.PutRequest?.Item ? [request.PutRequest.Item as JobItem] : [],
        );
      } catch (error) {
        // A refusal (a 4xx: throttled, invalid) wrote nothing. Any other failure (5xx, network,
        // timeout) may have written the batch or may still write it: give it time to land before the
        // conditional puts, which must not be overtaken by it.
        if (!isRefusal(error)) await this.t.sleep(this.timing.unknownOutcomeSettleMs);
        break;
      }
      if (pending.length > 0) await this.t.sleep(this.t.random() * Math.min(500, 20 * 2 ** round));
    }
    if (pending.length > 0) await this.putJobsIfAbsent(pending);
  }

  /** Conditional puts: a job already there (written before, perhaps taken since) is left as it is. */
  private async putJobsIfAbsent(items: JobItem[]): Promise<void> {
    await inPool(items, PUTS_IN_FLIGHT, async (Item) => {
      try {
        await this.t.doc.send(
          new PutCommand({ TableName: this.t.name, Item, ConditionExpression: 'attribute_not_exists(pk)' }),
        );
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
      }
    });
  }

  /**
   * Claim → done and the run's counters, in one transaction: only the holder of the claim counts the
   * chunk, once. No condition on the run's control: a run canceled after the claim of a `queued`
   * chunk counts its jobs as queued, and the dispatcher's cancel sweep (which runs after every
   * ingest, on a canceled run) marks them canceled and moves the counts.
   */
  private async finishChunk(
    runId: string,
    chunk: number,
    leads: number,
    claim: ChunkClaim,
  ): Promise<'ingested' | 'duplicate'> {
    const canceled = claim.mode === 'canceled';
    const failed = await this.t.transact([
      {
        Update: {
          TableName: this.t.name,
          Key: keys.chunk(runId, chunk),
          UpdateExpression: 'SET #state = :done',
          ConditionExpression: '#state = :writing AND #token = :token',
          ExpressionAttributeNames: { '#state': 'state', '#token': 'token' },
          ExpressionAttributeValues: { ':done': 'done', ':writing': 'writing', ':token': claim.token },
        },
      },
      {
        Update: {
          TableName: this.t.name,
          Key: keys.run(runId),
          UpdateExpression: canceled
            ? 'ADD ingestedLeads :n, canceled :n SET outcomes.#canceled = if_not_exists(outcomes.#canceled, :zero) + :n'
            : 'ADD ingestedLeads :n, queued :n',
          ConditionExpression: 'attribute_exists(pk)',
          ...(canceled ? { ExpressionAttributeNames: { '#canceled': 'canceled' } } : {}),
          ExpressionAttributeValues: { ':n': leads, ...(canceled ? { ':zero': 0 } : {}) },
        },
      },
    ]);
    if (failed.length === 0) return 'ingested';
    // Not ours any more: a worker that took the claim over counts it (or has), or our own finish was
    // applied and its answer lost.
    if (failed.includes(0)) return 'duplicate';
    throw new Error(`ingest of chunk ${chunk} failed: run ${runId} not found`);
  }

  private async abandonChunk(runId: string, chunk: number, token: string): Promise<void> {
    await this.t.applies(
      new UpdateCommand({
        TableName: this.t.name,
        Key: keys.chunk(runId, chunk),
        UpdateExpression: 'SET #state = :abandoned',
        ConditionExpression: '#state = :writing AND #token = :token',
        ExpressionAttributeNames: { '#state': 'state', '#token': 'token' },
        ExpressionAttributeValues: { ':abandoned': 'abandoned', ':writing': 'writing', ':token': token },
      }),
    );
  }
}
