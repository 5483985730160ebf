// A function's name as the stem of the construct ids made for it: `webhook` → `WebhookFunction` (and
// its `WebhookFunctionRole`, `WebhookFunctionLogs`), `WebhookErrors` (its alarm). Those ids are part of
// the resources' logical ids, so this spelling is part of the deployed stack's identity.

import type { FunctionName } from '../lambdas/definitions/resources.ts';

export function idStem(name: FunctionName): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
