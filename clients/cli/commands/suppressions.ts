// (client) `suppressions add|remove|list|import`: the numbers dialgate never calls.

import { readFile } from 'node:fs/promises';
import { type Context, EXIT, Exit, format, one, positiveInt, UsageError } from '../args.ts';
import { table } from '../format.ts';
import { humanTime } from '../time.ts';

export async function addSuppression(ctx: Context, args: string[]): Promise<number> {
  const phone = one(args, 'suppressions add <phone> [--reason R] [--expires-at TIME]');
  const expiresAt = ctx.values['expires-at'];
  if (expiresAt !== undefined && !Number.isFinite(Date.parse(expiresAt)))
    throw new UsageError(
      `--expires-at must be an ISO 8601 time such as 2027-01-31T00:00:00Z (got "${expiresAt}")`,
    );
  const stored = await ctx.client.putSuppression(phone, {
    ...(ctx.values.reason === undefined ? {} : { reason: ctx.values.reason }),
    ...(expiresAt === undefined ? {} : { expires_at: new Date(expiresAt).toISOString() }),
  });
  ctx.io.stdout.write(`${stored.phone}\n`);
  ctx.say(
    `suppressed (${stored.reason})${stored.expires_at ? ` until ${humanTime(stored.expires_at, ctx.values.utc === true)}` : ''}`,
  );
  return EXIT.ok;
}

export async function removeSuppression(ctx: Context, args: string[]): Promise<number> {
  const phone = one(args, 'suppressions remove <phone>');
  await ctx.client.deleteSuppression(phone);
  ctx.say('suppression removed: the number may be called again');
  return EXIT.ok;
}

export async function listSuppressions(ctx: Context, args: string[]): Promise<number> {
  if (args.length > 0) throw new UsageError(`suppressions list takes no arguments (got "${args.join(' ')}")`);
  const how = format(ctx.values.format, ['table', 'json'] as const, 'table');
  const limit = positiveInt(ctx.values.limit, 'limit', 100) ?? 50;
  const page = await ctx.client.listSuppressions({
    limit,
    ...(ctx.values.prefix === undefined ? {} : { prefix: ctx.values.prefix }),
    ...(ctx.values.cursor === undefined ? {} : { cursor: ctx.values.cursor }),
  });
  if (how === 'json') {
    ctx.io.stdout.write(
      `${JSON.stringify({ suppressions: page.items, next_cursor: page.nextCursor ?? null }, null, 2)}\n`,
    );
  } else {
    const utc = ctx.values.utc === true;
    ctx.io.stdout.write(
      `${
        page.items.length === 0
          ? 'no suppressions'
          : table(
              ['PHONE', 'REASON', 'RUN', 'SINCE', 'UNTIL'],
              page.items.map((s) => [
                s.phone,
                s.reason,
                s.run_id ?? '-',
                humanTime(s.created_at, utc),
                s.expires_at ? humanTime(s.expires_at, utc) : '-',
              ]),
            )
      }\n`,
    );
    if (page.nextCursor) ctx.say(`more: dialgate suppressions list --cursor ${page.nextCursor}`);
  }
  return EXIT.ok;
}

export async function importSuppressions(ctx: Context, args: string[]): Promise<number> {
  const file = one(args, 'suppressions import <numbers.csv>');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Exit(
      EXIT.invalidInput,
      `cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? 'unreadable')}`,
    );
  }
  const { imported } = await ctx.client.importSuppressions(text);
  ctx.io.stdout.write(`${imported}\n`);
  ctx.say(`${imported} number(s) suppressed from ${file}`);
  return EXIT.ok;
}
