// `npm start` as a child process, as a terminal runs it: in its own process group, ready when it
// prints its URLs, stopped with Ctrl-C (SIGINT to the group) and, failing that, killed.

import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Started {
  child: ChildProcess;
  apiUrl: string;
  webhookUrl: string;
  output: () => string;
}

export async function npmStart(env: Record<string, string>, timeoutMs = 90_000): Promise<Started> {
  const child = spawn('npm', ['start'], {
    cwd: REPO,
    env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'WARN', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr!.on('data', (chunk) => {
    output += chunk;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const api = /API:\s+(\S+)/.exec(output);
    const webhook = /Webhook:\s+(\S+)/.exec(output);
    if (api && webhook) return { child, apiUrl: api[1]!, webhookUrl: webhook[1]!, output: () => output };
    if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}):\n${output}`);
    if (Date.now() > deadline) {
      killGroup(child);
      throw new Error(`npm start was not ready in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Ctrl-C to the whole group; npm dies of it at once, the stack stops what it started and says
 * `stopped.`; whatever is left after `graceMs` is killed.
 */
export async function stopNpmStart(started: Started | undefined, graceMs = 15_000): Promise<void> {
  const child = started?.child;
  if (!started || !child?.pid) return;
  try {
    process.kill(-child.pid, 'SIGINT');
  } catch {
    return; // the group is gone already
  }
  const deadline = Date.now() + graceMs;
  while (!started.output().includes('stopped.') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  killGroup(child);
}

function killGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {}
}
