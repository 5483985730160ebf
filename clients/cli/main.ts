// (client) `dialgate`, the command-line client of the runs API. Data goes to stdout, messages to
// stderr prefixed `dialgate:`, and the exit code says what went wrong (EXIT, args.ts), so that a script
// can rely on all three. bin/dialgate.ts runs `main` with the real process; tests run it in-process.

import { ApiClient, ApiError, type RunAction, UnreachableError } from './api-client.ts';
import {
  ALLOWED,
  type CliIo,
  type Context,
  EXIT,
  Exit,
  exitCodeFor,
  nonEmpty,
  none,
  one,
  parseCommandLine,
  UsageError,
  type Values,
} from './args.ts';
import { listCalls } from './commands/calls.ts';
import { control, createRun, listRuns, showRun } from './commands/runs.ts';
import {
  addSuppression,
  importSuppressions,
  listSuppressions,
  removeSuppression,
} from './commands/suppressions.ts';
import { watchRun } from './commands/watch.ts';
import { DEFAULT_API_URL, USAGE, VERSION } from './usage.ts';

export { type CliIo, EXIT } from './args.ts';
export { USAGE } from './usage.ts';

export async function main(argv: string[], io: CliIo): Promise<number> {
  const say = (text: string) => io.stderr.write(`dialgate: ${text}\n`);
  try {
    const { values, positionals } = parseCommandLine(argv);
    if (values.version) {
      io.stdout.write(`dialgate ${VERSION}\n`);
      return EXIT.ok;
    }
    if (values.help || positionals.length === 0) {
      (values.help ? io.stdout : io.stderr).write(USAGE);
      return values.help ? EXIT.ok : EXIT.usage;
    }
    const [group, sub, ...rest] = positionals;
    const grouped = group === 'runs' || group === 'suppressions';
    const command = grouped ? `${group} ${sub ?? ''}`.trim() : (group ?? '');
    const args = grouped ? rest : positionals.slice(1);
    if (!(command in ALLOWED)) {
      throw new UsageError(
        group === 'runs' && sub === undefined
          ? 'runs needs a subcommand: create, list, show, watch, pause, resume or cancel'
          : group === 'suppressions' && sub === undefined
            ? 'suppressions needs a subcommand: add, remove, list or import'
            : `unknown command "${command}"`,
      );
    }
    for (const name of Object.keys(values) as (keyof Values)[]) {
      if (name !== 'api' && !ALLOWED[command]!.includes(name))
        throw new UsageError(`${command} takes no --${name}`);
    }
    const client = new ApiClient(
      values.api ?? nonEmpty(io.env.DIALGATE_API_URL) ?? DEFAULT_API_URL,
      nonEmpty(io.env.DIALGATE_API_KEY),
    );
    if (!/^https?:\/\/[^/]/.test(client.baseUrl))
      throw new UsageError(`--api must be an http(s) URL (got "${client.baseUrl}")`);
    const ctx: Context = { client, io, values, say };
    switch (command) {
      case 'runs create':
        return await createRun(ctx, args);
      case 'runs list':
        none(args, command);
        return await listRuns(ctx);
      case 'runs show':
        return await showRun(ctx, one(args, 'runs show <run-id>'));
      case 'runs watch':
        return await watchRun(ctx, one(args, 'runs watch <run-id>'));
      case 'runs pause':
      case 'runs resume':
      case 'runs cancel':
        return await control(ctx, command.slice(5) as RunAction, one(args, `${command} <run-id>`));
      case 'suppressions add':
        return await addSuppression(ctx, args);
      case 'suppressions remove':
        return await removeSuppression(ctx, args);
      case 'suppressions list':
        return await listSuppressions(ctx, args);
      case 'suppressions import':
        return await importSuppressions(ctx, args);
      default:
        return await listCalls(ctx, one(args, 'calls <run-id>'));
    }
  } catch (error) {
    if (error instanceof UsageError) {
      say(`${error.message} (dialgate --help for usage)`);
      return EXIT.usage;
    }
    if (error instanceof Exit) {
      say(error.message);
      return error.code;
    }
    if (error instanceof UnreachableError) {
      say(error.message);
      return EXIT.unreachable;
    }
    if (error instanceof ApiError) {
      say(`${error.message} (HTTP ${error.status} ${error.code})`);
      // A single detail that only repeats the message is not said twice.
      const details =
        error.details.length === 1 && error.message.includes(error.details[0]!.message) ? [] : error.details;
      for (const detail of details)
        say(
          `  ${detail.line ? `line ${detail.line}: ` : ''}${detail.field ? `${detail.field}: ` : ''}${detail.message}`,
        );
      return exitCodeFor(error);
    }
    say(`unexpected error: ${(error as Error).stack ?? error}`);
    return EXIT.apiError;
  }
}
