// (adapter) The semaphore (docs/DESIGN.md, invariant 2). Every slot change is one TransactWriteItems
// whose first item is the run (`active`, a small scalar, under the cap) and whose second is the job,
// which is the holder: it enters the sparse live index (`liveRun`) with its attempt in the
// transaction that takes the slot, and leaves it in the one that frees the slot. A release is
// conditioned on the job being that holder, at that attempt and live state: a duplicate or late
// release fails it and changes nothing. With account limits a shard counter (and the pace item) are
// items of the same transaction.

import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { accountShardCaps, accountShardProbes } from '../../core/account-shards.ts';
import { holderOf } from '../../core/model.ts';
import type {
  AccountLimits,
  AcquireResult,
  QueuedJob,
  RecipientChecks,
  Release,
  ReleaseResult,
  RunReader,
  SlotStore,
  WaveResult,
} from '../../core/ports.ts';
import { keys, TABLE_SCHEMA } from '../../definitions/table-schema.ts';
import type { DynamoAccount } from './account.ts';
import { recipientCheckItem, refusedBy } from './recipient-item.ts';
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

const LIVE = {
  '#lrun': TABLE_SCHEMA.liveIndex.partitionKey,
  '#lkey': TABLE_SCHEMA.liveIndex.sortKey,
};

export class DynamoSlots implements SlotStore {
  constructor(
    private readonly t: DynamoTable,
    private readonly runs: RunReader,
    private readonly account: DynamoAccount,
  ) {}

  async acquireSlot(
    runId: string,
    job: QueuedJob,
    at: string,
    account?: AccountLimits,
    checks?: RecipientChecks,
  ): Promise<AcquireResult> {
    const max = account?.maxConcurrentCalls;
    if (max === undefined) return this.tryAcquire(runId, job, at, account, undefined, checks);
    // The job's own shard first, then the next ones: a full shard is not a full account.
    const caps = accountShardCaps(max);
    for (const shard of accountShardProbes(runId, job.jobId, caps.length)) {
      const result = await this.tryAcquire(runId, job, at, account, { shard, cap: caps[shard]! }, checks);
      if (result !== 'account-full') return result;
    }
    return 'account-full';
  }

  private async tryAcquire(
    runId: string,
    job: QueuedJob,
    at: string,
    account: AccountLimits | undefined,
    shard: { shard: number; cap: number } | undefined,
    checks: RecipientChecks | undefined,
  ): Promise<AcquireResult> {
    const items: TransactItem[] = [
      {
        Update: {
          TableName: this.t.name,
          Key: keys.run(runId),
          UpdateExpression: 'SET active = active + :one, queued = queued - :one',
          ConditionExpression: `#control = :running AND active < concurrency AND ${DIALABLE}`,
          ExpressionAttributeNames: { '#control': 'control' },
          ExpressionAttributeValues: { ':one': 1, ':running': 'running', ':now': Date.parse(at) },
        },
      },
      this.takeJobItem(runId, job, at, shard?.shard),
    ];
    const shardIndex = shard ? items.push(this.account.acquireShardItem(shard.shard, shard.cap)) - 1 : -1;
    const cps = account?.callsPerSecond;
    if (account && cps !== undefined)
      items.push(this.account.acquirePaceItem({ ...account, callsPerSecond: cps }));
    const recipient = recipientCheckItem(this.t.name, job.phone, checks);
    const recipientIndex = recipient ? items.push(recipient) - 1 : -1;
    const { failed, oldItems } = await this.t.transactWithReasons(items);
    if (failed.length === 0) return 'acquired';
    // The job's own condition first: a job already taken says nothing about the run's free slots.
    if (failed.includes(1)) return 'job-taken';
    // Then the number's: a suppressed or capped number is refused whatever room the run has.
    if (recipientIndex >= 0 && failed.includes(recipientIndex))
      return refusedBy(oldItems[recipientIndex], checks!.nowMs);
    if (failed.includes(0)) return 'no-slot';
    return failed.includes(shardIndex) ? 'account-full' : 'paced';
  }

  /**
   * A wave: up to `jobs.length` slots in one transaction (the run's `active` grows by the wave's
   * size under `active <= concurrency - size`, each job becomes its own holder, and with an account
   * cap each job's first shard takes its share), so that a newly free cap fills in a few round trips
   * instead of one per slot. Several acquires in flight on one run would not be faster on AWS: they
   * touch the same run item, and overlapping transactions on an item cancel each other. A job
   * already taken leaves the wave, which is tried again without it; a run with fewer free slots
   * than the wave (another dispatcher filled some) is tried again with as many as are free.
   */
  async acquireSlots(
    runId: string,
    concurrency: number,
    jobs: QueuedJob[],
    at: string,
    account?: Pick<AccountLimits, 'maxConcurrentCalls'>,
    checks?: RecipientChecks,
  ): Promise<WaveResult> {
    const caps =
      account?.maxConcurrentCalls === undefined ? undefined : accountShardCaps(account.maxConcurrentCalls);
    const limit = maxWave(caps !== undefined, checks);
    // `pending`: jobs not settled yet; the wave is its first `size` (fewer once the run is short of room).
    const first = waveOf(jobs, limit, checks);
    const result: WaveResult = { acquired: [], taken: [], left: first.left, suppressed: [], capped: [] };
    let pending = first.wave;
    let size = pending.length;
    // Each round settles a job or shrinks the wave, or ends: at most one round per job and size.
    for (let round = 0; size > 0 && pending.length > 0 && round <= 2 * MAX_WAVE; round++) {
      const wave = pending.slice(0, size);
      const shardOf = new Map<string, number>();
      const perShard = new Map<number, number>();
      if (caps) {
        for (const job of wave) {
          const shard = accountShardProbes(runId, job.jobId, caps.length)[0]!;
          shardOf.set(job.jobId, shard);
          perShard.set(shard, (perShard.get(shard) ?? 0) + 1);
        }
      }
      const items: TransactItem[] = [
        {
          Update: {
            TableName: this.t.name,
            Key: keys.run(runId),
            UpdateExpression: 'SET active = active + :n, queued = queued - :n',
            ConditionExpression: `#control = :running AND concurrency = :cap AND active <= :room AND ${DIALABLE}`,
            ExpressionAttributeNames: { '#control': 'control' },
            ExpressionAttributeValues: {
              ':n': wave.length,
              ':running': 'running',
              ':now': Date.parse(at),
              ':cap': concurrency,
              ':room': concurrency - wave.length,
            },
            // How many slots are free, when fewer than the wave: the next try asks for that many.
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          },
        },
        ...wave.map((job) => this.takeJobItem(runId, job, at, shardOf.get(job.jobId))),
        ...[...perShard].map(([shard, n]) => this.account.acquireShardItem(shard, caps![shard]!, n)),
      ];
      // Each job's recipient item after everything else: index → the job it checks.
      const checkOf = new Map<number, QueuedJob>();
      for (const job of wave) {
        const recipient = recipientCheckItem(this.t.name, job.phone, checks);
        if (recipient) checkOf.set(items.push(recipient) - 1, job);
      }
      const { failed, oldItems } = await this.t.transactWithReasons(items);
      if (failed.length === 0) {
        result.acquired.push(...wave);
        pending = pending.slice(wave.length);
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
        const dialable =
          old?.control?.S === 'running' &&
          old.scheduledFor === undefined &&
          (old.expiresAtMs === undefined || Number(old.expiresAtMs.N) > Date.parse(at));
        const free = dialable ? Number(old.concurrency?.N) - Number(old.active?.N) : 0;
        size = Number.isFinite(free) ? Math.max(0, Math.min(free, wave.length - 1)) : 0;
        continue;
      }
      // An account shard is full: the wave's jobs take the one-by-one path, which probes the other
      // shards and registers the run to be woken.
      result.left.unshift(...pending);
      result.stop = 'account-full';
      return result;
    }
    // Jobs the run had no room for stay queued.
    if (pending.length > 0) {
      result.left.unshift(...pending);
      result.stop = 'no-slot';
    }
    return result;
  }

  private takeJobItem(runId: string, job: QueuedJob, at: string, shard: number | undefined): TransactItem {
    const attempt = job.attempt + 1;
    return {
      Update: {
        TableName: this.t.name,
        Key: keys.job(runId, job.jobId),
        // Leaving the queued index and entering the live one is taking the slot; what described
        // the last attempt goes.
        UpdateExpression:
          'SET #status = :dialing, attempt = :attempt, dialedAt = :at, #lrun = :runId, #lkey = :lkey' +
          (shard === undefined ? '' : ', accountShard = :shard') +
          ' REMOVE #qrun, #qkey, notBefore, callSid, outcome, errorCode, answeredAt, answeredBy, endedAt' +
          (shard === undefined ? ', accountShard' : ''),
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
    // Which shard the holder holds is on the job: read it when the caller does not know.
    const accountShard =
      release.accountShard === undefined
        ? ((await this.runs.getJob(runId, jobId))?.accountShard ?? null)
        : release.accountShard;
    const requeue = to === 'queued';
    const outcome = release.outcome ?? to;
    const runUpdate = requeue
      ? 'SET active = active - :one, queued = queued + :one'
      : 'SET active = active - :one, #final = #final + :one, outcomes.#outcome = if_not_exists(outcomes.#outcome, :zero) + :one';
    // What the attempt that just ended left behind is kept (a retry shows why it is waiting).
    const lastAttempt =
      (release.outcome === undefined ? '' : ', outcome = :outcome') +
      (release.errorCode === undefined ? '' : ', errorCode = :code') +
      (release.callSid === undefined ? '' : ', callSid = if_not_exists(callSid, :sid)') +
      // The detection callback's verdict, when it came first, stands: it is this call's.
      (release.answeredBy === undefined ? '' : ', answeredBy = if_not_exists(answeredBy, :by)');
    // Out of the live index: the job no longer holds a slot.
    const leaveLive = ', #lrun, #lkey, accountShard';
    const jobUpdate = requeue
      ? // Back in the queued index, at its not-before time: the next dispatcher finds it when it is due.
        `SET #status = :queued, #qrun = :runId, #qkey = :qkey, endedAt = :at${lastAttempt}` +
        (release.notBefore
          ? `, notBefore = :notBefore REMOVE ${leaveLive.slice(2)}`
          : ` REMOVE notBefore${leaveLive}`)
      : `SET #status = :to, endedAt = :at${lastAttempt}${release.outcome === undefined ? ', outcome = :outcome' : ''} REMOVE notBefore${leaveLive}`;

    const items: TransactItem[] = [
      {
        Update: {
          TableName: this.t.name,
          Key: keys.run(runId),
          UpdateExpression: runUpdate,
          // The job's condition (next item) is the guard; a requeue also needs a run that is not
          // canceled: no lead may wait in a canceled run.
          ConditionExpression: `active > :zero${requeue ? ' AND #control <> :canceled' : ''}`,
          ExpressionAttributeNames: requeue
            ? { '#control': 'control' }
            : { '#final': to, '#outcome': outcome },
          ExpressionAttributeValues: {
            ':one': 1,
            ':zero': 0,
            ...(requeue ? { ':canceled': 'canceled' } : {}),
          },
        },
      },
      {
        Update: {
          TableName: this.t.name,
          Key: keys.job(runId, jobId),
          UpdateExpression: jobUpdate,
          // The holder: this attempt, live in the state the caller knows, in the live index.
          ConditionExpression: 'attempt = :attempt AND #status = :from AND attribute_exists(#lrun)',
          ExpressionAttributeNames: {
            '#status': 'status',
            ...LIVE,
            ...(requeue
              ? { '#qrun': TABLE_SCHEMA.queuedIndex.partitionKey, '#qkey': TABLE_SCHEMA.queuedIndex.sortKey }
              : {}),
          },
          ExpressionAttributeValues: {
            ':attempt': attempt,
            ':from': from,
            ':at': at,
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
          },
        },
      },
    ];
    const shardIndex =
      accountShard === null ? -1 : items.push(this.account.releaseShardItem(accountShard)) - 1;
    if (release.claimCall && release.callSid !== undefined) items.push(this.claimCallItem(release));
    let failed = await this.t.transact(items);
    // The shard counter alone refused (reset by hand): the run's slot must still be freed, or it
    // would leak.
    if (failed.length > 0 && failed.every((index) => index === shardIndex))
      failed = await this.t.transact(items.filter((_, index) => index !== shardIndex));
    if (failed.length === 0) return 'released';
    if (requeue && !failed.includes(1)) {
      // Refused because the run was canceled meanwhile? Then the lead is canceled instead of queued.
      const [run, job] = await Promise.all([this.runs.getRun(runId), this.runs.getJob(runId, jobId)]);
      const holder = job ? holderOf(job) : undefined;
      if (run?.control === 'canceled' && holder?.attempt === attempt && holder.state === from) {
        return this.releaseSlot({
          ...release,
          to: 'canceled',
          outcome: 'canceled',
          accountShard: holder.accountShard ?? null,
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

/** A week: far longer than any call and any reconciler lookback. */
const CALL_CLAIM_TTL_SECONDS = 7 * 24 * 3600;
