// (client) `calls <run-id>`: every page of a run's calls, as a table, CSV or JSON.

import { callsCsv } from '../../console/site/console/csv-export.js';
import type { Call } from '../api-client.ts';
import { type Context, EXIT, format, positiveInt } from '../args.ts';
import { callsTable } from '../format.ts';

export async function listCalls(ctx: Context, runId: string): Promise<number> {
  const how = format(ctx.values.format, ['table', 'csv', 'json'] as const, 'table');
  const limit = positiveInt(ctx.values.limit, 'limit', 10_000_000);
  const calls: Call[] = [];
  let cursor: string | undefined;
  do {
    const page = await ctx.client.listCalls(runId, {
      limit: Math.min(100, limit === undefined ? 100 : limit - calls.length),
      ...(ctx.values.status ? { status: ctx.values.status } : {}),
      ...(ctx.values.outcome ? { outcome: ctx.values.outcome } : {}),
      ...(cursor ? { cursor } : {}),
      revealPhone: ctx.values['reveal-phone'] === true,
    });
    calls.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && (limit === undefined || calls.length < limit));
  if (limit !== undefined) calls.length = Math.min(calls.length, limit);
  if (how === 'json') ctx.io.stdout.write(`${JSON.stringify(calls, null, 2)}\n`);
  else if (how === 'csv') ctx.io.stdout.write(`${callsCsv(calls)}\n`);
  else
    ctx.io.stdout.write(`${calls.length === 0 ? 'no calls' : callsTable(calls, ctx.values.utc === true)}\n`);
  // An export of masked numbers cannot start a run: say how to get them, and how not to need them.
  if (how !== 'table' && calls.some((call) => call.phone.includes('*')))
    ctx.say(
      'phone numbers are masked: add --reveal-phone to export them whole, or start a run of these ' +
        `leads without exporting them: dialgate runs create --from-run ${runId}` +
        (ctx.values.status ? ` --status ${ctx.values.status}` : ''),
    );
  return EXIT.ok;
}
