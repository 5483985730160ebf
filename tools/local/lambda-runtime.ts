// The local stand-in for the Lambda runtime: loads a handler from the same entry file the CDK app
// bundles, and invokes it with a Context shaped like Lambda's, under the function's own timeout.
// Every local trigger (API, Function URL, SQS, schedule) goes through `invoke`, so a handler cannot
// tell it is not in AWS except by its endpoints.

import { randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Context } from 'aws-lambda';
import type { FunctionSpec } from '../../lambdas/definitions/resources.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The account id the emulators answer with; nothing checks it, but ARNs need one. */
export const LOCAL_ACCOUNT_ID = '000000000000';

export type LambdaHandler<E, R> = (event: E, context: Context) => Promise<R>;

/** What Lambda reports when a handler outlives its configured timeout. */
export class LambdaTimeoutError extends Error {
  override readonly name = 'LambdaTimeoutError';
}

/** What Lambda's REPORT log line says about an invocation. */
export interface InvocationReport {
  functionName: string;
  requestId: string;
  durationMs: number;
  /** False when the handler threw or timed out. */
  ok: boolean;
}

export interface LocalFunction<E, R> {
  readonly name: string;
  invoke(event: E): Promise<R>;
}

export function lambdaContext(functionName: string, spec: FunctionSpec, deadline: number): Context {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const requestId = randomUUID();
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  const unsupported = () => {
    throw new Error('The callback-style Context methods are not supported; return a promise.');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:${LOCAL_ACCOUNT_ID}:function:${functionName}`,
    memoryLimitInMB: String(spec.memoryMb),
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `${day}/[$LATEST]${requestId.replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

/** A module file and the export to call: Lambda's `Handler`, e.g. a bundle's `index.mjs` and `handler`. */
export interface FunctionSource {
  file: string;
  exportName: string;
}

/**
 * Imports `spec.entry`'s `handler`, or `source` instead (e.g. the bundle `cdk synth` wrote). Call it
 * only after the environment is set: handlers read their configuration once, like a cold start, and
 * the module cache makes this process one "container".
 */
export async function loadFunction<E, R>(
  functionName: string,
  spec: FunctionSpec,
  onReport?: (report: InvocationReport) => void,
  source: FunctionSource = { file: resolve(REPO_ROOT, spec.entry), exportName: 'handler' },
): Promise<LocalFunction<E, R>> {
  const module = (await import(pathToFileURL(source.file).href)) as Record<string, unknown>;
  const handler = module[source.exportName] as LambdaHandler<E, R> | undefined;
  if (typeof handler !== 'function') {
    throw new Error(`${source.file} does not export a function "${source.exportName}"`);
  }
  return {
    name: functionName,
    async invoke(event) {
      const deadline = Date.now() + spec.timeoutSeconds * 1000;
      let timer: NodeJS.Timeout | undefined;
      // Lambda stops waiting at the timeout and reports a failure; the work itself may still have
      // happened (here it even keeps running), which is exactly what callers must be ready for.
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new LambdaTimeoutError(`${functionName}: task timed out after ${spec.timeoutSeconds} seconds`),
            ),
          spec.timeoutSeconds * 1000,
        );
        timer.unref();
      });
      const context = lambdaContext(functionName, spec, deadline);
      const started = performance.now();
      let ok = false;
      try {
        const result = await Promise.race([handler(event, context), timeout]);
        ok = true;
        return result;
      } finally {
        clearTimeout(timer);
        onReport?.({
          functionName,
          requestId: context.awsRequestId,
          durationMs: performance.now() - started,
          ok,
        });
      }
    },
  };
}
