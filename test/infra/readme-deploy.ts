// The README's deploy section, read as data: the variants table (what CI and the infra tests
// synthesize), every `-c key=value` it names, the context table and the outputs table. One parser,
// so that the tests, CI (.ci/run) and the README cannot each read the section their own way.
//
// Run directly (`npx tsx test/infra/readme-deploy.ts`), it prints one variant per line, its name and
// its flags separated by a tab, for .ci/run.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const README_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'README.md');

const DEPLOY_HEADING = '## Deploy (for the ops team)';

/** The deploy section: from its heading to the next `## ` heading. */
export function deploySection(readme: string): string {
  const start = readme.indexOf(`\n${DEPLOY_HEADING}\n`);
  if (start < 0) throw new Error(`README: no "${DEPLOY_HEADING}" section`);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** A `### ` subsection of the deploy section, up to the next heading of that level or above. */
function subsection(section: string, title: string): string {
  const start = section.indexOf(`\n### ${title}\n`);
  if (start < 0) throw new Error(`README, deploy section: no "### ${title}"`);
  const end = section.slice(start + 1).search(/\n##+ /);
  return end < 0 ? section.slice(start) : section.slice(start, start + 1 + end);
}

/** The cells of each body row of the first Markdown table whose header row is `header`. */
function tableRows(text: string, header: string): string[][] {
  const lines = text.split('\n');
  const at = lines.findIndex((line) => line.trim() === header);
  if (at < 0) throw new Error(`README: no table headed ${header}`);
  const rows: string[][] = [];
  for (const line of lines.slice(at + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .slice(1, line.trimEnd().endsWith('|') ? line.trimEnd().length - 1 : undefined)
        .split('|')
        .map((cell) => cell.trim()),
    );
  }
  return rows;
}

/** `-c key=value` flags, as the CDK CLI reads them (a value runs to the next space). */
const FLAG = /(?:^|\s)-c\s+([A-Za-z@][\w:@/.-]*)=(\S*)/g;

/** Every `-c key=…` named anywhere in `text` (placeholders such as `-c <name>=<value>` are not keys). */
export function contextKeysNamed(text: string): string[] {
  // Code spans and blocks included: `-c stage=prod` and a deploy command read the same.
  return [...new Set([...text.replaceAll('`', ' ').matchAll(FLAG)].map((m) => m[1]!))];
}

export interface DeployVariant {
  name: string;
  /** The flags as written, e.g. `-c stage=prod -c apiAuth=apiKey`. */
  flags: string;
  /** The same as CDK context: every value a string, as the CLI passes `-c` values. */
  context: Record<string, string>;
}

/** The rows of the "Deploy variants" table. */
export function deployVariants(readme: string): DeployVariant[] {
  const rows = tableRows(subsection(deploySection(readme), 'Deploy variants'), '| Variant | Context |');
  return rows.map(([name = '', cell = '']) => {
    const flags = cell.replace(/^`|`$/g, '');
    const context: Record<string, string> = {};
    for (const match of ` ${flags}`.matchAll(FLAG)) context[match[1]!] = match[2]!;
    const leftover = ` ${flags}`.replace(FLAG, '').trim();
    if (leftover !== '') throw new Error(`README, variant "${name}": not a -c flag: ${leftover}`);
    return { name, flags, context };
  });
}

/** The keys of the context table (`| Context | Default | Meaning |`). */
export function contextTableKeys(readme: string): string[] {
  return tableRows(deploySection(readme), '| Context | Default | Meaning |').map(([key = '']) =>
    key.replace(/^`|`$/g, ''),
  );
}

export interface DocumentedOutput {
  stack: 'stateful' | 'stateless';
  name: string;
  /** "With `-c key=value` only": the output exists exactly when the context has that value. */
  onlyWith?: { key: string; value: string };
}

/** The rows of the outputs table (`| Stack | Output | What it is |`), one entry per output named. */
export function documentedOutputs(readme: string): DocumentedOutput[] {
  const rows = tableRows(subsection(deploySection(readme), 'Outputs'), '| Stack | Output | What it is |');
  return rows.flatMap(([stack = '', names = '', meaning = '']) => {
    if (stack !== 'stateful' && stack !== 'stateless') throw new Error(`README, outputs: stack "${stack}"`);
    const only = /With `-c ([\w@:]+)=([^`]+)` only/.exec(meaning);
    return [...names.matchAll(/`([^`]+)`/g)].map((m) => ({
      stack,
      name: m[1]!,
      ...(only ? { onlyWith: { key: only[1]!, value: only[2]! } } : {}),
    }));
  });
}

export const readReadme = (): string => readFileSync(README_PATH, 'utf8');

if (import.meta.main) {
  for (const variant of deployVariants(readReadme())) console.log(`${variant.name}\t${variant.flags}`);
}
