// (adapter) The work queue's message format, checked on the way in: a queue is an input like any other.

import { z } from 'zod';
import type { WorkMessage } from '../core/ports.ts';
import { ID } from '../definitions/formats.ts';

const id = z.string().regex(ID);
const attributeValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);

export const workMessageSchema: z.ZodType<WorkMessage> = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('ingest'),
    runId: id,
    chunk: z.number().int().nonnegative(),
    jobs: z
      .array(
        z.object({ jobId: id, phone: z.string().min(1), attributes: z.record(z.string(), attributeValue) }),
      )
      .min(1),
  }),
  z.object({
    type: z.literal('dispatch'),
    runId: id,
    releasedAt: z.string().datetime().optional(),
    // A hint (the run's next queued jobs as the releaser saw them), checked again by the acquire.
    next: z
      .array(
        z.object({
          jobId: id,
          phone: z.string().min(1),
          attempt: z.number().int().nonnegative(),
          notBefore: z.number().int().nonnegative().optional(),
          timeZone: z.string().min(1).optional(),
          // The slot counter the release freed a slot on: the acquire tries it first.
          slotShard: z.number().int().nonnegative().nullable().optional(),
          // The account shard it freed a slot on: tried first as well.
          accountShard: z.number().int().nonnegative().optional(),
        }),
      )
      .max(10)
      .optional(),
    // An account slot handed to the run (the shard it was freed on, or null when unknown).
    handedShard: z.number().int().nonnegative().nullable().optional(),
    // The slot the release kept on its job (CarriedSlot): taken off it by the acquire.
    carried: z
      .object({
        runId: id,
        jobId: id,
        attempt: z.number().int().positive(),
        shard: z.number().int().nonnegative().optional(),
        runSlot: z
          .object({
            counter: z.number().int().nonnegative().nullable(),
            to: z.enum(['completed', 'failed', 'canceled']),
            outcome: z.string().min(1).max(64),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
  }),
]);
