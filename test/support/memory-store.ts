// The RunStore port in memory, for the core's unit tests. Every method is one atomic step (nothing
// awaits inside it), and each applies the same conditions the DynamoDB adapter puts on its writes
// (lambdas/adapters/dynamo): an acquire needs a running run under its cap, the job queued at the
// attempt seen and, with an account cap, room on one of the shards it probes; a release needs the job
// to be the holder (live, same attempt and state; and, to requeue, a run that is not canceled);
// "answered" needs a dialing holder; holders are the live jobs; a control change needs one of the allowed controls and a run not
// completed. What the store cannot know it refuses the same way: a duplicate or late write changes
// nothing. Reads return copies, as a database does.

import { windowOf } from '../../lambdas/adapters/dynamo/breaker.ts';
import { maxWave, waveOf } from '../../lambdas/adapters/dynamo/slots.ts';
import {
  accountShardCaps,
  layoutRange,
  packOnShards,
  shardsWithRoom,
} from '../../lambdas/core/account-shards.ts';
import { carriedSlotOf } from '../../lambdas/core/carried-slot.ts';
import {
  carriedLeadsOf,
  type Holder,
  holderOf,
  type Job,
  type NewJob,
  NO_SLOT_COUNTS,
  type Run,
  type RunControl,
  type RunRecord,
  type SlotCounts,
} from '../../lambdas/core/model.ts';
import type {
  AccountLimits,
  AcquireResult,
  BreakerWindow,
  CarriedRunSlot,
  CarriedSlot,
  ControlChange,
  ControlResult,
  CreateRunResult,
  IdempotencyClaim,
  JobPageRequest,
  LeadReservation,
  NewRun,
  Page,
  PageRequest,
  QueuedJob,
  RecipientChecks,
  Release,
  ReleaseResult,
  ReservationResult,
  RunStore,
  Suppression,
  WaveResult,
} from '../../lambdas/core/ports.ts';
import { frequencyWindow, isInForce } from '../../lambdas/core/recipients.ts';
import { keys } from '../../lambdas/definitions/table-schema.ts';
import {
  type Account,
  copy,
  newJob,
  notCompleted,
  pageOf,
  runView,
  type StoredJob,
  type StoredRun,
} from './memory-records.ts';

/** As the adapter's acquire condition: not waiting for its start, and its expiry not come by `nowMs`. */
function dialable(run: StoredRun, nowMs: number): boolean {
  const expiresAt = run.options.expiresAt === undefined ? undefined : Date.parse(run.options.expiresAt);
  return run.scheduledFor === undefined && (expiresAt === undefined || expiresAt > nowMs);
}

export class MemoryRunStore implements RunStore {
  readonly runs = new Map<string, StoredRun>();
  /** Jobs by run, then by job id. */
  readonly jobs = new Map<string, Map<string, StoredJob>>();
  readonly #chunks = new Set<string>();
  readonly #idempotency = new Map<string, { runId: string; fingerprint: string }>();
  readonly #appendKeys = new Map<string, { firstIndex: number; firstChunk: number; fingerprint: string }>();
  #account: Account | undefined;
  /** The suppression list, by E.164 number. */
  readonly suppressions = new Map<string, Suppression>();
  /** Calls per number and frequency window (`<phone>#<window>`), as the adapter's counter items. */
  readonly recipientCalls = new Map<string, number>();

  // RunReader, RunIntakeStore, OpenRunStore

  async createRun(run: NewRun, idempotency?: IdempotencyClaim): Promise<CreateRunResult> {
    const runTaken = this.runs.has(run.runId);
    if (!idempotency) {
      if (runTaken) throw new Error(`run ${run.runId} exists`);
    } else if (runTaken || this.#idempotency.has(idempotency.key)) {
      const claimed = this.#idempotency.get(idempotency.key);
      if (!claimed) throw new Error('idempotency key claimed but not found');
      return { kind: 'existing', ...claimed };
    }
    this.runs.set(run.runId, {
      runId: run.runId,
      createdAt: run.createdAt,
      concurrency: run.concurrency,
      control: 'running',
      totalLeads: run.totalLeads,
      ingestedLeads: 0,
      active: 0,
      holders: {},
      queued: 0,
      completed: 0,
      failed: 0,
      canceled: 0,
      outcomes: {},
      options: copy(run.options ?? {}),
      chunkCount: run.chunkCount ?? 0,
      open: true,
      ...(run.options?.startAt ? { scheduledFor: Date.parse(run.options.startAt) } : {}),
    });
    this.jobs.set(run.runId, new Map());
    if (idempotency) {
      this.#idempotency.set(idempotency.key, { runId: run.runId, fingerprint: idempotency.fingerprint });
    }
    return { kind: 'created' };
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const run = this.runs.get(runId);
    return run ? this.#runView(run) : undefined;
  }

  async getRunControl(runId: string): Promise<RunControl | undefined> {
    return this.runs.get(runId)?.control;
  }

  async getRunRecord(runId: string): Promise<RunRecord | undefined> {
    const run = this.runs.get(runId);
    if (!run) return undefined;
    const { holders: _holders, ...record } = runView(run);
    return record;
  }

  /** The run with its holders: its live jobs, as the adapter's live index lists them. */
  #runView(run: StoredRun): Run {
    const holders: Record<string, Holder> = {};
    const jobs = [...(this.jobs.get(run.runId)?.values() ?? [])];
    for (const job of jobs) {
      const holder = holderOf(job);
      if (holder) holders[job.jobId] = holder;
    }
    const carried = carriedLeadsOf(jobs);
    return { ...runView(run), holders, ...(carried.length > 0 ? { carried } : {}) };
  }

  /** The account's live calls, per shard counter. */
  accountShards(): Map<number, number> {
    return new Map(this.#account?.shards ?? []);
  }

  /** Runs in memory keep one counter: nothing is ever on others. */
  async slotCounts(_runId: string): Promise<SlotCounts> {
    return NO_SLOT_COUNTS;
  }

  async getJob(runId: string, jobId: string): Promise<Job | undefined> {
    const job = this.jobs.get(runId)?.get(jobId);
    if (!job) return undefined;
    const { queuedKey: _key, timeZone: _zone, ...rest } = copy(job);
    return rest;
  }

  async reserveLeads(runId: string, request: LeadReservation): Promise<ReservationResult> {
    const run = this.runs.get(runId);
    if (!run) return { kind: 'not-found' };
    const claimed = request.idempotency && this.#appendKeys.get(`${runId}#${request.idempotency.key}`);
    if (claimed) return { kind: 'existing', ...claimed };
    if (
      run.control === 'canceled' ||
      run.totalLeads > request.maxLeads - request.leads ||
      !notCompleted(run)
    ) {
      return { kind: 'refused', run: this.#runView(run) };
    }
    const reserved = { firstIndex: run.totalLeads, firstChunk: run.chunkCount };
    run.totalLeads += request.leads;
    run.chunkCount += request.chunks;
    if (request.idempotency) {
      this.#appendKeys.set(`${runId}#${request.idempotency.key}`, {
        ...reserved,
        fingerprint: request.idempotency.fingerprint,
      });
    }
    return { kind: 'reserved', ...reserved };
  }

  async listOpenRuns(): Promise<string[]> {
    return [...this.runs.values()]
      .filter((run) => run.open)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
      .map((run) => run.runId);
  }

  async closeRun(runId: string): Promise<'closed' | 'still-open'> {
    const run = this.runs.get(runId);
    if (!run || run.ingestedLeads !== run.totalLeads || run.queued !== 0 || run.active !== 0) {
      return 'still-open';
    }
    run.open = false;
    return 'closed';
  }

  // IngestStore

  async ingestChunk(
    runId: string,
    chunk: number,
    jobs: NewJob[],
    at: string,
  ): Promise<'ingested' | 'duplicate'> {
    const marker = `${runId}#${chunk}`;
    if (this.#chunks.has(marker)) return 'duplicate';
    const run = this.runs.get(runId);
    if (!run) throw new Error(`ingest of chunk ${chunk} failed: run ${runId} not found`);
    const canceled = run.control === 'canceled';
    const runJobs = this.#jobsOf(runId);
    for (const job of jobs) runJobs.set(job.jobId, newJob(runId, job, at, canceled));
    this.#chunks.add(marker);
    run.ingestedLeads += jobs.length;
    if (canceled) {
      run.canceled += jobs.length;
      run.outcomes.canceled = (run.outcomes.canceled ?? 0) + jobs.length;
    } else {
      run.queued += jobs.length;
    }
    return 'ingested';
  }

  // QueueStore, WakeStore

  async nextQueuedJobs(runId: string, limit: number, dueBy?: number): Promise<QueuedJob[]> {
    const due = dueBy === undefined ? undefined : keys.queuedKey(Math.floor(dueBy) + 1, '');
    return this.#queued(runId)
      .filter((job) => due === undefined || job.queuedKey! < due)
      .slice(0, limit)
      .map((job) => {
        const key = job.queuedKey!;
        return {
          jobId: job.jobId,
          phone: job.phone,
          attempt: job.attempt,
          notBefore: Number(key.slice(0, key.indexOf('#'))),
          ...(job.timeZone ? { timeZone: job.timeZone } : {}),
        };
      });
  }

  async earliestQueued(runId: string): Promise<number | undefined> {
    const [first] = await this.nextQueuedJobs(runId, 1);
    return first?.notBefore;
  }

  async deferJob(runId: string, job: QueuedJob, notBefore: number): Promise<void> {
    const stored = this.jobs.get(runId)?.get(job.jobId);
    if (
      stored?.status !== 'queued' ||
      stored.attempt !== job.attempt ||
      stored.queuedKey !== keys.queuedKey(job.notBefore ?? 0, job.jobId)
    ) {
      return;
    }
    stored.queuedKey = keys.queuedKey(notBefore, job.jobId);
    stored.notBefore = notBefore;
  }

  async endQueuedJob(runId: string, job: QueuedJob, outcome: string, at: string): Promise<'ended' | 'stale'> {
    const run = this.runs.get(runId);
    const stored = this.jobs.get(runId)?.get(job.jobId);
    if (!run || stored?.status !== 'queued' || stored.attempt !== job.attempt) return 'stale';
    stored.status = 'failed';
    stored.outcome = outcome;
    stored.endedAt = at;
    delete stored.queuedKey;
    delete stored.notBefore;
    run.queued -= 1;
    run.failed += 1;
    run.outcomes[outcome] = (run.outcomes[outcome] ?? 0) + 1;
    return 'ended';
  }

  async claimWake(runId: string, atMs: number, nowMs: number): Promise<boolean> {
    const run = this.runs.get(runId);
    if (!run) return false;
    if (run.wakeAt !== undefined && run.wakeAt >= nowMs && run.wakeAt <= atMs) return false;
    run.wakeAt = atMs;
    return true;
  }

  async addWaitingRun(runId: string): Promise<void> {
    this.#ensureAccount().waiting.add(runId);
  }

  async hasWaitingRun(except: string): Promise<boolean> {
    return [...(this.#account?.waiting ?? [])].some((runId) => runId !== except);
  }

  async takeWaitingRun(except: string): Promise<string | undefined> {
    const chosen = [...(this.#account?.waiting ?? [])].find((runId) => runId !== except);
    if (chosen !== undefined) this.#account!.waiting.delete(chosen);
    return chosen;
  }

  // SlotStore

  async acquireSlot(
    runId: string,
    job: QueuedJob,
    at: string,
    account?: AccountLimits,
    checks?: RecipientChecks,
  ): Promise<AcquireResult> {
    const max = account?.maxConcurrentCalls;
    // As the adapter: the shard the release freed (a refill's hint) first, then the shards with room.
    // The shards of a fresh table's first layout (a table with no layout before: nothing fenced).
    const caps = max === undefined ? undefined : accountShardCaps(max);
    const base = max === undefined ? 0 : layoutRange(1, max).base;
    // A carried slot (CarriedSlot) first, taken off its released job: when it holds what this acquire
    // takes (as the adapter: an account slot on this layout with an account cap, none without).
    const carried = job.carried;
    if (carried !== undefined) {
      const usable =
        caps === undefined
          ? carried.shard === undefined && carried.runSlot !== undefined
          : carried.shard !== undefined && (caps[carried.shard - base] ?? 0) > 0;
      if (usable) {
        const result = this.#tryAcquire(runId, job, at, account, { carried }, checks);
        if (result !== 'carry-gone') return result;
      } else await this.dropCarry(carried);
      delete job.carried;
    }
    if (caps === undefined) return noCarry(this.#tryAcquire(runId, job, at, account, undefined, checks));
    const hinted = job.accountShard === undefined ? -1 : job.accountShard - base;
    const freed = hinted >= 0 && hinted < caps.length ? [hinted] : [];
    for (const shard of [...freed, ...shardsWithRoom(this.#shardRoom(caps, base), 0)]) {
      const result = noCarry(
        this.#tryAcquire(runId, job, at, account, { shard: base + shard, cap: caps[shard]! }, checks),
      );
      if (result !== 'account-full') return result;
    }
    return 'account-full';
  }

  async acquireSlots(
    runId: string,
    concurrency: number,
    jobs: QueuedJob[],
    at: string,
    account?: Pick<AccountLimits, 'maxConcurrentCalls'>,
    checks?: RecipientChecks,
  ): Promise<WaveResult> {
    // As the adapter's transactions, round by round: a wave packed onto the account's shards with
    // room (the jobs past it wait for a later round); the jobs already taken and the numbers refused
    // leave it; a run with less room than the wave shrinks it. No number twice in a wave.
    const first = waveOf(jobs, maxWave(account?.maxConcurrentCalls !== undefined, checks), checks);
    const result: WaveResult = { acquired: [], taken: [], left: [], suppressed: [], capped: [] };
    const run = this.runs.get(runId);
    const max = account?.maxConcurrentCalls;
    const caps = max === undefined ? undefined : accountShardCaps(max);
    const base = max === undefined ? 0 : layoutRange(1, max).base;
    let pending = first.wave;
    let size = pending.length;
    const finish = (stop?: WaveResult['stop']) => {
      result.left.push(...pending, ...first.left);
      if (stop) result.stop = stop;
      return result;
    };
    while (size > 0 && pending.length > 0) {
      let wave = pending.slice(0, size);
      const placed = caps ? packOnShards(this.#shardRoom(caps, base), wave.length, 0) : [];
      if (caps && placed.length === 0) return finish('account-full');
      const shortOfAccount = caps !== undefined && placed.length < wave.length;
      if (caps) wave = wave.slice(0, placed.length);
      const taken = wave.filter((job) => {
        const stored = this.jobs.get(runId)?.get(job.jobId);
        return stored?.status !== 'queued' || stored.attempt !== job.attempt;
      });
      const suppressed = wave.filter(
        (job) => !taken.includes(job) && !this.#recipientOk(job.phone, checks, 'suppression'),
      );
      const capped = wave.filter(
        (job) =>
          !taken.includes(job) &&
          !suppressed.includes(job) &&
          !this.#recipientOk(job.phone, checks, 'frequency'),
      );
      if (taken.length + suppressed.length + capped.length > 0) {
        result.taken.push(...taken);
        result.suppressed.push(...suppressed);
        result.capped.push(...capped);
        const settled = new Set([...taken, ...suppressed, ...capped]);
        pending = pending.filter((job) => !settled.has(job));
        size = Math.min(size, pending.length);
        continue;
      }
      const dialing = run?.control === 'running' && dialable(run, Date.parse(at));
      if (!run || !dialing) return finish('no-slot');
      if (run.concurrency !== concurrency || run.active > concurrency - wave.length) {
        size = Math.max(0, Math.min(run.concurrency - run.active, wave.length - 1));
        continue;
      }
      for (const [i, job] of wave.entries()) {
        const shard = caps ? placed[i]! : undefined;
        const outcome = this.#tryAcquire(
          runId,
          job,
          at,
          undefined,
          shard === undefined ? undefined : { shard: base + shard, cap: caps![shard]! },
          checks,
        );
        if (outcome !== 'acquired')
          throw new Error(`memory store: a checked wave acquire was refused (${outcome})`);
        result.acquired.push(job);
      }
      pending = pending.slice(wave.length);
      if (!shortOfAccount) break;
      size -= wave.length;
    }
    return finish(pending.length > 0 ? 'no-slot' : undefined);
  }

  #tryAcquire(
    runId: string,
    job: QueuedJob,
    at: string,
    account: AccountLimits | undefined,
    slot: { shard: number; cap: number } | { carried: CarriedSlot } | undefined,
    checks?: RecipientChecks,
  ): AcquireResult | 'carry-gone' {
    const carried = slot && 'carried' in slot ? slot.carried : undefined;
    const shard = slot && 'shard' in slot ? slot : undefined;
    const carrier = carried ? this.#carrier(carried) : undefined;
    const carryOk = !carried || carrier !== undefined;
    // The run's slot carried in this run is taken as it is; one of another run is freed there.
    const runSlot = carried?.runSlot;
    const own = runSlot !== undefined && carried!.runId === runId;
    const elsewhere = runSlot !== undefined && !own ? this.runs.get(carried!.runId) : undefined;
    const attempt = job.attempt + 1;
    const limits = shard || account?.callsPerSecond !== undefined ? this.#ensureAccount() : undefined;
    const run = this.runs.get(runId);
    const stored = this.jobs.get(runId)?.get(job.jobId);
    const runOk =
      run !== undefined &&
      run.control === 'running' &&
      (own || run.active < run.concurrency) &&
      dialable(run, Date.parse(at));
    const jobOk = stored?.status === 'queued' && stored.attempt === job.attempt;
    const shardOk = !shard || (limits!.shards.get(shard.shard) ?? 0) < shard.cap;
    const paceOk = account?.callsPerSecond === undefined || limits!.nextCreateAt <= account.nowMs;
    // The job's own condition first: a job already taken says nothing about the run's free slots.
    if (!jobOk) return 'job-taken';
    if (!carryOk || (runSlot !== undefined && !own && !((elsewhere?.active ?? 0) > 0))) return 'carry-gone';
    // Then the number's, as the adapter orders them.
    if (!this.#recipientOk(job.phone, checks, 'suppression')) return 'suppressed';
    if (!this.#recipientOk(job.phone, checks, 'frequency')) return 'frequency-capped';
    if (!runOk) return 'no-slot';
    if (!shardOk) return 'account-full';
    if (!paceOk) return 'paced';
    if (own) countFinal(run!, runSlot);
    else run!.active += 1;
    if (elsewhere) {
      elsewhere.active -= 1;
      countFinal(elsewhere, runSlot!);
    }
    run!.queued -= 1;
    const { queuedKey: _key, notBefore: _nb, callSid: _sid, outcome: _o, errorCode: _e, ...rest } = stored!;
    const { answeredAt: _a, answeredBy: _by, endedAt: _end, accountShard: _shard, ...kept } = rest;
    this.#jobsOf(runId).set(job.jobId, {
      ...kept,
      status: 'dialing',
      attempt,
      dialedAt: at,
      ...(shard ? { accountShard: shard.shard } : {}),
      ...(carried?.shard === undefined ? {} : { accountShard: carried.shard }),
    });
    if (limits && shard) limits.shards.set(shard.shard, (limits.shards.get(shard.shard) ?? 0) + 1);
    if (carrier) {
      delete carrier.carriedShard;
      delete carrier.carriedSlot;
    }
    if (checks?.frequency) {
      const key = this.#callsKey(job.phone, checks);
      this.recipientCalls.set(key, (this.recipientCalls.get(key) ?? 0) + 1);
    }
    if (limits && account?.callsPerSecond !== undefined) {
      limits.nextCreateAt = account.nowMs + 1000 / account.callsPerSecond;
    }
    // As the adapter says which counter holds the slot: this store never splits a cap, so the run's own.
    job.slotShard = null;
    if (shard) job.accountShard = shard.shard;
    if (carried?.shard !== undefined) job.accountShard = carried.shard;
    return 'acquired';
  }

  async dropCarry(carry: CarriedSlot): Promise<'dropped' | 'gone'> {
    const carrier = this.#carrier(carry);
    if (!carrier) return 'gone';
    delete carrier.carriedShard;
    delete carrier.carriedSlot;
    if (carry.shard !== undefined) {
      const shards = this.#ensureAccount().shards;
      if ((shards.get(carry.shard) ?? 0) > 0) shards.set(carry.shard, shards.get(carry.shard)! - 1);
    }
    const run = this.runs.get(carry.runId);
    if (carry.runSlot && run && run.active > 0) {
      run.active -= 1;
      countFinal(run, carry.runSlot);
    }
    return 'dropped';
  }

  /** The released job that carries this slot: its marks, attempt, state and outcome as the carry says. */
  #carrier(carry: CarriedSlot): Job | undefined {
    const job = this.jobs.get(carry.runId)?.get(carry.jobId);
    const { runSlot } = carry;
    if (!job || job.attempt !== carry.attempt || job.carriedShard !== carry.shard) return undefined;
    if (runSlot === undefined)
      return job.carriedSlot === undefined && carry.shard !== undefined ? job : undefined;
    const same =
      job.carriedSlot === runSlot.counter && job.status === runSlot.to && job.outcome === runSlot.outcome;
    return same ? job : undefined;
  }

  async carriedSlots(runId: string, _everyJob?: boolean): Promise<(CarriedSlot & { endedAt: string })[]> {
    return [...(this.jobs.get(runId)?.values() ?? [])].flatMap((job) => {
      const carry = carriedSlotOf(runId, job);
      return carry ? [{ ...carry, endedAt: job.endedAt! }] : [];
    });
  }

  /** The number passes this check: not suppressed (or expired), or under its cap in this window. */
  #recipientOk(
    phone: string,
    checks: RecipientChecks | undefined,
    check: 'suppression' | 'frequency',
  ): boolean {
    if (!checks) return true;
    if (check === 'suppression') {
      const suppression = this.suppressions.get(phone);
      // As on DynamoDB, where the number's one item holds both: a frequency cap checks it too.
      const checked = checks.suppression || checks.frequency !== undefined;
      return !checked || suppression === undefined || !isInForce(suppression, checks.nowMs);
    }
    return (
      !checks.frequency ||
      (this.recipientCalls.get(this.#callsKey(phone, checks)) ?? 0) < checks.frequency.maxCalls
    );
  }

  #callsKey(phone: string, checks: RecipientChecks): string {
    return `${phone}#${frequencyWindow(checks.nowMs, checks.frequency!.windowMs).index}`;
  }

  async recordCallSid(runId: string, jobId: string, attempt: number, callSid: string): Promise<void> {
    const job = this.jobs.get(runId)?.get(jobId);
    if (job && job.attempt === attempt && job.callSid === undefined) job.callSid = callSid;
  }

  async markCalling(
    runId: string,
    jobId: string,
    attempt: number,
    at: string,
    callSid?: string,
  ): Promise<'applied' | 'stale'> {
    const job = this.jobs.get(runId)?.get(jobId);
    if (job?.attempt !== attempt || job.status !== 'dialing') return 'stale';
    job.status = 'calling';
    job.answeredAt = at;
    if (callSid !== undefined) job.callSid ??= callSid;
    return 'applied';
  }

  // CallClaimStore

  readonly #callClaims = new Set<string>();

  async claimedCalls(callSids: readonly string[]): Promise<Set<string>> {
    return new Set(callSids.filter((sid) => this.#callClaims.has(sid)));
  }

  async recordAnsweredBy(
    runId: string,
    jobId: string,
    attempt: number,
    answeredBy: string,
  ): Promise<'applied' | 'stale'> {
    const job = this.jobs.get(runId)?.get(jobId);
    const holder = job ? holderOf(job) : undefined;
    if (holder?.attempt !== attempt || job!.answeredBy !== undefined) return 'stale';
    job!.answeredBy = answeredBy;
    return 'applied';
  }

  async releaseSlot(release: Release): Promise<ReleaseResult> {
    const { runId, jobId, attempt, from, to, at } = release;
    const run = this.runs.get(runId);
    const job = this.jobs.get(runId)?.get(jobId);
    const holder = job ? holderOf(job) : undefined;
    const accountShard =
      release.accountShard === undefined ? (holder?.accountShard ?? null) : release.accountShard;
    const requeue = to === 'queued';
    const jobOk = holder !== undefined && holder.attempt === attempt && holder.state === from;
    const runOk = run !== undefined && run.active > 0 && (!requeue || run.control !== 'canceled');
    const claimOk =
      !release.claimCall || release.callSid === undefined || !this.#callClaims.has(release.callSid);
    if (!runOk || !jobOk || !claimOk) {
      if (requeue && jobOk && claimOk && run?.control === 'canceled') {
        // Refused because the run was canceled: the lead is canceled instead of queued.
        return this.releaseSlot({
          ...release,
          to: 'canceled',
          outcome: 'canceled',
          accountShard: holder.accountShard ?? null,
        });
      }
      return 'stale';
    }
    // The shard's counter goes down with the run's; one at zero (reset by hand) does not keep the
    // run's slot from being freed.
    const limits = this.#account;
    // Carried: the run and the shard keep counting the slot, which the job now holds for the next
    // acquire; whoever takes or drops it counts the lead final.
    const carry = release.carry === true && !requeue && !release.claimCall;
    if (carry) {
      job!.carriedSlot = release.slotShard ?? null;
      if (accountShard !== null) job!.carriedShard = accountShard;
    } else if (accountShard !== null && limits && (limits.shards.get(accountShard) ?? 0) > 0) {
      limits.shards.set(accountShard, limits.shards.get(accountShard)! - 1);
    }
    if (release.claimCall && release.callSid !== undefined) this.#callClaims.add(release.callSid);
    const outcome = release.outcome ?? to;
    if (requeue) {
      run!.active -= 1;
      run!.queued += 1;
    } else if (!carry) {
      run!.active -= 1;
      countFinal(run!, { to, outcome });
    }
    delete job!.accountShard;
    job!.endedAt = at;
    if (release.outcome !== undefined) job!.outcome = release.outcome;
    if (release.errorCode !== undefined) job!.errorCode = release.errorCode;
    if (release.callSid !== undefined) job!.callSid ??= release.callSid;
    if (release.answeredBy !== undefined) job!.answeredBy ??= release.answeredBy;
    if (requeue) {
      job!.status = 'queued';
      job!.queuedKey = keys.queuedKey(release.notBefore ?? 0, jobId);
      if (release.notBefore) job!.notBefore = release.notBefore;
      else delete job!.notBefore;
    } else {
      job!.status = to;
      job!.outcome = outcome;
      delete job!.notBefore;
    }
    return 'released';
  }

  // RunControlStore

  async setControl(runId: string, change: ControlChange): Promise<ControlResult> {
    const run = this.runs.get(runId);
    if (!run) return { kind: 'not-found' };
    const sameControl = change.ifControlAt === undefined || (run.controlAt ?? null) === change.ifControlAt;
    if (!change.from.includes(run.control) || !notCompleted(run) || !sameControl)
      return { kind: 'refused', run: this.#runView(run) };
    run.control = change.to;
    run.controlAt = change.at;
    if (change.hangup) run.hangup = true;
    if (change.reason === undefined) delete run.pauseReason;
    else run.pauseReason = change.reason;
    return { kind: 'changed', run: this.#runView(run) };
  }

  async cancelQueuedJobs(runId: string, limit: number, at: string): Promise<number> {
    const run = this.runs.get(runId);
    if (run?.control !== 'canceled') return 0;
    return this.#endQueued(run, limit, at, 'canceled', 'canceled');
  }

  async startScheduledRun(runId: string, nowMs: number): Promise<boolean> {
    const run = this.runs.get(runId);
    if (run?.scheduledFor === undefined || run.scheduledFor > nowMs) return false;
    delete run.scheduledFor;
    return true;
  }

  async expireQueuedJobs(runId: string, limit: number, at: string, nowMs: number): Promise<number> {
    const run = this.runs.get(runId);
    const expiresAt = run?.options.expiresAt === undefined ? undefined : Date.parse(run.options.expiresAt);
    if (!run || run.control === 'canceled' || expiresAt === undefined || expiresAt > nowMs) return 0;
    return this.#endQueued(run, limit, at, 'failed', 'expired');
  }

  #endQueued(
    run: StoredRun,
    limit: number,
    at: string,
    state: 'canceled' | 'failed',
    outcome: string,
  ): number {
    const batch = this.#queued(run.runId).slice(0, limit);
    for (const job of batch) {
      job.status = state;
      job.outcome = outcome;
      job.endedAt = at;
      delete job.queuedKey;
      delete job.notBefore;
    }
    run.queued -= batch.length;
    run[state] += batch.length;
    run.outcomes[outcome] = (run.outcomes[outcome] ?? 0) + batch.length;
    return batch.length;
  }

  // BreakerStore: as the adapter's two writes, an attempt's number then its slot (nothing awaits between).

  readonly #breakers = new Map<string, { ended: number; slots: Record<string, number> }>();

  async countEndedAttempt(
    runId: string,
    epoch: string,
    failed: boolean,
    size: number,
  ): Promise<BreakerWindow | undefined> {
    const key = `${runId}#${epoch}`;
    const item = this.#breakers.get(key) ?? { ended: 0, slots: {} };
    this.#breakers.set(key, item);
    item.ended += 1;
    item.slots[String(item.ended % size)] = 2 * item.ended + (failed ? 1 : 0);
    return windowOf(item, size);
  }

  // SuppressionStore

  async putSuppression(suppression: Suppression): Promise<void> {
    this.suppressions.set(suppression.phone, copy(suppression));
  }

  async putSuppressions(suppressions: Suppression[]): Promise<void> {
    for (const suppression of suppressions) this.suppressions.set(suppression.phone, copy(suppression));
  }

  async getSuppression(phone: string, nowMs: number): Promise<Suppression | undefined> {
    const found = this.suppressions.get(phone);
    return found && isInForce(found, nowMs) ? copy(found) : undefined;
  }

  async suppressedAmong(phones: readonly string[], nowMs: number): Promise<Set<string>> {
    return new Set(
      phones.filter((phone) => {
        const found = this.suppressions.get(phone);
        return found !== undefined && isInForce(found, nowMs);
      }),
    );
  }

  async deleteSuppression(phone: string, nowMs: number): Promise<'deleted' | 'absent'> {
    const found = this.suppressions.get(phone);
    if (!found || !isInForce(found, nowMs)) return 'absent';
    this.suppressions.delete(phone);
    return 'deleted';
  }

  async listSuppressions(
    page: PageRequest & { prefix?: string | undefined; nowMs: number },
  ): Promise<Page<Suppression>> {
    const entries = [...this.suppressions.values()]
      .filter(
        (s) => (page.prefix === undefined || s.phone.startsWith(page.prefix)) && isInForce(s, page.nowMs),
      )
      .sort((a, b) => a.phone.localeCompare(b.phone))
      .map((s): [string, Suppression] => [s.phone, copy(s)]);
    return pageOf(entries, page);
  }

  // RunQueries

  async listRuns(page: PageRequest): Promise<Page<Run>> {
    const runs = [...this.runs.values()].sort(
      (a, b) => b.createdAt.localeCompare(a.createdAt) || b.runId.localeCompare(a.runId),
    );
    return pageOf(
      runs.map((run) => [run.runId, this.#runView(run)]),
      page,
    );
  }

  async listJobs(runId: string, page: JobPageRequest): Promise<Page<Job>> {
    const statuses = page.statuses ?? [];
    const outcomes = page.outcomes ?? [];
    const jobs = [...this.#jobsOf(runId).values()]
      .sort((a, b) => a.jobId.localeCompare(b.jobId))
      .filter((job) => statuses.length === 0 || statuses.includes(job.status))
      .filter(
        (job) => outcomes.length === 0 || (job.outcome !== undefined && outcomes.includes(job.outcome)),
      );
    const entries: [string, Job][] = [];
    for (const job of jobs) entries.push([job.jobId, (await this.getJob(runId, job.jobId))!]);
    return pageOf(entries, page);
  }

  #jobsOf(runId: string): Map<string, StoredJob> {
    const jobs = this.jobs.get(runId) ?? new Map<string, StoredJob>();
    this.jobs.set(runId, jobs);
    return jobs;
  }

  /** The run's queued jobs in dialing order: not-before time, then lead order. */
  #queued(runId: string): StoredJob[] {
    return [...this.#jobsOf(runId).values()]
      .filter((job) => job.status === 'queued' && job.queuedKey !== undefined)
      .sort((a, b) => a.queuedKey!.localeCompare(b.queuedKey!));
  }

  /** Each shard's cap less its live calls. */
  #shardRoom(caps: readonly number[], base: number): number[] {
    const shards = this.#ensureAccount().shards;
    return caps.map((cap, shard) => cap - (shards.get(base + shard) ?? 0));
  }

  #ensureAccount(): Account {
    this.#account ??= { shards: new Map(), nextCreateAt: 0, waiting: new Set() };
    return this.#account;
  }
}

/** A lead made final: counted on its run (whose slot it no longer holds). */
function countFinal(run: StoredRun, final: Pick<CarriedRunSlot, 'to' | 'outcome'>): void {
  run[final.to] += 1;
  run.outcomes[final.outcome] = (run.outcomes[final.outcome] ?? 0) + 1;
}

/** An acquire that carried no slot cannot find one gone. */
function noCarry<T>(result: T | 'carry-gone'): T {
  if (result === 'carry-gone') throw new Error('memory store: no carried slot, yet one gone');
  return result;
}
