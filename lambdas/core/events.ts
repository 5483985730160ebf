// (core) What dialgate tells the outside world, derived from what changed in its table: one
// `call.ended` for each attempt that ends (and for a lead made final without a call), one
// `run.status_changed` for each change of a run's derived status. Pure functions of the item before
// and after a write, so that the stream consumer can be replayed: a redelivered change yields the same
// events with the same ids, and consumers deduplicate on the id.

import { asciiJson } from './ascii-json.ts';
import type { LeadAttributeValue } from './leads.ts';
import {
  addSlotCounts,
  finalOnCounters,
  type Job,
  NO_SLOT_COUNTS,
  type Run,
  type RunStatus,
  runStatus,
  type SlotCounts,
  withSlotCounts,
} from './model.ts';
import { isFinal } from './states.ts';

/** EventBridge `source` of every event, and the prefix of nothing else. */
export const EVENT_SOURCE = 'dialgate';

export const EVENT_TYPES = ['call.ended', 'run.status_changed'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface CallEndedData {
  run_id: string;
  job_id: string;
  /** The attempt that ended (1 for the first call); 0 for a lead made final before any call. */
  attempt: number;
  /** Twilio's final status (`completed`, `busy`, `no-answer`, …) or dialgate's (`rejected`, `canceled`, …). */
  outcome: string;
  /** True when the lead will not be called again. */
  final: boolean;
  /** Twilio's AnsweredBy when answering-machine detection ran; null otherwise. */
  answered_by: string | null;
  /** Null when no call was placed for this attempt. */
  call_sid: string | null;
  /** From answered to ended, as dialgate saw it; 0 for a call never answered. */
  duration_seconds: number;
  ended_at: string;
  /** The lead as posted: its phone and its other fields (a CRM's own ids come back here). */
  lead: Record<string, LeadAttributeValue>;
}

export interface RunCounts {
  total_leads: number;
  pending_ingest: number;
  queued: number;
  /** Dialing or in a call: the slots held. */
  in_progress: number;
  completed: number;
  failed: number;
  canceled: number;
  outcomes: Record<string, number>;
}

export interface RunStatusChangedData {
  run_id: string;
  status: RunStatus;
  /** Null when the run is new. */
  previous_status: RunStatus | null;
  /** Why the run changed status on its own (a pause it made itself); null when a client asked. */
  reason: string | null;
  counts: RunCounts;
}

interface EventOf<T extends EventType, D> {
  /** Stable across redeliveries of the same change: the `webhook-id`, EventBridge's `detail.id`. */
  id: string;
  type: T;
  /** When the change happened (ISO 8601). */
  timestamp: string;
  data: D;
}

export type CallEndedEvent = EventOf<'call.ended', CallEndedData>;
export type RunStatusChangedEvent = EventOf<'run.status_changed', RunStatusChangedData>;
export type DialgateEvent = CallEndedEvent | RunStatusChangedEvent;

/** A run as its own item holds it: counters, control, options (its holders are not on it). */
export type RunState = Omit<Run, 'holders'>;

/** One write to one item: the item before and after it (absent when created or deleted). */
export type Change =
  | { entity: 'job'; before?: Job | undefined; after?: Job | undefined }
  | { entity: 'run'; before?: RunState | undefined; after?: RunState | undefined }
  | { entity: 'slots'; runId: string; before?: SlotCounts | undefined; after?: SlotCounts | undefined };

/**
 * The events one change yields; `at` is when the change was written (the stream record's time), used
 * where the item itself holds no time for it.
 */
export function eventsForChange(change: Change, at: string): DialgateEvent[] {
  if (change.entity === 'job') {
    const event = callEnded(change.before, change.after, at);
    return event ? [event] : [];
  }
  // A counter's change needs the run it is part of (eventsForSlotChange).
  if (change.entity === 'slots') return [];
  const event = runStatusChanged(change.before, change.after, at);
  return event ? [event] : [];
}

/**
 * Whether a change of a run's slot counter can change the run's status: a lead made final on it that
 * leaves no call live on it (the last final lead completes the run; while this counter holds a call,
 * the run is not over). Taking or freeing a slot alone never does.
 */
export function slotChangeMayEndRun(change: Extract<Change, { entity: 'slots' }>): boolean {
  const after = change.after ?? NO_SLOT_COUNTS;
  return after.active === 0 && finalOnCounters(after) !== finalOnCounters(change.before ?? NO_SLOT_COUNTS);
}

/**
 * The status change a counter's change made, given the run as read after it (`run`, its item and all
 * its counters): the run before it is the same less what this change added. Read later than the
 * change, the run may include later changes too; the event then says what the run is now, under the
 * id of that status, which the change that really made it yields as well (consumers deduplicate).
 */
export function eventsForSlotChange(
  change: Extract<Change, { entity: 'slots' }>,
  run: RunState,
  at: string,
): DialgateEvent[] {
  const added = addSlotCounts(change.after ?? NO_SLOT_COUNTS, change.before ?? NO_SLOT_COUNTS, -1);
  const before = withSlotCounts(run, addSlotCounts(NO_SLOT_COUNTS, added, -1));
  const event = runStatusChanged(before, run, at);
  return event ? [event] : [];
}

/** A run item's change seen with its counters as read now (a run whose cap is split over counters). */
export function withCountersOf(
  change: Extract<Change, { entity: 'run' }>,
  counts: SlotCounts,
): Extract<Change, { entity: 'run' }> {
  return {
    entity: 'run',
    before: change.before && withSlotCounts(change.before, counts),
    after: change.after && withSlotCounts(change.after, counts),
  };
}

/**
 * An attempt ended when a live job (dialing or calling) becomes final, or goes back to the queue with
 * an outcome (a retry is due). A live job back in the queue without an outcome never had a call (a
 * Twilio 429, a call Twilio never created): nothing ended, and the next attempt will. A job made
 * final while queued or as it is created (a canceled run) ends the lead without a call.
 */
export function callEnded(
  before: Job | undefined,
  after: Job | undefined,
  at: string,
): CallEndedEvent | undefined {
  if (!after) return undefined;
  const wasLive = before?.status === 'dialing' || before?.status === 'calling';
  const wasFinal = before !== undefined && isFinal(before.status);
  if (wasFinal) return undefined;
  let final: boolean;
  if (isFinal(after.status)) final = true;
  else if (wasLive && after.status === 'queued' && after.outcome !== undefined) final = false;
  else return undefined;

  // Made final without a call of its own: what the job still shows of an earlier attempt is not this.
  const called = wasLive;
  const attempt = after.attempt;
  const endedAt = after.endedAt ?? at;
  return {
    id: `call.ended:${after.runId}:${after.jobId}:${attempt}:${final ? 'final' : 'retry'}`,
    type: 'call.ended',
    timestamp: endedAt,
    data: {
      run_id: after.runId,
      job_id: after.jobId,
      attempt,
      outcome: after.outcome ?? after.status,
      final,
      answered_by: called ? (after.answeredBy ?? null) : null,
      call_sid: called ? (after.callSid ?? null) : null,
      duration_seconds: called ? durationSeconds(after.answeredAt, endedAt) : 0,
      ended_at: endedAt,
      lead: { ...after.attributes, phone: after.phone },
    },
  };
}

function durationSeconds(answeredAt: string | undefined, endedAt: string): number {
  if (!answeredAt) return 0;
  const ms = Date.parse(endedAt) - Date.parse(answeredAt);
  return Number.isFinite(ms) && ms > 0 ? Math.round(ms / 1000) : 0;
}

/**
 * A change of the run's derived status (model.ts `runStatus`), or a new run. The id names the status
 * and the moment of the run control it follows (its creation before any control): a run paused,
 * resumed and paused again yields three events with three ids, a redelivered change the same one.
 */
export function runStatusChanged(
  before: RunState | undefined,
  after: RunState | undefined,
  at: string,
): RunStatusChangedEvent | undefined {
  if (!after) return undefined;
  const status = runStatus(after);
  const previous = before ? runStatus(before) : null;
  if (status === previous) return undefined;
  const epoch = after.controlAt ?? after.createdAt;
  // A control change carries its own time; a change of counts (completed) happens at the write.
  const timestamp =
    before === undefined ? after.createdAt : after.controlAt !== before.controlAt ? epoch : at;
  return {
    id: `run.status_changed:${after.runId}:${status}:${epoch}`,
    type: 'run.status_changed',
    timestamp,
    data: {
      run_id: after.runId,
      status,
      previous_status: previous,
      reason: after.pauseReason ?? null,
      counts: runCounts(after),
    },
  };
}

export function runCounts(run: RunState): RunCounts {
  return {
    total_leads: run.totalLeads,
    pending_ingest: Math.max(0, run.totalLeads - run.ingestedLeads + Math.min(0, run.queued)),
    queued: Math.max(0, run.queued),
    in_progress: run.active,
    completed: run.completed,
    failed: run.failed,
    canceled: run.canceled,
    outcomes: { ...run.outcomes },
  };
}

/** The body a webhook receives (and signs): `{"type","timestamp","data"}`, in ASCII-escaped JSON. */
export function webhookBody(event: DialgateEvent): string {
  return asciiJson({ type: event.type, timestamp: event.timestamp, data: event.data });
}
