// The run's fill lease (lambdas/adapters/dynamo/fill-lease.ts) on DynamoDB Local: one filler at a
// time, and no fill asked for is ever lost. The protocol step by step, then fast-check's interleavings
// of many fillers racing over real HTTP (each request a step of its own), checked by an observer the lease does not know: every ask is
// followed by a pass that starts after it.

import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoFillLease, FILL_LEASE_MS } from '../../lambdas/adapters/dynamo/fill-lease.ts';
import { DynamoTable } from '../../lambdas/adapters/dynamo/table.ts';
import { type TestAws, testAws } from '../support/aws.ts';

const NOW = Date.parse('2026-11-30T10:00:00.000Z');

describe('the fill lease', () => {
  let aws: TestAws;
  let lease: DynamoFillLease;
  beforeAll(async () => {
    aws = await testAws();
    lease = new DynamoFillLease(new DynamoTable(aws.dynamo, { tableName: aws.tableName }));
  });

  it('is held by one filler; another asks it for a pass, which it makes before it gives the lease back', async () => {
    const runId = randomUUID();
    expect(await lease.take(runId, 'message-a', NOW)).toBe('taken');
    expect(await lease.take(runId, 'message-b', NOW + 1)).toBe('asked');
    // Asked meanwhile: kept, fill again.
    expect(await lease.give(runId, 'message-a', NOW + 2)).toBe('asked');
    expect(await lease.take(runId, 'message-c', NOW + 3)).toBe('asked');
    expect(await lease.give(runId, 'message-a', NOW + 4)).toBe('asked');
    // Nothing asked since the last pass: given.
    expect(await lease.give(runId, 'message-a', NOW + 5)).toBe('given');
    expect(await lease.take(runId, 'message-b', NOW + 6)).toBe('taken');
  });

  it("is the retry's of the dispatch that died holding it, and anyone's past its time", async () => {
    const runId = randomUUID();
    expect(await lease.take(runId, 'message-a', NOW)).toBe('taken');
    // The same work message again (its first try died): takes it over at once.
    expect(await lease.take(runId, 'message-a', NOW + 1_000)).toBe('taken');
    expect(await lease.take(runId, 'message-b', NOW + 1_000 + FILL_LEASE_MS)).toBe('asked');
    expect(await lease.take(runId, 'message-b', NOW + 1_001 + FILL_LEASE_MS)).toBe('taken');
    // The old holder, back late, finds it another's: that one fills.
    expect(await lease.give(runId, 'message-a', NOW + 1_002 + FILL_LEASE_MS)).toBe('given');
    expect(await lease.take(runId, 'message-c', NOW + 1_003 + FILL_LEASE_MS)).toBe('asked');
    // Dropped whatever was asked (a new dispatch was sent to go on).
    await lease.drop(runId, 'message-b');
    expect(await lease.take(runId, 'message-c', NOW + 1_004 + FILL_LEASE_MS)).toBe('taken');
  });

  it('loses no ask, whatever the interleaving of fillers taking, asking and giving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 8 }), fc.scheduler(), async (dispatches, scheduler) => {
        const runId = randomUUID();
        // Every request to the table, and its answer, waits for the scheduler: the interleavings
        // include those between one filler's requests (a holder giving the lease back between
        // another's refused take and its ask).
        const table = new DynamoTable(aws.dynamo, { tableName: aws.tableName });
        const send = table.doc.send.bind(table.doc) as (command: unknown) => Promise<unknown>;
        Object.assign(table.doc, {
          send: async (command: { constructor: { name: string } }) => {
            const name = command.constructor.name;
            await scheduler.schedule(Promise.resolve(), `${name} sent`);
            // Its answer too: another filler may go on while it is on its way. Settled first, so that
            // a refusal waiting for its turn is not an unhandled rejection meanwhile.
            const answer = send(command).then(
              (value) => ({ value }),
              (error: unknown) => ({ error }),
            );
            const settled = await scheduler.schedule(answer, `${name} answered`);
            if ('error' in settled) throw settled.error;
            return settled.value;
          },
        });
        const lease = new DynamoFillLease(table);
        // The observer: asks made (each dispatch asks once, before it takes), and the asks each
        // pass had seen when it started. Passes never overlap.
        let asks = 0;
        let seenByLastPass = 0;
        let passing = 0;
        let overlapped = false;
        const pass = async (filler: string) => {
          passing += 1;
          if (passing > 1) overlapped = true;
          seenByLastPass = asks;
          await scheduler.schedule(Promise.resolve(), `${filler} passes`);
          passing -= 1;
        };
        const dispatch = async (i: number) => {
          await scheduler.schedule(Promise.resolve(), `dispatch ${i} arrives`);
          asks += 1;
          const filler = `message-${i}`;
          if ((await lease.take(runId, filler, NOW)) === 'asked') return;
          for (;;) {
            await pass(filler);
            if ((await lease.give(runId, filler, NOW)) === 'given') return;
          }
        };
        await scheduler.waitFor(Promise.all(Array.from({ length: dispatches }, (_, i) => dispatch(i))));
        expect(overlapped, 'two fillers passed at once').toBe(false);
        expect(seenByLastPass, 'a pass started after every ask').toBe(asks);
      }),
      { numRuns: 30 },
    );
  });
});
