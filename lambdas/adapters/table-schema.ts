// (adapter) The one definition of dialgate's table: the CDK stateful stack, the local stack's
// CreateTable and the DynamoDB adapter all read it, so the three cannot drift apart.
// Free of CDK and SDK imports on purpose.

export const TABLE_SCHEMA = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** Sparse: only queued jobs carry `queuedRun`, so finding the next lead stays O(1) as a run grows. */
  queuedIndex: {
    name: 'queued',
    partitionKey: 'queuedRun',
    sortKey: 'queuedKey',
    /** What the dispatcher needs to place a call, so that it never reads the job item itself. */
    projectedAttributes: ['phone', 'attempt'],
  },
} as const;

/** Key layout, in one place (items know nothing else about how they are keyed). */
export const keys = {
  run: (runId: string) => ({ pk: `RUN#${runId}`, sk: 'RUN' }),
  job: (runId: string, jobId: string) => ({ pk: `RUN#${runId}`, sk: `JOB#${jobId}` }),
  chunk: (runId: string, chunk: number) => ({ pk: `RUN#${runId}`, sk: `CHUNK#${chunk}` }),
} as const;
