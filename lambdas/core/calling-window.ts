// (core) Calling windows: the days and hours, in a time zone, when a lead may be dialed. A window
// governs when a call may start, not how long it may last: a call answered at 19:59 is not cut at 20:00.
// Time zone arithmetic uses Intl (the IANA database that ships with Node), so no library is needed.

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface CallingWindow {
  /** IANA time zone, e.g. `Asia/Jerusalem`; a lead's own `time_zone` attribute overrides it. */
  timeZone: string;
  days: Weekday[];
  /** Local `HH:MM`, inclusive. */
  start: string;
  /** Local `HH:MM` (or `24:00`), exclusive; after `start`: windows do not span midnight. */
  end: string;
}

const CLOCK_TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Minutes since local midnight for `HH:MM` (and `24:00` as an end), or undefined when malformed. */
export function minutesOf(time: string, options: { end?: boolean } = {}): number | undefined {
  if (options.end && time === '24:00') return 24 * 60;
  const match = CLOCK_TIME.exec(time);
  return match ? Number(match[1]) * 60 + Number(match[2]) : undefined;
}

export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

interface LocalTime {
  year: number;
  /** 1–12 */
  month: number;
  day: number;
  weekday: number;
  /** Minutes since local midnight. */
  minutes: number;
  second: number;
}

// Building a formatter is the slow part of Intl; a dispatcher checks many leads in few zones.
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, format);
  }
  return format;
}

const SHORT_WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

function localTime(ms: number, timeZone: string): LocalTime {
  const parts: Record<string, string> = {};
  for (const part of formatter(timeZone).formatToParts(new Date(ms))) parts[part.type] = part.value;
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    weekday: SHORT_WEEKDAYS[parts.weekday ?? ''] ?? 0,
    minutes: Number(parts.hour) * 60 + Number(parts.minute),
    second: Number(parts.second),
  };
}

/** The zone's offset from UTC at `ms`, in ms (positive east of Greenwich). */
function offsetAt(ms: number, timeZone: string): number {
  const t = localTime(ms, timeZone);
  const asUtc = Date.UTC(t.year, t.month - 1, t.day, 0, t.minutes, t.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The instant a local date and time occur in `timeZone` (a time skipped by DST lands just after). */
export function zonedTime(
  date: { year: number; month: number; day: number },
  minutes: number,
  timeZone: string,
): number {
  const guess = Date.UTC(date.year, date.month - 1, date.day, 0, minutes);
  const first = guess - offsetAt(guess, timeZone);
  const second = guess - offsetAt(first, timeZone);
  return second;
}

/** Whether a call may start at `ms` for a lead in `timeZone` under `window`. */
export function isOpen(window: CallingWindow, ms: number, timeZone = window.timeZone): boolean {
  const t = localTime(ms, timeZone);
  const start = minutesOf(window.start) ?? 0;
  const end = minutesOf(window.end, { end: true }) ?? 24 * 60;
  return window.days.includes(WEEKDAYS[t.weekday]!) && t.minutes >= start && t.minutes < end;
}

/**
 * The first instant at or after `ms` when the window is open for a lead in `timeZone`: `ms` itself
 * when it is open now, else the next opening (within the coming week; a window always has a day).
 */
export function nextOpening(window: CallingWindow, ms: number, timeZone = window.timeZone): number {
  if (isOpen(window, ms, timeZone)) return ms;
  const now = localTime(ms, timeZone);
  const start = minutesOf(window.start) ?? 0;
  for (let offset = 0; offset <= 7; offset++) {
    if (!window.days.includes(WEEKDAYS[(now.weekday + offset) % 7]!)) continue;
    const day = new Date(Date.UTC(now.year, now.month - 1, now.day + offset));
    const opening = zonedTime(
      { year: day.getUTCFullYear(), month: day.getUTCMonth() + 1, day: day.getUTCDate() },
      start,
      timeZone,
    );
    if (opening > ms) return opening;
  }
  // Unreachable for a valid window (at least one day); never dial rather than dial at any hour.
  return Number.MAX_SAFE_INTEGER;
}
