// (adapter) The semaphore (docs/DESIGN.md, invariant 2). Every slot change is one TransactWriteItems
// whose first item is the run (`active`, a small scalar, under the cap) and whose second is the job,
// which is the holder: it enters the sparse live index (`liveRun`) with its attempt in the
// transaction that takes the slot, and leaves it in the one that frees the slot. A release is
// conditioned on the job being that holder, at that attempt and live state: a duplicate or late
// release fails it and changes nothing. With account limits a shard counter (and the pace item) are
// items of the same transaction. A callback's final release may instead carry the slot on the job for
// the next acquire (CarriedSlot): then it writes the job alone, and the acquire takes the slot off it.

import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { packOnShards, shardsWithRoom } from '../../core/account-shards.ts';
import { holderOf } from '../../core/model.ts';
import type {
  AccountLimits,
  AcquireResult,
  CarriedRunSlot,
  CarriedSlot,
  QueuedJob,
  RecipientChecks,
  Release,
  ReleaseResult,
  SlotStore,
  WaveResult,
} from '../../core/ports.ts';
import { rotate } from '../../core/rotate.ts';
import { keys, TABLE_SCHEMA } from '../../definitions/table-schema.ts';
import type { AccountLayout, DynamoAccount } from './account.ts';
import { recipientCheckItem, refusedBy } from './recipient-item.ts';
import { CARRIED_ON_RUN_ITEM, OUTCOME_ATTRIBUTE, type SlotShardState } from './run-slots.ts';
import type { DynamoRuns } from './runs.ts';
import { type DynamoTable, isConditionalCheckFailed, type TransactItem } from './table.ts';

/**
 * Jobs in one wave: with the run item and up to one shard item per job, within DynamoDB's 100 items
 * a transaction.
 */
const MAX_WAVE = 49;

/**
 * Jobs in one wave with these checks: each job brings its own item, with an account cap up to one
 * shard item, and with recipient checks its number's item; with the run item, within DynamoDB's 100
 * items a transaction (33 jobs with all of them).
 */
export function maxWave(accountCap: boolean, checks: RecipientChecks | undefined): number {
  const perJob = 1 + (accountCap ? 1 : 0) + (checks?.suppression || checks?.frequency ? 1 : 0);
  return Math.min(MAX_WAVE, Math.floor(99 / perJob));
}

/**
 * A wave's jobs and those left for the next one: at most `size`, and with per-recipient checks no
 * number twice (a transaction may not touch one item twice; the same number can be two leads of a run).
 */
export function waveOf(
  jobs: QueuedJob[],
  size: number,
  checks: RecipientChecks | undefined,
): { wave: QueuedJob[]; left: QueuedJob[] } {
  if (!checks?.suppression && !checks?.frequency)
    return { wave: jobs.slice(0, size), left: jobs.slice(size) };
  const wave: QueuedJob[] = [];
  const left: QueuedJob[] = [];
  const phones = new Set<string>();
  for (const job of jobs) {
    if (wave.length < size && !phones.has(job.phone)) {
      phones.add(job.phone);
      wave.push(job);
    } else left.push(job);
  }
  return { wave, left };
}

/**
 * The run may dial at `:now` (the acquirer's time, ms): it is not waiting for its start_at (a
 * dispatcher removes `scheduledFor` only once it is due) and its expires_at has not come.
 */
const DIALABLE =
  'attribute_not_exists(scheduledFor) AND (attribute_not_exists(expiresAtMs) OR expiresAtMs > :now)';

/** Whether a counter's old image (raw attribute values) says the run may take slots at `at`. */
function isDialable(old: Record<string, { N?: string; S?: string }>, at: string): boolean {
  return (
    old.control?.S === 'running' &&
    old.scheduledFor === undefined &&
    (old.expiresAtMs === undefined || Number(old.expiresAtMs.N) > Date.parse(at))
  );
}

/** Whether a shard counter's old image (raw attribute values) is fenced: another layout is recorded. */
function isFenced(old: Record<string, { N?: string; S?: string }> | undefined): boolean {
  return old?.fence !== undefined;
}

/** Where an acquire takes its slot: the run item's own `active`, or one of the run's counters (run-slots.ts). */
type SlotCounter = { shard: null } | { shard: number; cap: number };

const RUN_COUNTER = { shard: null } as const;

/**
 * Shards with room (as read) one acquire tries before it reports the account full: each one it finds
 * full was filled since the read, by acquirers that will release it in turn.
 */
const SHARDS_TRIED = 3;

/**
 * The counters a single acquire tries, in order: the one `preferred` (a refill's hint: the counter
 * the release freed a slot on), then those last seen with room; none seen full or tried.
 */
function counterOrder(
  shards: readonly SlotShardState[],
  preferred: number | null | undefined,
  tried: ReadonlySet<number>,
  random: () => number,
): SlotShardState[] {
  const open = shards.filter((shard) => !tried.has(shard.shard));
  const first = open.find((shard) => shard.shard === preferred);
  const withRoom = open.filter((shard) => shard !== first && shard.active < shard.cap);
  // Each acquirer from a place of its own: many refills at once do not all reach for one counter.
  const rest = rotate(withRoom, Math.floor(random() * withRoom.length));
  return first ? [first, ...rest] : rest;
}

/** An acquire that carried no slot: it cannot find a carried slot gone. */
function onNoShard<T>(result: T | 'carry-gone'): T {
  if (result === 'carry-gone') throw new Error('an acquire without a carried slot found one gone');
  return result;
}

/**
 * Whether a carried slot holds what an acquire under `layout` takes: with an account cap, a slot on one
 * of the layout's shards; without one, none (a carry of the run's slot alone).
 */
function isCarryFor(carried: CarriedSlot, layout: AccountLayout | undefined): boolean {
  if (layout === undefined) return carried.shard === undefined && carried.runSlot !== undefined;
  if (carried.shard === undefined) return false;
  const place = carried.shard - layout.base;
  return place >= 0 && place < layout.caps.length && layout.caps[place]! > 0;
}

/** `Promise.allSettled` of tasks run one after another. */
async function sequentially<T>(tasks: (() => Promise<T>)[]): Promise<PromiseSettledResult<T>[]> {
  const settled: PromiseSettledResult<T>[] = [];
  for (const task of tasks) {
    try {
      settled.push({ status: 'fulfilled', value: await task() });
    } catch (reason) {
      settled.push({ status: 'rejected', reason });
    }
  }
  return settled;
}

const LIVE = {
  '#lrun': TABLE_SCHEMA.liveIndex.partitionKey,
  '#lkey': TABLE_SCHEMA.liveIndex.sortKey,
};

export class DynamoSlots implements SlotStore {
  constructor(
    private readonly t: DynamoTable,
    private readonly runs: DynamoRuns,
    private readonly account: DynamoAccount,
  ) {}

  async acquireSlot(
    runId: string,
    job: QueuedJob,
    at: string,
    account?: AccountLimits,
    checks?: RecipientChecks,
  ): Promise<AcquireResult> {
    const shards = await this.runs.slotShardsOf(runId);
    if (shards.length === 0) {
      const result = await this.acquireOn(runId, RUN_COUNTER, job, at, account, checks);
      return result === 'counter-full' ? 'no-slot' : result;
    }
    // A run whose cap is split: the counter a release just freed (the hint's), then those last seen
    // with room; once those are full, the counters read anew, once.
    const tried = new Set<number>();
    for (let read = 0; read < 2; read++) {
      for (const shard of counterOrder(
        this.runs.slotShards.get(runId) ?? shards,
        job.slotShard,
        tried,
        this.t.random,
      )) {
        tried.add(shard.shard);
        const result = await this.acquireOn(runId, shard, job, at, account, checks);
        if (result !== 'counter-full') return result;
      }
      await this.runs.getRunRecord(runId);
      tried.clear();
      // Read anew: only counters with room now are tried again.
      const fresh = this.runs.slotShards.get(runId) ?? [];
      for (const shard of fresh) if (shard.active >= shard.cap) tried.add(shard.shard);
      if (tried.size === fresh.length) return 'no-slot';
    }
    return 'no-slot';
  }

  /** One acquire on one of the run's counters, through the account's shards when it has a cap. */
  private async acquireOn(
    runId: string,
    counter: SlotCounter,
    job: QueuedJob,
    at: string,
    account: AccountLimits | undefined,
    checks: RecipientChecks | undefined,
  ): Promise<AcquireResult | 'counter-full'> {
    const max = account?.maxConcurrentCalls;
    const layout = max === undefined ? undefined : await this.account.layoutFor(max);
    // The slot a release carried (CarriedSlot), taken off its job: when it holds what this acquire
    // takes (with an account cap, a slot on one of this layout's shards: one on a fenced layout goes
    // back to its shard, so that the layout drains; without one, none). Otherwise it is dropped.
    const carried = job.carried;
    if (carried !== undefined) {
      if (isCarryFor(carried, layout)) {
        const result = await this.tryAcquire(runId, counter, job, at, account, { carried }, checks);
        // Not taken, but still there (a full counter of several, a run that takes no slot): the
        // caller tries another counter with it, or hands it on.
        if (result !== 'carry-gone') return result;
      } else await this.dropCarry(carried);
      // Gone (or not this acquire's): this job's other tries (the run's other counters) take anew.
      delete job.carried;
    }
    if (max === undefined || layout === undefined)
      return onNoShard(await this.tryAcquire(runId, counter, job, at, account, undefined, checks));
    const { base, caps } = layout;
    const onShard = async (i: number) =>
      onNoShard(
        await this.tryAcquire(
          runId,
          counter,
          job,
          at,
          account,
          { shard: base + i, cap: caps[i]!, max },
          checks,
        ),
      );
    // The shard a release just freed a slot on (a refill's hint), without a read: when it is one of
    // this layout's (a slot freed on a fenced layout is not the account's to give again).
    const freed = job.accountShard === undefined ? undefined : job.accountShard - base;
    if (freed !== undefined && freed >= 0 && freed < caps.length && caps[freed]! > 0) {
      const result = await onShard(freed);
      if (result !== 'account-full') return result;
    }
    // Then the shards a read shows with room: a full account costs one read, not a refused
    // transaction per full shard.
    const room = await this.account.shardRoom(max, layout);
    const order = shardsWithRoom(room, Math.floor(this.t.random() * caps.length)).filter(
      (shard) => shard !== freed,
    );
    for (const shard of order.slice(0, SHARDS_TRIED)) {
      const result = await onShard(shard);
      if (result !== 'account-full') return result;
    }
    return 'account-full';
  }

  /**
   * `counter-full`: the run's counter (one of several) had no slot, but the run is dialable: another
   * counter may have one. On the run's own counter a full run is `no-slot`.
   */
  private async tryAcquire(
    runId: string,
    counter: SlotCounter,
    job: QueuedJob,
    at: string,
    account: AccountLimits | undefined,
    slot: { shard: number; cap: number; max: number } | { carried: CarriedSlot } | undefined,
    checks: RecipientChecks | undefined,
  ): Promise<AcquireResult | 'counter-full' | 'carry-gone'> {
    const carried = slot && 'carried' in slot ? slot.carried : undefined;
    const shard = slot && 'shard' in slot ? slot : undefined;
    const accountShard = carried?.shard ?? shard?.shard;
    // The run's slot the carry holds on this very counter: taken as it is, the lead that held it
    // counted final there. One on another counter (this run's or, handed on, another run's) is freed
    // there in the same transaction, and this counter's slot taken anew.
    const runSlot = carried?.runSlot;
    const own =
      runSlot && carried!.runId === runId && runSlot.counter === counter.shard ? runSlot : undefined;
    const items: TransactItem[] = [
      own ? this.carriedCounterItem(runId, counter, own, at) : this.counterItem(runId, counter, at, 1),
      this.takeJobItem(runId, job, at, accountShard, counter),
    ];
    const shardIndex = shard ? items.push(this.account.acquireShardItem(shard.shard, shard.cap)) - 1 : -1;
    const carryIndex = carried ? items.push(this.takeCarryItem(carried)) - 1 : -1;
    const elsewhereIndex =
      runSlot && !own ? items.push(this.freeCounterItem(carried!.runId, runSlot.counter, runSlot)) - 1 : -1;
    const cps = account?.callsPerSecond;
    if (account && cps !== undefined)
      items.push(this.account.acquirePaceItem({ ...account, callsPerSecond: cps }));
    const recipient = recipientCheckItem(this.t.name, job.phone, checks);
    const recipientIndex = recipient ? items.push(recipient) - 1 : -1;
    // Another acquire on this job or its number at the same moment: it is being taken (or will be
    // there for a later fill); the next job, rather than a retry that would only be refused.
    const { failed, oldItems, contended } = await this.t.transactWithReasons(
      items,
      (index) => index === 1 || index === recipientIndex,
    );
    if (contended) return 'job-taken';
    if (failed.length === 0) {
      job.slotShard = counter.shard;
      if (accountShard !== undefined) job.accountShard = accountShard;
      if (counter.shard !== null && !own) this.runs.slotShards.add(runId, counter.shard, 1);
      if (elsewhereIndex >= 0 && runSlot!.counter !== null)
        this.runs.slotShards.add(carried!.runId, runSlot!.counter, -1);
      return 'acquired';
    }
    // The job's own condition first: a job already taken says nothing about the run's free slots.
    if (failed.includes(1)) return 'job-taken';
    // The carried slot was taken by another acquire (a dispatch delivered twice) or dropped: the
    // account's shards are where a slot is now.
    if (failed.includes(carryIndex) || failed.includes(elsewhereIndex)) return 'carry-gone';
    // Then the number's: a suppressed or capped number is refused whatever room the run has.
    if (recipientIndex >= 0 && failed.includes(recipientIndex))
      return refusedBy(oldItems[recipientIndex], checks!.nowMs);
    if (failed.includes(0)) return this.counterRefused(runId, counter, oldItems[0], at);
    if (!failed.includes(shardIndex)) return 'paced';
    if (isFenced(oldItems[shardIndex])) this.account.layoutFenced(shard!.max);
    return 'account-full';
  }

  /**
   * The carried slot taken off its released job: its marks, and its place in the live index, go. The
   * condition names the marks the carry says the job has (and none it does not), and the final state
   * and outcome it will be counted with.
   */
  private takeCarryItem(carried: CarriedSlot): TransactItem {
    const { shard, runSlot } = carried;
    if (shard === undefined && runSlot === undefined) throw new Error('a carried slot with no slot');
    return {
      Update: {
        TableName: this.t.name,
        Key: keys.job(carried.runId, carried.jobId),
        UpdateExpression: 'REMOVE carriedShard, carriedSlot, #lrun, #lkey',
        ConditionExpression:
          'attempt = :attempt AND ' +
          (shard === undefined ? 'attribute_not_exists(carriedShard)' : 'carriedShard = :shard') +
          ' AND ' +
          (runSlot === undefined
            ? 'attribute_not_exists(carriedSlot)'
            : 'carriedSlot = :slot AND #status = :to AND outcome = :outcome'),
        ExpressionAttributeNames: { ...LIVE, ...(runSlot ? { '#status': 'status' } : {}) },
        ExpressionAttributeValues: {
          ':attempt': carried.attempt,
          ...(shard === undefined ? {} : { ':shard': shard }),
          ...(runSlot === undefined
            ? {}
            : { ':slot': carriedSlotMark(runSlot.counter), ':to': runSlot.to, ':outcome': runSlot.outcome }),
        },
      },
    };
  }

  async dropCarry(carried: CarriedSlot): Promise<'dropped' | 'gone'> {
    if (carried.shard === undefined && carried.runSlot === undefined) return 'gone';
    const items = [this.takeCarryItem(carried)];
    if (carried.shard !== undefined) items.push(this.account.releaseShardItem(carried.shard));
    const { runSlot } = carried;
    if (runSlot) items.push(this.freeCounterItem(carried.runId, runSlot.counter, runSlot));
    let failed = await this.t.transact(items);
    // Only a counter refused (one reset by hand): the mark goes all the same.
    if (failed.length > 0 && !failed.includes(0)) failed = await this.t.transact([items[0]!]);
    if (failed.length > 0) return 'gone';
    if (runSlot && runSlot.counter !== null) this.runs.slotShards.add(carried.runId, runSlot.counter, -1);
    return 'dropped';
  }

  /**
   * The run's counter freeing a slot: `active` down, and with `final` the lead counted there (the run
   * item's own counts, or a counter's: run-slots.ts); without it the lead is queued again. Conditioned
   * on a slot being held there; the holder's own condition is the guard, in the same transaction.
   */
  private freeCounterItem(
    runId: string,
    slotShard: number | null,
    final: Pick<CarriedRunSlot, 'to' | 'outcome'> | undefined,
  ): TransactItem {
    const onShard = slotShard !== null;
    return {
      Update: {
        TableName: this.t.name,
        Key: onShard ? keys.runSlots(runId, slotShard) : keys.run(runId),
        UpdateExpression:
          final === undefined
            ? onShard
              ? 'SET active = active - :one'
              : 'SET active = active - :one, queued = queued + :one'
            : `SET active = active - :one, ${finalCounts(onShard)}`,
        // A requeue also needs a run that is not canceled (the counter's copy of its control says the
        // same): no lead may wait in a canceled run.
        ConditionExpression: `active > :zero${final === undefined ? ' AND #control <> :canceled' : ''}`,
        ExpressionAttributeNames:
          final === undefined ? { '#control': 'control' } : finalCountNames(onShard, final),
        ExpressionAttributeValues: {
          ':one': 1,
          ':zero': 0,
          ...(final === undefined ? { ':canceled': 'canceled' } : {}),
        },
      },
    };
  }

  /**
   * The counter's share of an acquire that takes the slot carried on it: `active` stays (the slot goes
   * from one holder to the next), the released lead is counted final, and the run must be one that
   * takes slots, as any acquire's (not the cap: the slot is already counted under it).
   */
  private carriedCounterItem(
    runId: string,
    counter: SlotCounter,
    final: CarriedRunSlot,
    at: string,
  ): TransactItem {
    const onShard = counter.shard !== null;
    return {
      Update: {
        TableName: this.t.name,
        Key: onShard ? keys.runSlots(runId, counter.shard!) : keys.run(runId),
        UpdateExpression: onShard
          ? `SET ${finalCounts(true)}`
          : `SET queued = queued - :one, ${finalCounts(false)}`,
        ConditionExpression: onShard
          ? `#control = :running AND ${DIALABLE}`
          : `#control = :running AND attribute_not_exists(slotShards) AND ${DIALABLE}`,
        ExpressionAttributeNames: { '#control': 'control', ...finalCountNames(onShard, final) },
        ExpressionAttributeValues: { ':one': 1, ':zero': 0, ':running': 'running', ':now': Date.parse(at) },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }

  /**
   * Why a counter refused: the run takes no slot (not running, not started, expired: `no-slot`), or
   * this counter of several is full (`counter-full`, and what it holds is remembered).
   */
  private counterRefused(
    runId: string,
    counter: SlotCounter,
    old: Record<string, { N?: string; S?: string }> | undefined,
    at: string,
  ): 'no-slot' | 'counter-full' {
    if (counter.shard === null || !old || !isDialable(old, at)) return 'no-slot';
    this.runs.slotShards.note(runId, counter.shard, Number(old.active?.N));
    return 'counter-full';
  }

  /** The counter's share of an acquire of `n` slots (a wave's `n` fit under `cap`: room = cap - n). */
  private counterItem(
    runId: string,
    counter: SlotCounter,
    at: string,
    n: number,
    cap?: number,
  ): TransactItem {
    const wave = cap !== undefined;
    if (counter.shard === null) {
      return {
        Update: {
          TableName: this.t.name,
          Key: keys.run(runId),
          UpdateExpression: 'SET active = active + :n, queued = queued - :n',
          // Never on the run item of a run whose cap is split over counters: its slots are theirs.
          ConditionExpression:
            `#control = :running AND attribute_not_exists(slotShards) AND ${DIALABLE} AND ` +
            (wave ? 'concurrency = :cap AND active <= :room' : 'active < concurrency'),
          ExpressionAttributeNames: { '#control': 'control' },
          ExpressionAttributeValues: {
            ':n': n,
            ':running': 'running',
            ':now': Date.parse(at),
            ...(wave ? { ':cap': cap, ':room': cap - n } : {}),
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      };
    }
    // A counter's acquire leaves the run item alone: its lead stays in the run's `queued` while live
    // (run-slots.ts), and is taken off it by the release that makes it final.
    return {
      Update: {
        TableName: this.t.name,
        Key: keys.runSlots(runId, counter.shard),
        UpdateExpression: 'SET active = active + :n',
        ConditionExpression: `#control = :running AND ${DIALABLE} AND active <= :room`,
        ExpressionAttributeNames: { '#control': 'control' },
        ExpressionAttributeValues: {
          ':n': n,
          ':running': 'running',
          ':now': Date.parse(at),
          ':room': (cap ?? counter.cap) - n,
        },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }

  /**
   * A wave: up to `jobs.length` slots in one transaction per counter (the counter's `active` grows by
   * the wave's size under its cap, each job becomes its own holder, and with an account cap each
   * job's first shard takes its share), so that a newly free cap fills in a few round trips instead
   * of one per slot. Several acquires in flight on one counter would not be faster on AWS: they touch
   * the same item, and overlapping transactions on an item cancel each other; a run whose cap is
   * split over counters fills them side by side. A job already taken leaves the wave, which is tried
   * again without it; a counter with fewer free slots than the wave (another dispatcher filled some)
   * is tried again with as many as are free.
   */
  async acquireSlots(
    runId: string,
    concurrency: number,
    jobs: QueuedJob[],
    at: string,
    account?: Pick<AccountLimits, 'maxConcurrentCalls'>,
    checks?: RecipientChecks,
  ): Promise<WaveResult> {
    const max = account?.maxConcurrentCalls;
    const layout = max === undefined ? undefined : await this.account.layoutFor(max);
    const limit = maxWave(layout !== undefined, checks);
    // With an account cap: the room on its shards, read once and kept as this call's waves take it
    // (or find it taken), so that waves write only to shards with room.
    const [shards, room] = await Promise.all([
      this.runs.slotShardsOf(runId),
      max !== undefined && layout ? this.account.shardRoom(max, layout, jobs.length) : undefined,
    ]);
    const shardRoom = max !== undefined && layout && room ? { max, layout, room } : undefined;
    if (shards.length === 0) {
      const first = waveOf(jobs, limit, checks);
      const { stop, ...result } = await this.waveOn(
        runId,
        { ...RUN_COUNTER, cap: concurrency },
        first.wave,
        at,
        shardRoom,
        checks,
      );
      result.left.push(...first.left);
      return stop === undefined ? result : { ...result, stop: stop === 'no-dial' ? 'no-slot' : stop };
    }
    const result: WaveResult = { acquired: [], taken: [], left: [], suppressed: [], capped: [] };
    // Dispatchers filling the same run at once read the same first queued jobs. Each starts at a
    // place of its own in them, and takes the counters in an order of its own, so that their
    // transactions meet on few items (transactions that overlap on an item cancel each other).
    let pending = rotate(jobs, Math.floor(this.t.random() * jobs.length));
    // Each round gives each counter with room (as last seen) a wave of its own, side by side; a
    // counter that had less room than thought says how much it has, for the next round.
    for (let round = 0; pending.length > 0 && round < 3; round++) {
      const known = this.runs.slotShards.get(runId) ?? shards;
      const waves: { counter: SlotCounter & { cap: number }; jobs: QueuedJob[] }[] = [];
      let rest = pending;
      for (const shard of rotate([...known], Math.floor(this.t.random() * known.length))) {
        const room = Math.min(shard.cap - shard.active, limit);
        if (room <= 0 || rest.length === 0) continue;
        const { wave, left } = waveOf(rest, room, checks);
        waves.push({ counter: { shard: shard.shard, cap: shard.cap }, jobs: wave });
        rest = left;
      }
      if (waves.length === 0) break;
      // Settled, not all-or-nothing: a wave that failed must not hide the slots the others took. Side
      // by side without an account cap; one after another with it, as every wave then writes the same
      // few account shards, and side by side they would only cancel each other.
      const take = ({ counter, jobs: wave }: (typeof waves)[number]) =>
        this.waveOn(runId, counter, wave, at, shardRoom, checks);
      const outcomes = shardRoom
        ? await sequentially(waves.map((wave) => () => take(wave)))
        : await Promise.allSettled(waves.map(take));
      pending = rest;
      const settled = outcomes.flatMap((outcome, index) => {
        if (outcome.status === 'fulfilled') return [outcome.value];
        result.failure ??= outcome.reason;
        result.left.push(...waves[index]!.jobs);
        return [];
      });
      if (result.failure !== undefined) {
        for (const wave of settled) {
          result.acquired.push(...wave.acquired);
          result.taken.push(...wave.taken);
          result.suppressed.push(...wave.suppressed);
          result.capped.push(...wave.capped);
          result.left.push(...wave.left);
        }
        result.left.push(...pending);
        return result;
      }
      for (const wave of settled) {
        result.acquired.push(...wave.acquired);
        result.taken.push(...wave.taken);
        result.suppressed.push(...wave.suppressed);
        result.capped.push(...wave.capped);
        if (wave.stop === 'account-full') result.stop = 'account-full';
        if (wave.stop === 'no-dial') {
          // The run takes no slot (paused, canceled, not started, expired): nothing more to try.
          result.left.push(...wave.left, ...pending);
          result.stop = 'no-slot';
          return result;
        }
        pending = [...wave.left, ...pending];
      }
      if (result.stop === 'account-full') break;
    }
    if (pending.length > 0) {
      result.left.push(...pending);
      result.stop ??= 'no-slot';
    }
    return result;
  }

  /**
   * One counter's wave: `wave` (at most its room, no number twice) in one transaction, shrunk and
   * tried again as jobs turn out taken or refused, or the counter has less room. `no-dial`: the run
   * takes no slot at all (the counter's copy of the run's control, start and expiry says so).
   */
  private async waveOn(
    runId: string,
    counter: SlotCounter & { cap: number },
    jobs: QueuedJob[],
    at: string,
    account: { max: number; layout: AccountLayout; room: number[] } | undefined,
    checks: RecipientChecks | undefined,
  ): Promise<Omit<WaveResult, 'stop'> & { stop?: WaveResult['stop'] | 'no-dial' }> {
    const result: Omit<WaveResult, 'stop'> & { stop?: WaveResult['stop'] | 'no-dial' } = {
      acquired: [],
      taken: [],
      left: [],
      suppressed: [],
      capped: [],
    };
    // `pending`: jobs not settled yet; the wave is its first `size` (fewer once the counter is short of room).
    let pending = jobs;
    let size = pending.length;
    // Each round settles a job or shrinks the wave, or ends: at most one round per job and size.
    for (let round = 0; size > 0 && pending.length > 0 && round <= 2 * MAX_WAVE; round++) {
      let wave = pending.slice(0, size);
      let shortOfAccount = false;
      const shardOf = new Map<string, number>();
      const perShard = new Map<number, number>();
      if (account) {
        // As few shards as hold the wave, from a place of this acquirer's own; the jobs past the
        // account's room (as known) stay queued.
        const placed = packOnShards(
          account.room,
          wave.length,
          Math.floor(this.t.random() * account.room.length),
        );
        if (placed.length === 0) {
          result.left.push(...pending);
          result.stop = 'account-full';
          return result;
        }
        shortOfAccount = placed.length < wave.length;
        wave = wave.slice(0, placed.length);
        wave.forEach((job, i) => {
          shardOf.set(job.jobId, account.layout.base + placed[i]!);
          perShard.set(placed[i]!, (perShard.get(placed[i]!) ?? 0) + 1);
        });
      }
      const items: TransactItem[] = [
        this.counterItem(runId, counter, at, wave.length, counter.cap),
        ...wave.map((job) => this.takeJobItem(runId, job, at, shardOf.get(job.jobId), counter)),
      ];
      const shardAt = new Map<number, number>();
      for (const [shard, n] of perShard)
        shardAt.set(
          items.push(
            this.account.acquireShardItem(account!.layout.base + shard, account!.layout.caps[shard]!, n),
          ) - 1,
          shard,
        );
      // Each job's recipient item after everything else: index → the job it checks.
      const checkOf = new Map<number, QueuedJob>();
      for (const job of wave) {
        const recipient = recipientCheckItem(this.t.name, job.phone, checks);
        if (recipient) checkOf.set(items.push(recipient) - 1, job);
      }
      // A job (or its number) another acquire is taking at the same moment leaves the wave at once,
      // as one already taken would, instead of the whole wave waiting to retry.
      const { failed, oldItems, contended } = await this.t.transactWithReasons(
        items,
        (index) => (index >= 1 && index <= wave.length) || checkOf.has(index),
      );
      if (contended) {
        const busy = new Set(
          contended.map((index) => (index <= wave.length ? wave[index - 1] : checkOf.get(index))),
        );
        result.left.push(...wave.filter((job) => busy.has(job)));
        pending = pending.filter((job) => !busy.has(job));
        size = Math.min(size, pending.length);
        continue;
      }
      if (failed.length === 0) {
        for (const [shard, n] of perShard) account!.room[shard]! -= n;
        for (const job of wave) {
          job.slotShard = counter.shard;
          const shard = shardOf.get(job.jobId);
          if (shard !== undefined) job.accountShard = shard;
        }
        result.acquired.push(...wave);
        pending = pending.slice(wave.length);
        if (counter.shard !== null) this.runs.slotShards.add(runId, counter.shard, wave.length);
        // The counter had room for more than the account: the rest are the account's to refuse.
        if (shortOfAccount) {
          size -= wave.length;
          continue;
        }
        break;
      }
      const taken = new Set(
        failed.filter((index) => index >= 1 && index <= wave.length).map((i) => wave[i - 1]),
      );
      // A job taken by another dispatcher is not this wave's to judge; the others' numbers are.
      const refused = new Map<QueuedJob, 'suppressed' | 'capped'>();
      for (const index of failed) {
        const job = checkOf.get(index);
        if (job && !taken.has(job) && !refused.has(job))
          refused.set(
            job,
            refusedBy(oldItems[index], checks!.nowMs) === 'suppressed' ? 'suppressed' : 'capped',
          );
      }
      if (taken.size > 0 || refused.size > 0) {
        result.taken.push(...wave.filter((job) => taken.has(job)));
        for (const [job, kind] of refused) result[kind].push(job);
        pending = pending.filter((job) => !taken.has(job) && !refused.has(job));
        size = Math.min(size, pending.length);
        continue;
      }
      if (failed.includes(0)) {
        const old = oldItems[0];
        if (!old || !isDialable(old, at) || old.slotShards !== undefined) {
          result.left.push(...pending);
          result.stop = counter.shard === null ? 'no-slot' : 'no-dial';
          return result;
        }
        const held = Number(old.active?.N);
        if (counter.shard !== null) this.runs.slotShards.note(runId, counter.shard, held);
        const free = Number(counter.shard === null ? old.concurrency?.N : counter.cap) - held;
        size = Number.isFinite(free) ? Math.max(0, Math.min(free, wave.length - 1)) : 0;
        continue;
      }
      // A shard had less room than known (others took it since the read): what it holds now, from
      // its old image, and the wave placed again.
      const full = failed.filter((index) => shardAt.has(index));
      if (account && full.length > 0) {
        for (const index of full) {
          const shard = shardAt.get(index)!;
          const old = oldItems[index];
          if (isFenced(old)) this.account.layoutFenced(account.max);
          const held = Number(old?.active?.N);
          account.room[shard] = Number.isFinite(held) ? Math.max(0, account.layout.caps[shard]! - held) : 0;
        }
        // The others read with room may have been filled since as well: read before writing again.
        await this.account.rereadRoom(account.max, account.layout, account.room);
        continue;
      }
      result.left.push(...pending);
      result.stop = 'account-full';
      return result;
    }
    // Jobs the counter had no room for stay queued.
    if (pending.length > 0) {
      result.left.push(...pending);
      result.stop = 'no-slot';
    }
    return result;
  }

  private takeJobItem(
    runId: string,
    job: QueuedJob,
    at: string,
    shard: number | undefined,
    counter: SlotCounter,
  ): TransactItem {
    const attempt = job.attempt + 1;
    const onShard = counter.shard !== null;
    return {
      Update: {
        TableName: this.t.name,
        Key: keys.job(runId, job.jobId),
        // Leaving the queued index and entering the live one is taking the slot; what described
        // the last attempt goes.
        UpdateExpression:
          'SET #status = :dialing, attempt = :attempt, dialedAt = :at, #lrun = :runId, #lkey = :lkey' +
          (shard === undefined ? '' : ', accountShard = :shard') +
          (onShard ? ', slotShard = :slot' : '') +
          ' REMOVE #qrun, #qkey, notBefore, callSid, outcome, errorCode, answeredAt, answeredBy, endedAt' +
          (shard === undefined ? ', accountShard' : '') +
          (onShard ? '' : ', slotShard'),
        ConditionExpression: '#status = :queued AND attempt = :previous',
        ExpressionAttributeNames: {
          '#status': 'status',
          '#qrun': TABLE_SCHEMA.queuedIndex.partitionKey,
          '#qkey': TABLE_SCHEMA.queuedIndex.sortKey,
          ...LIVE,
        },
        ExpressionAttributeValues: {
          ':dialing': 'dialing',
          ':queued': 'queued',
          ':attempt': attempt,
          ':previous': job.attempt,
          ':at': at,
          ':runId': runId,
          ':lkey': keys.liveKey(at, job.jobId),
          ...(shard === undefined ? {} : { ':shard': shard }),
          ...(onShard ? { ':slot': counter.shard } : {}),
        },
      },
    };
  }

  async recordCallSid(runId: string, jobId: string, attempt: number, callSid: string): Promise<void> {
    // Refused: already saved, or a later attempt: fine either way.
    await this.t.applies(
      new UpdateCommand({
        TableName: this.t.name,
        Key: keys.job(runId, jobId),
        UpdateExpression: 'SET callSid = :sid',
        ConditionExpression: 'attempt = :attempt AND attribute_not_exists(callSid)',
        ExpressionAttributeValues: { ':sid': callSid, ':attempt': attempt },
      }),
    );
  }

  async markCalling(
    runId: string,
    jobId: string,
    attempt: number,
    at: string,
    callSid?: string,
  ): Promise<'applied' | 'stale'> {
    // One plain write on the holder (the job), not a transaction: "answered" moves no slot.
    try {
      await this.t.doc.send(
        new UpdateCommand({
          TableName: this.t.name,
          Key: keys.job(runId, jobId),
          UpdateExpression: `SET #status = :calling, answeredAt = :at${callSid === undefined ? '' : ', callSid = if_not_exists(callSid, :sid)'}`,
          ConditionExpression: 'attempt = :attempt AND #status = :dialing AND attribute_exists(#lrun)',
          ExpressionAttributeNames: { '#status': 'status', '#lrun': LIVE['#lrun'] },
          ExpressionAttributeValues: {
            ':attempt': attempt,
            ':dialing': 'dialing',
            ':calling': 'calling',
            ':at': at,
            ...(callSid === undefined ? {} : { ':sid': callSid }),
          },
        }),
      );
      return 'applied';
    } catch (error) {
      if (isConditionalCheckFailed(error)) return 'stale';
      throw error;
    }
  }

  async recordAnsweredBy(
    runId: string,
    jobId: string,
    attempt: number,
    answeredBy: string,
  ): Promise<'applied' | 'stale'> {
    // One plain write on the holder: this attempt, live, without a verdict yet. A duplicate, a verdict
    // of an earlier attempt or one after the call was settled fails the condition.
    try {
      await this.t.doc.send(
        new UpdateCommand({
          TableName: this.t.name,
          Key: keys.job(runId, jobId),
          UpdateExpression: 'SET answeredBy = :by',
          ConditionExpression:
            'attempt = :attempt AND #status IN (:dialing, :calling) AND attribute_exists(#lrun) AND attribute_not_exists(answeredBy)',
          ExpressionAttributeNames: { '#status': 'status', '#lrun': LIVE['#lrun'] },
          ExpressionAttributeValues: {
            ':by': answeredBy,
            ':attempt': attempt,
            ':dialing': 'dialing',
            ':calling': 'calling',
          },
        }),
      );
      return 'applied';
    } catch (error) {
      if (isConditionalCheckFailed(error)) return 'stale';
      throw error;
    }
  }

  async releaseSlot(release: Release): Promise<ReleaseResult> {
    const { runId, jobId, attempt, from, to, at } = release;
    // Which account shard and which run counter the holder holds is on the job: read it when the
    // caller does not know.
    const job =
      release.accountShard === undefined || release.slotShard === undefined
        ? await this.runs.getJob(runId, jobId)
        : undefined;
    const accountShard =
      release.accountShard === undefined ? (job?.accountShard ?? null) : release.accountShard;
    const slotShard = release.slotShard === undefined ? (job?.slotShard ?? null) : release.slotShard;
    const requeue = to === 'queued';
    // The slot kept on the job for the next acquire (CarriedSlot): no counter is written, and the job
    // stays in the live index, where the reconciler finds a carry nobody took. (A release that claims
    // its call is the reconciler's, which frees its slot.)
    const carry = release.carry === true && !requeue && !release.claimCall;
    const outcome = release.outcome ?? to;
    // What the attempt that just ended left behind is kept (a retry shows why it is waiting).
    const lastAttempt =
      (release.outcome === undefined ? '' : ', outcome = :outcome') +
      (release.errorCode === undefined ? '' : ', errorCode = :code') +
      (release.callSid === undefined ? '' : ', callSid = if_not_exists(callSid, :sid)') +
      // The detection callback's verdict, when it came first, stands: it is this call's.
      (release.answeredBy === undefined ? '' : ', answeredBy = if_not_exists(answeredBy, :by)');
    const carryMarks = carry
      ? `, carriedSlot = :carriedSlot${accountShard === null ? '' : ', carriedShard = :carried'}`
      : '';
    // Out of the live index: the job no longer holds a slot (unless it carries one, above).
    const leaveLive = carry ? ', accountShard, slotShard' : ', #lrun, #lkey, accountShard, slotShard';
    const jobUpdate = requeue
      ? // Back in the queued index, at its not-before time: the next dispatcher finds it when it is due.
        `SET #status = :queued, #qrun = :runId, #qkey = :qkey, endedAt = :at${lastAttempt}` +
        (release.notBefore
          ? `, notBefore = :notBefore REMOVE ${leaveLive.slice(2)}`
          : ` REMOVE notBefore${leaveLive}`)
      : `SET #status = :to, endedAt = :at${lastAttempt}${release.outcome === undefined ? ', outcome = :outcome' : ''}${carryMarks} REMOVE notBefore${leaveLive}`;

    // The counter the slot is on: the run item's own, or one of the run's counters (run-slots.ts).
    const counter = this.freeCounterItem(runId, slotShard, requeue ? undefined : { to, outcome });
    const items: TransactItem[] = [
      counter,
      {
        Update: {
          TableName: this.t.name,
          Key: keys.job(runId, jobId),
          UpdateExpression: jobUpdate,
          // The holder: this attempt, live in the state the caller knows, in the live index, on the
          // counter the release frees.
          ConditionExpression:
            'attempt = :attempt AND #status = :from AND attribute_exists(#lrun) AND ' +
            (slotShard === null ? 'attribute_not_exists(slotShard)' : 'slotShard = :slot'),
          ExpressionAttributeNames: {
            '#status': 'status',
            // A carrying job keeps its live-index key (only the condition names the index).
            ...(carry ? { '#lrun': LIVE['#lrun'] } : LIVE),
            ...(requeue
              ? { '#qrun': TABLE_SCHEMA.queuedIndex.partitionKey, '#qkey': TABLE_SCHEMA.queuedIndex.sortKey }
              : {}),
          },
          ExpressionAttributeValues: {
            ':attempt': attempt,
            ':from': from,
            ':at': at,
            ...(slotShard === null ? {} : { ':slot': slotShard }),
            ...(requeue
              ? {
                  ':queued': 'queued',
                  ':runId': runId,
                  ':qkey': keys.queuedKey(release.notBefore ?? 0, jobId),
                  ...(release.notBefore ? { ':notBefore': release.notBefore } : {}),
                }
              : { ':to': to }),
            ...(release.outcome === undefined && requeue ? {} : { ':outcome': outcome }),
            ...(release.errorCode === undefined ? {} : { ':code': release.errorCode }),
            ...(release.callSid === undefined ? {} : { ':sid': release.callSid }),
            ...(release.answeredBy === undefined ? {} : { ':by': release.answeredBy }),
            ...(carry ? { ':carriedSlot': carriedSlotMark(slotShard) } : {}),
            ...(carry && accountShard !== null ? { ':carried': accountShard } : {}),
          },
        },
      },
    ];
    if (carry) {
      // The counters keep counting the slot, now the job's to hand on: one plain write, on the job.
      const { Update: jobItem } = items[1]!;
      return (await this.t.applies(new UpdateCommand(jobItem!))) ? 'released' : 'stale';
    }
    const shardIndex =
      accountShard === null || carry ? -1 : items.push(this.account.releaseShardItem(accountShard)) - 1;
    if (release.claimCall && release.callSid !== undefined) items.push(this.claimCallItem(release));
    let failed = await this.t.transact(items);
    // The shard counter alone refused (reset by hand): the run's slot must still be freed, or it
    // would leak.
    if (failed.length > 0 && failed.every((index) => index === shardIndex))
      failed = await this.t.transact(items.filter((_, index) => index !== shardIndex));
    if (failed.length === 0) {
      if (slotShard !== null && !carry) this.runs.slotShards.add(runId, slotShard, -1);
      return 'released';
    }
    if (requeue && !failed.includes(1)) {
      // Refused because the run was canceled meanwhile? Then the lead is canceled instead of queued.
      const [run, current] = await Promise.all([this.runs.getRun(runId), this.runs.getJob(runId, jobId)]);
      const holder = current ? holderOf(current) : undefined;
      if (run?.control === 'canceled' && holder?.attempt === attempt && holder.state === from) {
        return this.releaseSlot({
          ...release,
          to: 'canceled',
          outcome: 'canceled',
          accountShard: holder.accountShard ?? null,
          slotShard: holder.slotShard ?? null,
        });
      }
    }
    return 'stale';
  }

  /** The call's claim: written once, by the one release that credits the call to its attempt. */
  private claimCallItem(release: Release): TransactItem {
    const { runId, jobId, attempt, callSid, at } = release;
    return {
      Put: {
        TableName: this.t.name,
        Item: {
          ...keys.callClaim(callSid!),
          runId,
          jobId,
          attempt,
          claimedAt: at,
          // Kept well past any reconciler lookback, then deleted by the table's TTL.
          [TABLE_SCHEMA.timeToLiveAttribute]: Math.floor(Date.parse(at) / 1000) + CALL_CLAIM_TTL_SECONDS,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
  }
}

/** The lead's final counts, on the run item (its `outcomes` map) or on a counter (`outcome:<name>`). */
function finalCounts(onShard: boolean): string {
  return onShard
    ? '#final = if_not_exists(#final, :zero) + :one, #outcome = if_not_exists(#outcome, :zero) + :one'
    : '#final = #final + :one, outcomes.#outcome = if_not_exists(outcomes.#outcome, :zero) + :one';
}

function finalCountNames(
  onShard: boolean,
  final: Pick<CarriedRunSlot, 'to' | 'outcome'>,
): Record<string, string> {
  return { '#final': final.to, '#outcome': onShard ? `${OUTCOME_ATTRIBUTE}${final.outcome}` : final.outcome };
}

/** A job's `carriedSlot` mark: the counter's number, or `run` for the run item's own `active`. */
function carriedSlotMark(counter: number | null): number | string {
  return counter === null ? CARRIED_ON_RUN_ITEM : counter;
}

/** A week: far longer than any call and any reconciler lookback. */
const CALL_CLAIM_TTL_SECONDS = 7 * 24 * 3600;
