// Powertools' packages share @aws-lambda-powertools/commons: on two versions, a function bundle carries
// two copies of it and the packages may disagree on shared state. One exact version, resolved once.

import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

const read = (file: string) => JSON.parse(readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8'));

it('pins every Powertools package to one exact version, and the lock installs each once', () => {
  const manifest = read('package.json') as { dependencies: Record<string, string> };
  const pinned = Object.entries(manifest.dependencies).filter(([name]) =>
    name.startsWith('@aws-lambda-powertools/'),
  );
  expect(pinned.length).toBeGreaterThan(0);
  const versions = new Set(pinned.map(([, version]) => version));
  expect([...versions]).toHaveLength(1);
  const [version] = versions;
  expect(version).toMatch(/^\d+\.\d+\.\d+$/);

  const lock = read('package-lock.json') as { packages: Record<string, { version?: string }> };
  const installed = Object.entries(lock.packages).filter(([path]) =>
    /(^|\/)node_modules\/@aws-lambda-powertools\/[^/]+$/.test(path),
  );
  for (const [path, entry] of installed) expect(`${path}@${entry.version}`).toBe(`${path}@${version}`);
  // Nested copies (node_modules inside a Powertools package) would mean a second version somewhere.
  expect(installed.map(([path]) => path).filter((path) => path.split('node_modules/').length > 2)).toEqual(
    [],
  );
});
