// The RunStore port in memory, for the core's unit tests. Every method is one atomic step (nothing
// awaits inside it), and each applies the same conditions the DynamoDB adapter puts on its writes
// (lambdas/adapters/dynamo): an acquire needs a running run under its cap, no holder for the job and
// the job queued at the attempt seen; a release needs the holder there with the same attempt and
// state (and, to requeue, a run that is not canceled) and the job live at that attempt; "answered"
// needs a dialing holder; a control change needs one of the allowed controls and a run not
// completed. What the store cannot know it refuses the same way: a duplicate or late write changes
// nothing. Reads return copies, as a database does.

import type { Holder, Job, NewJob, Run } from '../../lambdas/core/model.ts';
import type {
  AccountLimits,
  AcquireResult,
  ControlChange,
  ControlResult,
  CreateRunResult,
  IdempotencyClaim,
  LeadReservation,
  NewRun,
  Page,
  PageRequest,
  QueuedJob,
  Release,
  ReleaseResult,
  ReservationResult,
  RunStore,
} from '../../lambdas/core/ports.ts';
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

export class MemoryRunStore implements RunStore {
  readonly runs = new Map<string, StoredRun>();
  /** Jobs by run, then by job id. */
  readonly jobs = new Map<string, Map<string, StoredJob>>();
  readonly #chunks = new Set<string>();
  readonly #idempotency = new Map<string, { runId: string; fingerprint: string }>();
  readonly #appendKeys = new Map<string, { firstIndex: number; firstChunk: number; fingerprint: string }>();
  #account: Account | undefined;

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
    });
    this.jobs.set(run.runId, new Map());
    if (idempotency) {
      this.#idempotency.set(idempotency.key, { runId: run.runId, fingerprint: idempotency.fingerprint });
    }
    return { kind: 'created' };
  }

  async getRun(runId: string): Promise<Run | undefined> {
    const run = this.runs.get(runId);
    return run ? runView(run) : undefined;
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
      return { kind: 'refused', run: runView(run) };
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

  async takeWaitingRuns(): Promise<string[]> {
    const waiting = [...(this.#account?.waiting ?? [])];
    this.#account?.waiting.clear();
    return waiting;
  }

  // SlotStore

  async acquireSlot(
    runId: string,
    job: QueuedJob,
    at: string,
    account?: AccountLimits,
  ): Promise<AcquireResult> {
    const attempt = job.attempt + 1;
    const withAccount =
      account !== undefined &&
      (account.maxConcurrentCalls !== undefined || account.callsPerSecond !== undefined);
    const limits = withAccount ? this.#ensureAccount() : undefined;
    const run = this.runs.get(runId);
    const stored = this.jobs.get(runId)?.get(job.jobId);
    const runOk =
      run !== undefined &&
      run.control === 'running' &&
      run.active < run.concurrency &&
      run.holders[job.jobId] === undefined;
    const jobOk = stored?.status === 'queued' && stored.attempt === job.attempt;
    const accountOk =
      limits === undefined ||
      ((account?.maxConcurrentCalls === undefined || limits.active < account.maxConcurrentCalls) &&
        (account?.callsPerSecond === undefined || limits.nextCreateAt <= account.nowMs));
    // The job's own condition first: a job already taken says nothing about the run's free slots.
    if (!jobOk) return 'job-taken';
    if (!runOk) return 'no-slot';
    if (!accountOk) {
      return account?.maxConcurrentCalls !== undefined && limits!.active >= account.maxConcurrentCalls
        ? 'account-full'
        : 'paced';
    }
    run!.active += 1;
    run!.queued -= 1;
    run!.holders[job.jobId] = { attempt, state: 'dialing', since: at, ...(limits ? { account: true } : {}) };
    const { queuedKey: _key, notBefore: _nb, callSid: _sid, outcome: _o, errorCode: _e, ...rest } = stored!;
    const { answeredAt: _a, endedAt: _end, ...kept } = rest;
    this.#jobsOf(runId).set(job.jobId, { ...kept, status: 'dialing', attempt, dialedAt: at });
    if (limits && account) {
      limits.active += 1;
      limits.holders.set(`${runId}#${job.jobId}`, { attempt, since: at });
      if (account.callsPerSecond !== undefined) {
        limits.nextCreateAt = account.nowMs + 1000 / account.callsPerSecond;
      }
    }
    return 'acquired';
  }

  async recordCallSid(runId: string, jobId: string, attempt: number, callSid: string): Promise<void> {
    const job = this.jobs.get(runId)?.get(jobId);
    if (job && job.attempt === attempt && job.callSid === undefined) job.callSid = callSid;
  }

  async markCalling(runId: string, jobId: string, attempt: number, at: string): Promise<'applied' | 'stale'> {
    const holder = this.runs.get(runId)?.holders[jobId];
    if (holder?.attempt !== attempt || holder.state !== 'dialing') return 'stale';
    holder.state = 'calling';
    const job = this.jobs.get(runId)?.get(jobId);
    if (job && job.attempt === attempt && job.status === 'dialing') {
      job.status = 'calling';
      job.answeredAt = at;
    }
    return 'applied';
  }

  async releaseSlot(release: Release): Promise<ReleaseResult> {
    const { runId, jobId, attempt, from, to, at } = release;
    const run = this.runs.get(runId);
    const accountSlot = release.accountSlot ?? run?.holders[jobId]?.account === true;
    const requeue = to === 'queued';
    const holder: Holder | undefined = run?.holders[jobId];
    const runOk =
      holder !== undefined &&
      holder.attempt === attempt &&
      holder.state === from &&
      (!requeue || run!.control !== 'canceled');
    const job = this.jobs.get(runId)?.get(jobId);
    const jobOk =
      job !== undefined && job.attempt === attempt && (job.status === 'dialing' || job.status === 'calling');
    if (!runOk || !jobOk) {
      if (
        requeue &&
        !runOk &&
        run?.control === 'canceled' &&
        holder?.attempt === attempt &&
        holder.state === from
      ) {
        // Refused because the run was canceled: the lead is canceled instead of queued.
        return this.releaseSlot({
          ...release,
          to: 'canceled',
          outcome: 'canceled',
          accountSlot: holder.account === true,
        });
      }
      return 'stale';
    }
    // The account's holder is removed with the run's; a missing one (reset by hand) does not keep
    // the run's slot from being freed.
    const limits = this.#account;
    const accountHolder = `${runId}#${jobId}`;
    if (accountSlot && limits?.holders.has(accountHolder)) {
      limits.holders.delete(accountHolder);
      limits.active -= 1;
    }
    const outcome = release.outcome ?? to;
    run!.active -= 1;
    delete run!.holders[jobId];
    if (requeue) run!.queued += 1;
    else {
      run![to] += 1;
      run!.outcomes[outcome] = (run!.outcomes[outcome] ?? 0) + 1;
    }
    job!.endedAt = at;
    if (release.outcome !== undefined) job!.outcome = release.outcome;
    if (release.errorCode !== undefined) job!.errorCode = release.errorCode;
    if (release.callSid !== undefined) job!.callSid ??= release.callSid;
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
    if (!change.from.includes(run.control) || !notCompleted(run))
      return { kind: 'refused', run: runView(run) };
    run.control = change.to;
    run.controlAt = change.at;
    if (change.hangup) run.hangup = true;
    return { kind: 'changed', run: runView(run) };
  }

  async cancelQueuedJobs(runId: string, limit: number, at: string): Promise<number> {
    const run = this.runs.get(runId);
    if (run?.control !== 'canceled') return 0;
    const batch = this.#queued(runId).slice(0, limit);
    for (const job of batch) {
      job.status = 'canceled';
      job.outcome = 'canceled';
      job.endedAt = at;
      delete job.queuedKey;
      delete job.notBefore;
    }
    run.queued -= batch.length;
    run.canceled += batch.length;
    run.outcomes.canceled = (run.outcomes.canceled ?? 0) + batch.length;
    return batch.length;
  }

  // RunQueries

  async listRuns(page: PageRequest): Promise<Page<Run>> {
    const runs = [...this.runs.values()].sort(
      (a, b) => b.createdAt.localeCompare(a.createdAt) || b.runId.localeCompare(a.runId),
    );
    return pageOf(
      runs.map((run) => [run.runId, runView(run)]),
      page,
    );
  }

  async listJobs(runId: string, page: PageRequest & { statuses?: readonly string[] }): Promise<Page<Job>> {
    const statuses = page.statuses ?? [];
    const jobs = [...this.#jobsOf(runId).values()]
      .sort((a, b) => a.jobId.localeCompare(b.jobId))
      .filter((job) => statuses.length === 0 || statuses.includes(job.status));
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

  #ensureAccount(): Account {
    this.#account ??= { active: 0, holders: new Map(), nextCreateAt: 0, waiting: new Set() };
    return this.#account;
  }
}
