// (bench) What a section reports: figures checked against their targets, plus details for the JSON.

import type { MachineState } from './machine.ts';

export const SECTIONS = ['refill', 'utilization', 'ingest', 'scale', 'account', 'cost', 'coldstart'] as const;
export type SectionName = (typeof SECTIONS)[number];

/** What every section that drives the local stack is told by bin/bench.ts. */
export interface StackSectionOptions {
  quick: boolean;
  /** Seeds the Twilio double's call lengths and outcomes. */
  seed: number;
  /** The dispatcher's concurrency (SQS pollers). */
  pollers: number;
  logLevel: string;
  cpus: number;
}

export interface Check {
  /** What is measured, e.g. "refill p50". */
  name: string;
  value: number;
  unit: string;
  /** The target as text (e.g. "≤ 25"); absent for a figure reported without one. */
  target?: string;
  /** Undefined when there is no target. */
  pass?: boolean;
  note?: string;
}

export interface SectionResult {
  section: SectionName;
  /** The section ran to its end (a figure may still miss its target). */
  completed: boolean;
  error?: string;
  startedAt: string;
  durationMs: number;
  quick: boolean;
  /** The commit measured (set by bin/bench.ts), with a mark when lambdas/, lib/ or tools/ had local changes. */
  commit?: string;
  machine?: MachineState;
  checks: Check[];
  notes: string[];
  details: Record<string, unknown>;
}

export function atMost(name: string, value: number, unit: string, limit: number, note?: string): Check {
  return { name, value, unit, target: `≤ ${limit}`, pass: value <= limit, ...(note ? { note } : {}) };
}

export function atLeast(name: string, value: number, unit: string, limit: number, note?: string): Check {
  return { name, value, unit, target: `≥ ${limit}`, pass: value >= limit, ...(note ? { note } : {}) };
}

export function figure(name: string, value: number, unit: string, note?: string): Check {
  return { name, value, unit, ...(note ? { note } : {}) };
}
