// (bench) Cold start: each function bundled as the CDK construct bundles it (esbuild, ESM, node24,
// everything bundled, minified as lib/constructs/dialgate-function.ts says), its size and what fills
// it, and its module-initialisation time: the bundle imported by a fresh Node process.
// Each bundle is also built unminified, for contrast.

import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { type BuildOptions, build, type Metafile } from 'esbuild';
import { FUNCTIONS, type FunctionName } from '../../lambdas/definitions/resources.ts';
import { REPO_ROOT } from '../local/lambda-runtime.ts';
import { watchMachine } from './machine.ts';
import { atMost, type Check, figure, type SectionResult } from './result.ts';
import { round } from './stats.ts';

const run = promisify(execFile);

const CONSTRUCT = resolve(REPO_ROOT, 'lib/constructs/dialgate-function.ts');

/** The construct's ESM `require` shim, kept equal to REQUIRE_SHIM in lib/constructs/dialgate-function.ts. */
export const REQUIRE_SHIM =
  "import { createRequire as __dialgateCreateRequire } from 'node:module'; " +
  'const require = __dialgateCreateRequire(import.meta.url);';

export interface ConstructBundling {
  minify: boolean;
  format: string;
  target: string;
  mainFields: string[];
  sourceMap: boolean;
  /** Options this file assumes but could not find in the construct's source. */
  unconfirmed: string[];
}

/** Reads the bundling options from the construct's source, so that a change there shows here. */
export function constructBundling(): ConstructBundling {
  const source = readFileSync(CONSTRUCT, 'utf8');
  const unconfirmed: string[] = [];
  const pick = (pattern: RegExp, name: string, fallback: string) => {
    const match = pattern.exec(source);
    if (!match) unconfirmed.push(name);
    return match?.[1] ?? fallback;
  };
  const minify = pick(/minify:\s*(true|false)/, 'minify', 'false') === 'true';
  const format = pick(/format:\s*OutputFormat\.(\w+)/, 'format', 'ESM').toLowerCase();
  const target = pick(/target:\s*'([^']+)'/, 'target', 'node24');
  const mainFields = pick(/mainFields:\s*\[([^\]]*)\]/, 'mainFields', "'module', 'main'")
    .split(',')
    .map((field) => field.trim().replace(/^'|'$/g, ''))
    .filter(Boolean);
  const sourceMap = pick(/sourceMap:\s*(true|false)/, 'sourceMap', 'true') === 'true';
  if (!source.includes('__dialgateCreateRequire')) unconfirmed.push('banner (require shim)');
  return { minify, format, target, mainFields, sourceMap, unconfirmed };
}

export interface BundleFigures {
  fn: FunctionName;
  variant: string;
  bytes: number;
  /** Bytes in the bundle by package (top ones), from esbuild's metafile. */
  byPackage: { name: string; bytes: number }[];
  /** Median module-initialisation time (import of the bundle in a fresh process), ms. */
  initMs: number;
  initSamples: number[];
  error?: string;
}

interface Variant {
  fn: FunctionName;
  variant: string;
  minify: boolean;
}

function variants(bundling: ConstructBundling): Variant[] {
  const list: Variant[] = [];
  for (const fn of Object.keys(FUNCTIONS) as FunctionName[]) {
    list.push({ fn, variant: 'as deployed', minify: bundling.minify });
    list.push({
      fn,
      variant: bundling.minify ? 'unminified' : 'minified',
      minify: !bundling.minify,
    });
  }
  return list;
}

/** esbuild options that bundle a function as the construct does (`bundling` read from it). */
export function buildOptionsFor(bundling: ConstructBundling, fn: FunctionName, outfile: string) {
  return {
    entryPoints: [resolve(REPO_ROOT, FUNCTIONS[fn].entry)],
    absWorkingDir: REPO_ROOT,
    bundle: true,
    platform: 'node',
    format: bundling.format === 'cjs' ? 'cjs' : 'esm',
    target: bundling.target,
    outfile,
    minify: bundling.minify,
    sourcemap: bundling.sourceMap,
    sourcesContent: false,
    mainFields: bundling.mainFields,
    banner: { js: REQUIRE_SHIM },
    logLevel: 'error',
    metafile: true,
  } satisfies BuildOptions;
}

export async function measureColdStart(
  outDir: string,
  initRuns: number,
): Promise<{
  bundling: ConstructBundling;
  bundles: BundleFigures[];
}> {
  const bundling = constructBundling();
  const bundles: BundleFigures[] = [];
  for (const variant of variants(bundling)) {
    const slug = `${variant.fn}-${variant.variant.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`;
    const outfile = join(outDir, slug, 'index.mjs');
    mkdirSync(dirname(outfile), { recursive: true });
    let metafile: Metafile | undefined;
    try {
      const result = await build({
        ...buildOptionsFor(bundling, variant.fn, outfile),
        minify: variant.minify,
      });
      metafile = result.metafile;
    } catch (error) {
      bundles.push({
        ...base(variant),
        bytes: 0,
        byPackage: [],
        initMs: Number.NaN,
        initSamples: [],
        error: String(error),
      });
      continue;
    }
    const bytes = statSync(outfile).size;
    const samples: number[] = [];
    let error: string | undefined;
    for (let i = 0; i < initRuns; i++) {
      try {
        samples.push(await initTime(outfile));
      } catch (e) {
        error = String((e as Error).message ?? e).slice(0, 300);
        break;
      }
    }
    samples.sort((a, b) => a - b);
    bundles.push({
      ...base(variant),
      bytes,
      byPackage: packageSizes(metafile, outfile),
      initMs: samples.length ? round(samples[Math.floor((samples.length - 1) / 2)]!) : Number.NaN,
      initSamples: samples.map((s) => round(s)),
      ...(error ? { error } : {}),
    });
  }
  return { bundling, bundles };
}

function base(variant: Variant): { fn: FunctionName; variant: string } {
  return { fn: variant.fn, variant: variant.variant };
}

/** Imports the bundle in a fresh Node (this one's binary: the pinned Node 24) and times the import. */
async function initTime(file: string): Promise<number> {
  const script =
    'const t = performance.now();' +
    `await import(${JSON.stringify(`file://${file}`)});` +
    'process.stdout.write(String(performance.now() - t));';
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: dirname(file),
    env: { PATH: process.env.PATH ?? '', AWS_REGION: 'us-east-1', POWERTOOLS_METRICS_DISABLED: 'true' },
    timeout: 60_000,
  });
  const ms = Number(stdout.trim());
  if (!Number.isFinite(ms)) throw new Error(`unexpected output: ${stdout.slice(0, 200)}`);
  return ms;
}

function packageSizes(metafile: Metafile | undefined, outfile: string): { name: string; bytes: number }[] {
  if (!metafile) return [];
  const key = relative(REPO_ROOT, outfile);
  const output = metafile.outputs[key] ?? Object.values(metafile.outputs).find((o) => o.entryPoint);
  if (!output) return [];
  const totals = new Map<string, number>();
  for (const [path, { bytesInOutput }] of Object.entries(output.inputs)) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    const name = match
      ? match[1]!
      : path.startsWith('bench-twilio:')
        ? '(stand-in for twilio)'
        : 'dialgate code';
    totals.set(name, (totals.get(name) ?? 0) + bytesInOutput);
  }
  return [...totals.entries()]
    .map(([name, bytes]) => ({ name, bytes }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 8);
}

export interface ColdStartOptions {
  quick: boolean;
  outDir: string;
  cpus: number;
}

const MB = 1_000_000;
const BUNDLE_TARGET_MB = 1.5;

export async function runColdStart(options: ColdStartOptions): Promise<SectionResult> {
  const startedAt = new Date().toISOString();
  const machine = watchMachine(options.cpus);
  const t0 = performance.now();
  const { bundling, bundles } = await measureColdStart(options.outDir, options.quick ? 3 : 7);
  const find = (fn: FunctionName, variant: string) =>
    bundles.find((b) => b.fn === fn && b.variant === variant);
  const checks: Check[] = [];
  for (const fn of Object.keys(FUNCTIONS) as FunctionName[]) {
    const deployed = find(fn, 'as deployed');
    if (!deployed) continue;
    const mb = round(deployed.bytes / MB, 2);
    checks.push(
      fn === 'webhook' || fn === 'dispatcher'
        ? atMost(`${fn} bundle`, mb, 'MB', BUNDLE_TARGET_MB)
        : figure(`${fn} bundle`, mb, 'MB'),
      figure(`${fn} module init`, deployed.initMs, 'ms'),
    );
  }
  for (const bundle of bundles.filter((b) => b.variant !== 'as deployed' && !/minified/.test(b.variant))) {
    checks.push(
      figure(
        `${bundle.fn} bundle, ${bundle.variant}`,
        round(bundle.bytes / MB, 2),
        'MB',
        `init ${bundle.initMs} ms`,
      ),
    );
  }
  const twilioShare = find('webhook', 'as deployed')?.byPackage.find((p) => p.name === 'twilio')?.bytes ?? 0;
  return {
    section: 'coldstart',
    completed: true,
    startedAt,
    durationMs: round(performance.now() - t0),
    quick: options.quick,
    machine: machine.end(),
    checks,
    notes: [
      `Bundled like lib/constructs/dialgate-function.ts: esbuild ${bundling.format}, ${bundling.target}, ` +
        `minify ${bundling.minify}, main fields ${bundling.mainFields.join(',')}, AWS SDK bundled, source maps ` +
        `${bundling.sourceMap ? 'beside (not counted)' : 'off'}. 1 MB = 10^6 bytes.` +
        (bundling.unconfirmed.length
          ? ` Not found in the construct (assumed): ${bundling.unconfirmed.join(', ')}.`
          : ''),
      `The construct already minifies; unminified bundles are listed in the JSON for contrast.`,
      `twilio is ${round(twilioShare / MB, 2)} MB of the webhook bundle: it imports twilio's webhooks module ` +
        'alone (the package index requires every REST domain, which esbuild cannot drop), and the ' +
        'dispatcher and reconciler use a thin fetch client for the Calls resource.',
      'Module init = import of the bundle in a fresh Node 24 process (median); a Lambda cold start adds ' +
        'fetching and unpacking the code, the runtime, and the first invocation building its clients.',
    ],
    details: { bundling, bundles },
  };
}
