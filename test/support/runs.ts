// Helpers for driving dialgate over HTTP the way a client does, and reading its table the way an
// auditor would (outside the code under test).

import { type DynamoDBClient, QueryCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';

export function leadsFor(count: number, prefix = '+1415'): { phone: string; name: string }[] {
  return Array.from({ length: count }, (_, i) => ({
    phone: `${prefix}${String(5_000_000 + i).padStart(7, '0')}`,
    name: `Lead ${i}`,
  }));
}

export async function postRun(apiUrl: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(new URL('/runs', apiUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { run_id: string } };
}

export async function getRun(apiUrl: string, runId: string, headers: Record<string, string> = {}) {
  const res = await fetch(new URL(`/runs/${runId}`, apiUrl), { headers });
  return (await res.json()) as Record<string, number | string | Record<string, number>> & { status: string };
}

/** Polls GET /runs/{id} until the run is completed; on each poll checks the API's own live count. */
export async function waitForRunCompleted(
  apiUrl: string,
  runId: string,
  options: { timeoutMs?: number; onPoll?: (view: Awaited<ReturnType<typeof getRun>>) => void } = {},
) {
  const deadline = Date.now() + (options.timeoutMs ?? 150_000);
  for (;;) {
    const view = await getRun(apiUrl, runId);
    options.onPoll?.(view);
    if (view.status === 'completed') return view;
    if (Date.now() > deadline) throw new Error(`run ${runId} not completed: ${JSON.stringify(view)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every item of a run, straight from the table. */
export async function runItems(dynamo: DynamoDBClient, tableName: string, runId: string) {
  const items: Record<string, unknown>[] = [];
  let ExclusiveStartKey: Record<string, never> | undefined;
  do {
    const page = await dynamo.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: `RUN#${runId}` } },
        ...(ExclusiveStartKey ? { ExclusiveStartKey } : {}),
      }),
    );
    items.push(...(page.Items ?? []).map((item) => unmarshall(item)));
    ExclusiveStartKey = page.LastEvaluatedKey as typeof ExclusiveStartKey;
  } while (ExclusiveStartKey);
  const jobs = items.filter((item) => String(item.sk).startsWith('JOB#'));
  // The holders are the live jobs: those in the live index (carrying `liveRun`).
  const holders = Object.fromEntries(
    jobs
      .filter((job) => job.liveRun !== undefined)
      .map((job) => [
        String(job.sk).slice('JOB#'.length),
        { attempt: Number(job.attempt), state: String(job.status), accountShard: job.accountShard },
      ]),
  );
  const run = { ...items.find((item) => item.sk === 'RUN'), holders } as Record<string, unknown> & {
    active: number;
    completed: number;
    holders: Record<string, { attempt: number; state: string; accountShard?: number }>;
  };
  // A high-cap run's slot counters (lambdas/adapters/dynamo/run-slots.ts), in order.
  const slotCounters = items
    .filter((item) => String(item.sk).startsWith('SLOTS#'))
    .map((item) => ({
      shard: Number(item.shard),
      cap: Number(item.cap),
      active: Number(item.active),
      // Leads made final on the counter (a release counts them there, not on the run item).
      completed: Number(item.completed ?? 0),
      failed: Number(item.failed ?? 0),
      canceled: Number(item.canceled ?? 0),
    }))
    .sort((a, b) => a.shard - b.shard);
  return { run, jobs, slotCounters };
}

/** The account's limit items, straight from the table: each shard counter's live calls, and the waiting runs. */
/** A run's slot counters (`SLOTS#<k>`), as the table holds them: each one's `active`. */
export async function runCounters(
  dynamo: DynamoDBClient,
  tableName: string,
  runId: string,
): Promise<number[]> {
  const page = await dynamo.send(
    new QueryCommand({
      TableName: tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :slots)',
      ExpressionAttributeValues: { ':pk': { S: `RUN#${runId}` }, ':slots': { S: 'SLOTS#' } },
      ConsistentRead: true,
    }),
  );
  return (page.Items ?? []).map((raw) => Number(unmarshall(raw).active));
}

export async function accountItems(dynamo: DynamoDBClient, tableName: string, name = 'LIMITS') {
  // The shard counters in use, by shard number, and the calls still live on fenced ones (a layout
  // before the account's current one: account-shards.ts).
  const shards = new Map<number, number>();
  let fenced = 0;
  let waiting: unknown;
  let ExclusiveStartKey: Record<string, never> | undefined;
  do {
    const page = await dynamo.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: 'begins_with(pk, :shard) OR (pk = :account AND sk = :name)',
        ExpressionAttributeValues: {
          ':shard': { S: `ACCOUNT#${name}#` },
          ':account': { S: 'ACCOUNT' },
          ':name': { S: name },
        },
        ...(ExclusiveStartKey ? { ExclusiveStartKey } : {}),
      }),
    );
    for (const raw of page.Items ?? []) {
      const item = unmarshall(raw);
      const pk = String(item.pk);
      if (pk === 'ACCOUNT') waiting = item.waiting;
      else if (item.sk === 'SHARD' && item.fence !== undefined)
        fenced += Number(item.active) - Number(item.fence);
      else if (item.sk === 'SHARD')
        shards.set(Number(pk.slice(pk.lastIndexOf('#') + 1)), Number(item.active));
    }
    ExclusiveStartKey = page.LastEvaluatedKey as typeof ExclusiveStartKey;
  } while (ExclusiveStartKey);
  const active = [...shards.values()].reduce((sum, n) => sum + n, 0) + fenced;
  return { active, shards, fenced, waiting };
}
