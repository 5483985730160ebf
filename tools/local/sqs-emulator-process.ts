// The SQS emulator (fauxqs) in a process of its own, so that `npm start` supervises it as it does
// DynamoDB Local's JVM: if it dies, the stack notices and says so. Started by emulators.ts with Node's
// own type stripping (no loader); prints `{"port": N}` on stdout once listening. It stops on SIGTERM,
// SIGINT, or when its parent closes stdin (the parent is gone).

import { startFauxqs } from 'fauxqs';

const options = JSON.parse(process.argv[2] ?? '{}') as { dataDir?: string };
const server = await startFauxqs({
  port: 0,
  logger: false,
  ...(options.dataDir ? { dataDir: options.dataDir } : {}),
});
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  server.stop().finally(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
