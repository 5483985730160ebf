// (core) What dialgate stores about a run and its jobs, and what a client is shown of a run.

import type { RunView } from './api-schemas.ts';
import type { LeadAttributeValue } from './leads.ts';
import { optionsView, type RunOptions } from './run-options.ts';
import type { JobState, LiveState } from './states.ts';

/** What a run's owner asked for: `running` dials, the others (run controls) do not. */
export type RunControl = 'running' | 'paused' | 'canceled';

/** One held slot: the job (and its attempt) that a live call belongs to. */
export interface Holder {
  attempt: number;
  state: LiveState;
  /** ISO time the slot was taken: how long a slot has been held is what the reconciler judges. */
  since: string;
  /** The account shard counter the same acquire took a slot on (released with this one). */
  accountShard?: number;
  /** The run's slot counter the slot is on, when the run's cap is split over several (else the run's own). */
  slotShard?: number;
  /** The Twilio call this attempt recorded, once known. */
  callSid?: string;
}

/** A run's own record: its settings and counters, one read. The hot paths need nothing more. */
export type RunRecord = Omit<Run, 'holders' | 'carried'>;

/** A lead whose call ended while its job still carries the slot to the next acquire (CarriedSlot). */
export interface CarriedLead {
  to: 'completed' | 'failed' | 'canceled';
  outcome: string;
}

/** The leads whose jobs carry a slot, from the jobs read, in one order whatever the read's. */
export function carriedLeadsOf(jobs: Iterable<Job>): CarriedLead[] {
  const carried: CarriedLead[] = [];
  for (const job of jobs)
    if (
      job.carriedSlot !== undefined &&
      (job.status === 'completed' || job.status === 'failed' || job.status === 'canceled')
    )
      carried.push({ to: job.status, outcome: job.outcome ?? job.status });
  return carried.sort((a, b) => `${a.to}/${a.outcome}`.localeCompare(`${b.to}/${b.outcome}`));
}

export interface Run {
  runId: string;
  createdAt: string;
  concurrency: number;
  control: RunControl;
  /** Leads accepted by POST /runs. */
  totalLeads: number;
  /** Leads turned into jobs by the dispatcher so far (ingestion is asynchronous, via SQS). */
  ingestedLeads: number;
  /** Slots held now; always equal to the number of holders, and never above `concurrency`. */
  active: number;
  /**
   * Who holds the slots: the live jobs themselves (a job holds its slot while `dialing`/`calling`),
   * named by a sparse index, which on AWS may lag a write by a moment, and read from the jobs.
   * Decisions about one holder (a release) read the job itself.
   */
  holders: Record<string, Holder>;
  /**
   * Leads whose call ended while their job still carries its slot to the next acquire, milliseconds:
   * final on their jobs, counted on the run's counters (and off `active`) once the slot is taken or
   * dropped. The view counts them final, so that it adds up to the leads. Absent when there are none.
   */
  carried?: CarriedLead[];
  queued: number;
  completed: number;
  failed: number;
  canceled: number;
  /** Final jobs by Twilio outcome (`completed`, `busy`, `no-answer`, …) or dialgate reason. */
  outcomes: Record<string, number>;
  /** Retries, calling window, caller id, content: the dialer policy the run was created with. */
  options: RunOptions;
  /** Lead chunks accepted so far (POST /runs and every append): the next chunk's number. */
  chunkCount: number;
  /** When `control` last changed. */
  controlAt?: string;
  /** Cancel asked for live calls to be hung up too (`?hangup=true`). */
  hangup?: boolean;
  /** Why the run paused itself, when it did (a person's pause has none). */
  pauseReason?: string;
  /**
   * While a run with `start_at` waits for it: that time (ms since the epoch). No slot can be taken
   * while it is set (the acquire transaction's condition); a dispatcher removes it once it is due.
   */
  scheduledFor?: number;
}

/**
 * What a high-cap run's slot counters hold between them (adapters/dynamo/run-slots.ts): the calls live
 * on them and the leads made final on them. The run's own item counts each of those leads as queued.
 */
export interface SlotCounts {
  active: number;
  completed: number;
  failed: number;
  canceled: number;
  outcomes: Record<string, number>;
}

export const NO_SLOT_COUNTS: SlotCounts = { active: 0, completed: 0, failed: 0, canceled: 0, outcomes: {} };

/** `a` plus `sign` times `b`, count by count. */
export function addSlotCounts(a: SlotCounts, b: SlotCounts, sign: 1 | -1 = 1): SlotCounts {
  const outcomes = { ...a.outcomes };
  for (const [name, n] of Object.entries(b.outcomes)) outcomes[name] = (outcomes[name] ?? 0) + sign * n;
  return {
    active: a.active + sign * b.active,
    completed: a.completed + sign * b.completed,
    failed: a.failed + sign * b.failed,
    canceled: a.canceled + sign * b.canceled,
    outcomes,
  };
}

/** Leads made final on the counters. */
export function finalOnCounters(counts: SlotCounts): number {
  return counts.completed + counts.failed + counts.canceled;
}

/**
 * The run as a whole: its item's counts with its counters' added (their live calls to `active`, their
 * final leads to the final counts and outcomes), and all of those taken off the item's `queued`.
 */
export function withSlotCounts<T extends RunRecord>(run: T, counts: SlotCounts): T {
  const outcomes = { ...run.outcomes };
  for (const [name, n] of Object.entries(counts.outcomes))
    if (n !== 0) outcomes[name] = (outcomes[name] ?? 0) + n;
  return {
    ...run,
    active: run.active + counts.active,
    queued: run.queued - counts.active - finalOnCounters(counts),
    completed: run.completed + counts.completed,
    failed: run.failed + counts.failed,
    canceled: run.canceled + counts.canceled,
    outcomes,
  };
}

export interface Job {
  runId: string;
  jobId: string;
  phone: string;
  attributes: Record<string, LeadAttributeValue>;
  status: JobState;
  /** Calls attempted for this job; a new attempt only after the previous one is settled. */
  attempt: number;
  callSid?: string;
  outcome?: string;
  errorCode?: number;
  queuedAt: string;
  dialedAt?: string;
  answeredAt?: string;
  /** Twilio's AnsweredBy (`human`, `machine_start`, …), when answering-machine detection ran. */
  answeredBy?: string;
  endedAt?: string;
  /** While live with account limits: the account shard counter whose slot it holds. */
  accountShard?: number;
  /** While live in a run whose cap is split over several slot counters: the one whose slot it holds. */
  slotShard?: number;
  /** Released, with its account slot carried for the next acquire (CarriedSlot): the slot's shard. */
  carriedShard?: number;
  /** Released, with its run slot carried for the next acquire (CarriedSlot): the counter (null: the run's own). */
  carriedSlot?: number | null;
  /** While queued: not to be dialed before this time (ms since the epoch): a retry's delay, a closed window. */
  notBefore?: number;
}

/** The slot a job holds, if it is live: its attempt, live state, since when, and its account shard. */
export function holderOf(job: Job): Holder | undefined {
  if (job.status !== 'dialing' && job.status !== 'calling') return undefined;
  return {
    attempt: job.attempt,
    state: job.status,
    since: job.dialedAt ?? job.queuedAt,
    ...(job.accountShard === undefined ? {} : { accountShard: job.accountShard }),
    ...(job.slotShard === undefined ? {} : { slotShard: job.slotShard }),
    ...(job.callSid === undefined ? {} : { callSid: job.callSid }),
  };
}

/** A job as ingestion creates it. */
export interface NewJob {
  jobId: string;
  phone: string;
  attributes: Record<string, LeadAttributeValue>;
  /** Set at ingestion, not carried on the queue: the first dial's earliest time (closed window). */
  notBefore?: number;
  /** Set at ingestion from the lead's `time_zone`, when the run has a calling window. */
  timeZone?: string;
}

/**
 * `canceling`: canceled, but some leads are not final yet (calls ending, queued leads being marked);
 * `completed` and `canceled` are terminal: every lead final and no slot held.
 */
export type RunStatus = 'scheduled' | 'running' | 'paused' | 'canceling' | 'canceled' | 'completed';

/** What a client is shown of a run and of its held slots: the API's schemas (api-schemas.ts) say. */
export type { RunView } from './api-schemas.ts';

export function finishedLeads(run: Pick<Run, 'completed' | 'failed' | 'canceled'>): number {
  return run.completed + run.failed + run.canceled;
}

/**
 * A run is completed when every accepted lead has been ingested and is final; it is derived, not
 * stored, so that no writer has to remember to flip it (and a fast first chunk cannot flip it early).
 * From the run's own counters, control and start: its holders play no part. A running run that waits
 * for its `start_at` is `scheduled` (the write that starts it is a change like any other, so its
 * `run.status_changed` comes from the table's stream like the rest).
 */
export function runStatus(run: Omit<Run, 'holders'>): RunStatus {
  const done = run.ingestedLeads === run.totalLeads && finishedLeads(run) === run.totalLeads;
  if (run.control === 'canceled') return done ? 'canceled' : 'canceling';
  if (done) return 'completed';
  if (run.control === 'running' && run.scheduledFor !== undefined) return 'scheduled';
  return run.control;
}

export function countLive(run: Run): Record<LiveState, number> {
  const live = { dialing: 0, calling: 0 };
  for (const holder of Object.values(run.holders)) live[holder.state] += 1;
  return live;
}

export function toRunView(run: Run): RunView {
  const { dialing, calling } = countLive(run);
  // Leads whose slot is still carried are final on their jobs: counted so here, not yet on the counters.
  const carried = run.carried ?? [];
  const carriedAs = (to: CarriedLead['to']) => carried.filter((lead) => lead.to === to).length;
  const outcomes = { ...run.outcomes };
  for (const lead of carried) outcomes[lead.outcome] = (outcomes[lead.outcome] ?? 0) + 1;
  // A chunk's jobs can be dialed a moment before its counters are added (they are added last, once),
  // so `queued` can be briefly negative: those leads are shown as taken, not as pending, and the
  // view still adds up to total_leads.
  const early = Math.min(0, run.queued);
  return {
    run_id: run.runId,
    status: runStatus(run),
    created_at: run.createdAt,
    total_leads: run.totalLeads,
    concurrency: run.concurrency,
    queued: Math.max(0, run.queued),
    in_progress: dialing + calling,
    dialing,
    calling,
    completed: run.completed + carriedAs('completed'),
    failed: run.failed + carriedAs('failed'),
    canceled: run.canceled + carriedAs('canceled'),
    pending_ingest: Math.max(0, run.totalLeads - run.ingestedLeads + early),
    outcomes,
    live: Object.entries(run.holders)
      .map(([jobId, holder]) => ({
        job_id: jobId,
        attempt: holder.attempt,
        state: holder.state,
        since: holder.since,
      }))
      .sort((a, b) => a.since.localeCompare(b.since) || a.job_id.localeCompare(b.job_id)),
    pause_reason: run.control === 'paused' ? (run.pauseReason ?? null) : null,
    ...optionsView(run.options),
  };
}

/** Job ids are the lead's position in the run, zero-padded so that they sort in dialing order. */
export function jobIdFor(index: number): string {
  return String(index).padStart(6, '0');
}
