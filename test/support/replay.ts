// fast-check's replay of a failure: FC_SEED (and FC_PATH, for a property without commands) from the
// failure's report run that case again.

import type { Parameters } from 'fast-check';

export function replayFromEnv<T>(): Pick<Parameters<T>, 'seed' | 'path'> {
  const { FC_SEED, FC_PATH } = process.env;
  if (!FC_SEED) return {};
  return { seed: Number(FC_SEED), ...(FC_PATH ? { path: FC_PATH } : {}) };
}
