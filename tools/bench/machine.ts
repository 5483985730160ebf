// (bench) The machine's state while a section ran: load, this process's CPU and event-loop delay.

import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { round } from './stats.ts';

export interface MachineState {
  cpus: number;
  /** os.loadavg() when the section started and ended (1, 5 and 15 minutes). */
  loadBefore: number[];
  loadAfter: number[];
  /** CPU this process used, as a share of one core over the section's wall time. */
  processCpuCores: number;
  /** How late this process's event loop ran timers: a saturated process shows it first. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
}

/** Watches this process and the machine from now until `end()`. */
export function watchMachine(cpus: number): { end(): MachineState } {
  const loadBefore = loadavg().map((x) => round(x));
  const cpu = process.cpuUsage();
  const started = performance.now();
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  return {
    end() {
      delay.disable();
      const used = process.cpuUsage(cpu);
      const wallMs = performance.now() - started;
      return {
        cpus,
        loadBefore,
        loadAfter: loadavg().map((x) => round(x)),
        processCpuCores: round((used.user + used.system) / 1000 / wallMs),
        eventLoopDelayMs: {
          p50: round(delay.percentile(50) / 1e6),
          p99: round(delay.percentile(99) / 1e6),
          max: round(delay.max / 1e6),
        },
      };
    },
  };
}
