// docs/DESIGN.md's "Where things are" tree is the map a newcomer reads first: it must name every
// folder the repository has, and nothing that is not there.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TOP = ['bin', 'lib', 'lambdas', 'tools', 'clients', 'test', 'events', 'docs'];

/** The paths the tree names: indentation (two spaces a level) nests a name in the folder above it. */
function treePaths(markdown: string): string[] {
  const section = markdown.split('## Where things are')[1] ?? '';
  const block = section.split('```')[1] ?? '';
  const parents: string[] = [];
  const paths: string[] = [];
  for (const line of block.split('\n').filter((l) => l.trim() !== '')) {
    const depth = (line.length - line.trimStart().length) / 2;
    const name = line.trim().split(/\s{2,}/)[0]!;
    parents.length = depth;
    const path = [...parents, name].join('');
    paths.push(path);
    if (name.endsWith('/')) parents.push(name);
  }
  return paths;
}

function foldersUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name !== 'node_modules')
    .flatMap((entry) => [`${dir}/${entry.name}/`, ...foldersUnder(`${dir}/${entry.name}`)]);
}

const paths = treePaths(readFileSync(join(ROOT, 'docs/DESIGN.md'), 'utf8'));

it('names only paths that exist', () => {
  expect(paths.length).toBeGreaterThan(TOP.length);
  const missing = paths.filter(
    (path) =>
      !existsSync(join(ROOT, path)) || statSync(join(ROOT, path)).isDirectory() !== path.endsWith('/'),
  );
  expect(missing).toEqual([]);
});

it('names every folder of the code, the tests, the events and the docs', () => {
  const folders = TOP.flatMap((top) => [`${top}/`, ...foldersUnder(top)]);
  expect(folders.filter((folder) => !paths.includes(folder))).toEqual([]);
});
