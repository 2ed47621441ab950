/** The real Helm, kustomize and kubectl binaries the renderer tests drive, and helpers around them. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ensureBuilt, REPO_ROOT } from '../helpers/cli.js';
import { SAMPLE_IMAGES } from '../helpers/images.js';

export const TOOLS = join(REPO_ROOT, 'tools', 'bin');
export const CHART = join(REPO_ROOT, 'samples', 'chart');
export const KUSTOMIZE_SAMPLES = join(REPO_ROOT, 'samples', 'kustomize');
export const POSTRENDERER = join(REPO_ROOT, 'postrenderer', 'kubectl-contrast-postrender');
export const KUSTOMIZE_PLUGIN_HOME = join(REPO_ROOT, 'postrenderer', 'kustomize-plugins');

/** Offline image flags: the committed sample images, no cache, no network. */
export const IMAGE_FLAGS = [`--oci-layout=${SAMPLE_IMAGES}`, '--offline', '--no-cache'];

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A pinned tool from tools/bin; a missing one is a failure (scripts/setup.sh builds them). */
export function tool(name: 'helm3' | 'helm4' | 'kustomize' | 'krew'): string {
  const path = join(TOOLS, name);
  assert.ok(existsSync(path), `${path} is missing: run scripts/setup.sh (it builds the pinned Go tools)`);
  return path;
}

export function run(
  cmd: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {},
): Run {
  ensureBuilt();
  const r = spawnSync(cmd, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    input: options.input ?? '',
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message}`);
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function ok(r: Run, what: string): string {
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}`);
  return r.stdout;
}

/** A private Helm home (config, cache, data incl. plugins) so tests never touch the user's. */
export function helmEnv(dir: string): NodeJS.ProcessEnv {
  for (const d of ['config', 'cache', 'data']) mkdirSync(join(dir, d), { recursive: true });
  return {
    HELM_CONFIG_HOME: join(dir, 'config'),
    HELM_CACHE_HOME: join(dir, 'cache'),
    HELM_DATA_HOME: join(dir, 'data'),
    // Helm 4.3 installs local plugins below HELM_DATA_HOME but lists HELM_PLUGINS: keep them one.
    HELM_PLUGINS: join(dir, 'data', 'plugins'),
  };
}

/** PATH with bin/ (kubectl-contrast) first. */
export function pathWithBin(extra: string[] = []): string {
  return [...extra, join(REPO_ROOT, 'bin'), process.env.PATH ?? ''].join(delimiter);
}

export interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> };
  [k: string]: unknown;
}

/** The objects of a YAML stream, read as Kubernetes reads them. */
export function objects(text: string): Obj[] {
  const docs = parseAllDocuments(text, { version: '1.1' });
  if (!Array.isArray(docs)) return [];
  return docs.map((d) => d.toJS() as Obj).filter((o) => o !== null && o !== undefined);
}

export function keyOf(o: Obj): string {
  return `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;
}

/** Objects by kind/namespace/name, with the given annotations removed (tool bookkeeping). */
export function byKey(list: Obj[], dropAnnotations: string[] = []): Map<string, Obj> {
  const out = new Map<string, Obj>();
  for (const o of list) {
    const copy = structuredClone(o);
    const ann = copy.metadata?.annotations;
    if (ann) {
      for (const k of dropAnnotations) delete ann[k];
      if (Object.keys(ann).length === 0) delete copy.metadata!.annotations;
    }
    out.set(keyOf(copy), copy);
  }
  return out;
}

export function isHook(o: Obj): boolean {
  return o.metadata?.annotations?.['helm.sh/hook'] !== undefined;
}
