// The functions as `cdk synth` wrote them: the bundles in a cloud assembly (cdk.out), found the way a
// deploy finds them. A function's template says which object it runs (Code.S3Key) and which export
// (Handler); the stack's asset manifest says which directory of the assembly is zipped into that
// object. The local stack can run these files instead of the TypeScript sources, so that what is
// tested is what is deployed.

import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FUNCTIONS, type FunctionName, serviceName } from '../../lambdas/definitions/resources.ts';
import type { FunctionSource } from './lambda-runtime.ts';

interface Manifest {
  artifacts?: Record<string, { type: string; properties?: { templateFile?: string; file?: string } }>;
}
interface AssetManifest {
  files?: Record<string, { source: { path?: string }; destinations: Record<string, { objectKey: string }> }>;
}
interface LambdaResource {
  Type: string;
  Properties?: {
    Code?: { S3Key?: unknown };
    Handler?: string;
    Environment?: { Variables?: Record<string, unknown> };
  };
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

/**
 * Every dialgate function's bundle in the cloud assembly at `assemblyDir`, by name (each function is
 * told apart by its POWERTOOLS_SERVICE_NAME, as the stack sets it). Throws when one is missing.
 */
export function bundlesInAssembly(assemblyDir: string): Record<FunctionName, FunctionSource> {
  const dir = resolve(assemblyDir);
  const manifest = readJson<Manifest>(join(dir, 'manifest.json'));
  const artifacts = Object.values(manifest.artifacts ?? {});

  // Asset object key → the directory of the assembly it is made from.
  const directories = new Map<string, string>();
  for (const artifact of artifacts.filter((a) => a.type === 'cdk:asset-manifest')) {
    const assets = readJson<AssetManifest>(join(dir, artifact.properties!.file!));
    for (const asset of Object.values(assets.files ?? {})) {
      if (!asset.source.path) continue;
      for (const destination of Object.values(asset.destinations)) {
        directories.set(destination.objectKey, join(dir, asset.source.path));
      }
    }
  }

  const found: Partial<Record<FunctionName, FunctionSource>> = {};
  const byService = new Map<unknown, FunctionName>(
    (Object.keys(FUNCTIONS) as FunctionName[]).map((name) => [serviceName(name), name]),
  );
  for (const artifact of artifacts.filter((a) => a.type === 'aws:cloudformation:stack')) {
    const template = readJson<{ Resources?: Record<string, LambdaResource> }>(
      join(dir, artifact.properties!.templateFile!),
    );
    for (const [logicalId, resource] of Object.entries(template.Resources ?? {})) {
      if (resource.Type !== 'AWS::Lambda::Function') continue;
      const name = byService.get(resource.Properties?.Environment?.Variables?.POWERTOOLS_SERVICE_NAME);
      if (!name) continue;
      const key = resource.Properties?.Code?.S3Key;
      const directory = typeof key === 'string' ? directories.get(key) : undefined;
      if (!directory)
        throw new Error(`${logicalId}: no asset in ${dir} for its code (${JSON.stringify(key)})`);
      found[name] = moduleOf(directory, resource.Properties?.Handler ?? '', logicalId);
    }
  }
  const missing = (Object.keys(FUNCTIONS) as FunctionName[]).filter((name) => !found[name]);
  if (missing.length > 0) throw new Error(`no bundle in ${dir} for: ${missing.join(', ')}`);
  return found as Record<FunctionName, FunctionSource>;
}

/** `index.handler` → the file `index.mjs` (or .js, .cjs) in `directory`, export `handler`. */
function moduleOf(directory: string, handler: string, logicalId: string): FunctionSource {
  const dot = handler.lastIndexOf('.');
  if (dot <= 0) throw new Error(`${logicalId}: Handler "${handler}" is not <module>.<export>`);
  const base = join(directory, handler.slice(0, dot));
  const file = ['.mjs', '.js', '.cjs'].map((ext) => base + ext).find((candidate) => existsSync(candidate));
  if (!file) throw new Error(`${logicalId}: no ${handler.slice(0, dot)}.mjs/.js/.cjs in ${directory}`);
  return { file, exportName: handler.slice(dot + 1) };
}
