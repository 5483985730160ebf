// (adapter) Fault injection for chaos testing, in the spirit of the failure-lambda library: inert
// unless DIALGATE_FAULTS is set. It makes a handler crash before or after any step it takes (so a
// test can stop it between any two writes, as a Lambda timeout or OOM would), and makes DynamoDB
// throttle and cancel transactions on conflict — the two faults DynamoDB Local never produces.

import { type DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { z } from 'zod';
import { mulberry32 } from '../core/random.ts';

const planSchema = z.object({
  seed: z.number().int().default(1),
  /** Per step: the handler dies before the step runs. */
  crashBefore: z.number().min(0).max(1).default(0),
  /** Per step: the step runs (its side effect happens), then the handler dies. */
  crashAfter: z.number().min(0).max(1).default(0),
  /** Per DynamoDB request: a throttling error (retried by the SDK). */
  dynamoThrottle: z.number().min(0).max(1).default(0),
  /** Per transaction: cancelled with TransactionConflict (retried by the store). */
  transactionConflict: z.number().min(0).max(1).default(0),
});
export type FaultPlan = z.infer<typeof planSchema>;

export class InjectedCrash extends Error {
  override readonly name = 'InjectedCrash';
}

export interface FaultInjector {
  plan: FaultPlan;
  /** Wraps every method of `target` so that each call may crash before or after it runs. */
  steps<T extends object>(target: T, label: string): T;
  /** Adds throttling and transaction conflicts to a DynamoDB client. */
  dynamo(client: DynamoDBClient): DynamoDBClient;
  /** What was injected so far, by kind. */
  counts: Record<'crashBefore' | 'crashAfter' | 'dynamoThrottle' | 'transactionConflict', number>;
}

/** The injector DIALGATE_FAULTS describes (JSON, see FaultPlan), or undefined when it is unset. */
export function faultsFromEnv(env: NodeJS.ProcessEnv = process.env): FaultInjector | undefined {
  const raw = env.DIALGATE_FAULTS;
  if (!raw) return undefined;
  return faultInjector(planSchema.parse(JSON.parse(raw)));
}

export function faultInjector(plan: FaultPlan): FaultInjector {
  const random = mulberry32(plan.seed);
  const counts = { crashBefore: 0, crashAfter: 0, dynamoThrottle: 0, transactionConflict: 0 };
  const roll = (kind: keyof typeof counts) => {
    if (plan[kind] > 0 && random() < plan[kind]) {
      counts[kind] += 1;
      return true;
    }
    return false;
  };

  return {
    plan,
    counts,
    steps<T extends object>(target: T, label: string): T {
      return new Proxy(target, {
        get(object, property, receiver) {
          const value = Reflect.get(object, property, receiver);
          if (typeof value !== 'function') return value;
          return async (...args: unknown[]) => {
            const step = `${label}.${String(property)}`;
            if (roll('crashBefore')) throw new InjectedCrash(`injected crash before ${step}`);
            const result = await value.apply(object, args);
            if (roll('crashAfter')) throw new InjectedCrash(`injected crash after ${step}`);
            return result;
          };
        },
      });
    },
    dynamo(client: DynamoDBClient): DynamoDBClient {
      client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'TransactWriteItemsCommand' && roll('transactionConflict')) {
            const input = args.input as { TransactItems?: unknown[] };
            throw new TransactionCanceledException({
              message: 'Transaction cancelled (injected)',
              $metadata: {},
              CancellationReasons: (input.TransactItems ?? []).map((_, i) =>
                i === 0 ? { Code: 'TransactionConflict' } : { Code: 'None' },
              ),
            });
          }
          if (roll('dynamoThrottle')) {
            const error = new Error('Rate of requests exceeds the allowed throughput (injected)');
            error.name = 'ThrottlingException';
            Object.assign(error, { $metadata: { httpStatusCode: 400 }, $fault: 'client' });
            throw error;
          }
          return next(args);
        },
        // Inside the retry middleware, so the SDK retries an injected throttle like a real one.
        { step: 'deserialize', name: 'dialgateFaultInjection' },
      );
      return client;
    },
  };
}

/** This process's injector (read once, at cold start), if DIALGATE_FAULTS asks for one. */
const injector = faultsFromEnv();

/** `target` with crashes injected around each of its steps, when faults are on; else `target`. */
export function withInjectedCrashes<T extends object>(target: T, label: string): T {
  return injector ? injector.steps(target, label) : target;
}

/** `client` with throttling and transaction conflicts injected, when faults are on; else `client`. */
export function withInjectedDynamoFaults(client: DynamoDBClient): DynamoDBClient {
  return injector ? injector.dynamo(client) : client;
}
