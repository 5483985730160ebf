// (client) `runs watch`: polls the run until it ends, as a bar redrawn in place on a terminal and as
// one timestamped line per change otherwise.

import { ApiError, type RunDetails, UnreachableError } from '../api-client.ts';
import { type Context, EXIT, Exit, intervalMs } from '../args.ts';
import { DialRate, done, isEnded, outcomes, progressBar, progressLine } from '../format.ts';
import { humanTime } from '../time.ts';

export async function watchRun(ctx: Context, runId: string): Promise<number> {
  return watch(ctx, runId, intervalMs(ctx));
}

/** Consecutive failed polls tolerated before `runs watch` gives up (a deploy, a blip). */
const WATCH_RETRIES = 5;

export async function watch(ctx: Context, runId: string, interval: number): Promise<number> {
  const out = ctx.io.stdout;
  const tty = out.isTTY === true;
  const color = tty && ctx.io.env.NO_COLOR === undefined && ctx.io.env.TERM !== 'dumb';
  const rate = new DialRate();
  let last = '';
  let failures = 0;
  let run: RunDetails | undefined;
  for (;;) {
    try {
      run = await ctx.client.getRun(runId);
      failures = 0;
    } catch (error) {
      const transient =
        error instanceof UnreachableError ||
        (error instanceof ApiError && (error.status >= 500 || error.status === 429));
      if (!transient || ++failures > WATCH_RETRIES) {
        if (tty && last) out.write('\n');
        throw error;
      }
      ctx.say(`${(error as Error).message}; retrying (${failures}/${WATCH_RETRIES})`);
    }
    if (run) {
      const perMinute = rate.add(run);
      if (tty) {
        const width = Math.max(10, Math.min(40, (out.columns ?? 80) - 60));
        const line = progressBar(run, {
          width,
          color,
          ...(perMinute === undefined ? {} : { ratePerMinute: perMinute }),
        });
        out.write(`\r\x1b[2K${line}`);
        last = line;
      } else {
        const line = progressLine(run);
        if (line !== last)
          out.write(`${humanTime(new Date().toISOString(), ctx.values.utc === true)} ${line}\n`);
        last = line;
      }
      if (isEnded(run)) break;
    }
    if (await sleep(interval, ctx.io.signal)) {
      if (tty) out.write('\n');
      ctx.say(`stopped watching run ${runId} (it goes on)`);
      return EXIT.interrupted;
    }
  }
  if (tty) out.write('\n');
  out.write(
    `run ${run.run_id} ${run.status}: ${done(run)}/${run.total_leads} done; outcomes: ${outcomes(run)}\n`,
  );
  if (run.status !== 'completed') throw new Exit(EXIT.apiError, `run ${run.run_id} ended ${run.status}`);
  return EXIT.ok;
}

/** Resolves true when aborted. */
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(false);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(true);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
