// (bench) AWS cost per 1,000 calls from what a workload consumed, at list prices, next to Twilio's.

import type { FunctionName } from '../../lambdas/definitions/resources.ts';
import { round } from './stats.ts';
import type { Usage } from './usage.ts';

/** us-east-1, on-demand list prices (USD), as of the 2024-11 DynamoDB on-demand price cut; no free tiers. */
export const PRICES = {
  dynamoWritePerMillion: 0.625,
  dynamoReadPerMillion: 0.125,
  sqsPerMillion: 0.4,
  lambdaPerMillionRequests: 0.2,
  /** arm64, first tier. */
  lambdaPerGbSecond: 0.0000133334,
  apiGatewayRestPerMillion: 3.5,
  /** Twilio programmable voice, outbound to US numbers, per started minute (assumed list price). */
  twilioPerMinute: 0.014,
  /** CloudWatch Logs ingestion, per GB. */
  logsPerGb: 0.5,
} as const;

export const PRICE_NOTES = [
  'us-east-1 on-demand list prices, no free tier: DynamoDB $0.625 per million write request units and ' +
    '$0.125 per million read request units (the prices since the 1 Nov 2024 on-demand cut); SQS standard ' +
    '$0.40 per million requests (each 64 KB of payload is one request); Lambda arm64 $0.20 per million ' +
    'requests + $0.0000133334 per GB-s; API Gateway REST $3.50 per million; Function URLs add nothing; ' +
    'CloudWatch Logs ingestion $0.50 per GB.',
  'Twilio: US outbound voice assumed at $0.014 per minute, billed per started minute per answered call.',
  'Not counted: X-Ray (active tracing: $5 per million traces recorded beyond the sampling reservoir), ' +
    'custom metrics (fixed per metric and month), Secrets Manager reads (cached 5 minutes), the event ' +
    "source mapping's idle long polls on AWS (about 5 pollers x 3 per minute, ~$0.26 a month) and data transfer.",
];

export interface CostLine {
  item: string;
  quantityPer1000Calls: number;
  unit: string;
  usdPer1000Calls: number;
}

export interface CostReport {
  calls: number;
  lines: CostLine[];
  awsUsdPer1000Calls: number;
  dynamoWriteUnitsPerCall: number;
  /** The same without refused conditional writes (whose billing is estimated). */
  dynamoWriteUnitsPerCallAccepted: number;
  dynamoReadUnitsPerCall: number;
  twilioUsdPer1000Calls: number;
  /** The AWS bill as a share of Twilio's for the same calls. */
  awsShareOfTwilio: number;
}

export function costPer1000Calls(
  usage: Usage,
  calls: number,
  options: { logBytes?: number; minutesPerCall?: number } = {},
): CostReport {
  const per1000 = (n: number) => (n / Math.max(1, calls)) * 1000;
  const lines: CostLine[] = [];
  const line = (item: string, quantity: number, unit: string, pricePerUnit: number) => {
    const q = per1000(quantity);
    lines.push({
      item,
      quantityPer1000Calls: round(q, 2),
      unit,
      usdPer1000Calls: round(q * pricePerUnit, 6),
    });
  };
  line('DynamoDB writes', usage.dynamo.writeUnits, 'write units', PRICES.dynamoWritePerMillion / 1e6);
  line('DynamoDB reads', usage.dynamo.readUnits, 'read units', PRICES.dynamoReadPerMillion / 1e6);
  line('SQS', usage.sqs.billedRequests, 'requests', PRICES.sqsPerMillion / 1e6);
  for (const [fn, entry] of Object.entries(usage.lambda) as [
    FunctionName,
    NonNullable<Usage['lambda'][FunctionName]>,
  ][]) {
    line(`Lambda ${fn} requests`, entry.invocations, 'invocations', PRICES.lambdaPerMillionRequests / 1e6);
    line(`Lambda ${fn} duration`, entry.gbSeconds, `GB-s (${entry.memoryMb} MB)`, PRICES.lambdaPerGbSecond);
  }
  line('API Gateway', usage.apiRequests, 'requests', PRICES.apiGatewayRestPerMillion / 1e6);
  if (options.logBytes !== undefined)
    line('CloudWatch Logs', options.logBytes / 1e6, 'MB', PRICES.logsPerGb / 1000);
  const aws = lines.reduce((total, l) => total + l.usdPer1000Calls, 0);
  const twilio = 1000 * (options.minutesPerCall ?? 1) * PRICES.twilioPerMinute;
  return {
    calls,
    lines,
    awsUsdPer1000Calls: round(aws, 5),
    dynamoWriteUnitsPerCall: round(usage.dynamo.writeUnits / Math.max(1, calls), 2),
    dynamoWriteUnitsPerCallAccepted: round(
      (usage.dynamo.writeUnits - usage.dynamo.refusedWriteUnits) / Math.max(1, calls),
      2,
    ),
    dynamoReadUnitsPerCall: round(usage.dynamo.readUnits / Math.max(1, calls), 2),
    twilioUsdPer1000Calls: round(twilio, 2),
    awsShareOfTwilio: round(aws / twilio, 5),
  };
}

/**
 * Write units a call the per-recipient checks add: the suppression list (unless SUPPRESSION_CHECK=off)
 * or the frequency cap (RECIPIENT_MAX_CALLS) puts the number's one item in every acquire transaction.
 * The slot state's budgets (16 a call, 20 with the account cap) predate the checks; they are compared
 * with this added.
 */
export function recipientCheckUnits(env: NodeJS.ProcessEnv = process.env): number {
  return env.SUPPRESSION_CHECK === 'off' && !env.RECIPIENT_MAX_CALLS ? 0 : 2;
}
