/**
 * The layers of src/ (docs/architecture.md): a folder may import only from folders on lower
 * layers, so the CLI is the top, nothing imports it, and no two folders depend on each other.
 * Every import counts: static, `export … from`, dynamic `import()` and type-only imports.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from '../helpers/cli.js';

/** Bottom first. A folder may import from the layers below its own, never from its own or above. */
const LAYERS: readonly (readonly string[])[] = [
  ['util', 'version'],
  ['resources', 'workloads', 'images', 'attestation'],
  ['platforms', 'issuers'],
  ['policy', 'transforms', 'atls'],
  ['runtime', 'coordinator'],
  ['workspace'],
  ['generate'],
  ['postrender', 'kube', 'initializer', 'servicemesh'],
  ['cli'],
];

/** Attestation stands alone: what others would reuse may import nothing of ours but util. */
const ALONE: Readonly<Record<string, readonly string[]>> = { attestation: ['util'] };

const SRC = join(REPO_ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** The top-level folder of a path below src/ (a file directly in src/ counts as its own folder). */
function folderOf(path: string): string {
  const parts = relative(SRC, path).split('/');
  return parts.length === 1 ? parts[0]!.replace(/\.(ts|js)$/, '') : parts[0]!;
}

interface Edge {
  from: string;
  to: string;
  file: string;
}

/** Every import between two different top-level folders. */
function edges(): Edge[] {
  const out: Edge[] = [];
  for (const file of sourceFiles(SRC)) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const from = folderOf(file);
      const to = folderOf(resolve(dirname(file), fileName));
      if (from !== to) out.push({ from, to, file: relative(SRC, file) });
    }
  }
  return out;
}

const layerOf = new Map(LAYERS.flatMap((folders, i) => folders.map((f) => [f, i] as const)));

describe('layers of src/', () => {
  const all = edges();

  it('names every top-level folder of src/ exactly once', () => {
    const folders = [...new Set(sourceFiles(SRC).map(folderOf))].sort();
    assert.deepEqual([...layerOf.keys()].sort(), folders);
    assert.equal(layerOf.size, LAYERS.flat().length, 'a folder is listed on two layers');
  });

  it('imports only point down', () => {
    const up = all.filter((e) => layerOf.get(e.to)! >= layerOf.get(e.from)!);
    assert.deepEqual(
      up.map(
        (e) => `${e.file} imports ${e.to} (layer ${layerOf.get(e.to)}) from ${e.from} (layer ${layerOf.get(e.from)})`,
      ),
      [],
    );
  });

  it('has no cycle between top-level folders', () => {
    const next = new Map<string, Set<string>>();
    for (const e of all) next.set(e.from, (next.get(e.from) ?? new Set()).add(e.to));
    const cycles: string[] = [];
    const done = new Set<string>();
    const visit = (folder: string, path: string[]): void => {
      if (path.includes(folder)) {
        cycles.push([...path.slice(path.indexOf(folder)), folder].join(' -> '));
        return;
      }
      if (done.has(folder)) return;
      for (const to of next.get(folder) ?? []) visit(to, [...path, folder]);
      done.add(folder);
    };
    for (const folder of next.keys()) visit(folder, []);
    assert.deepEqual(cycles, []);
  });

  it('lets the folders that stand alone import only what they may', () => {
    const out = all.filter((e) => ALONE[e.from] !== undefined && !ALONE[e.from]!.includes(e.to));
    assert.deepEqual(
      out.map((e) => `${e.file} imports ${e.to}`),
      [],
    );
  });

  it('nothing imports the CLI', () => {
    assert.deepEqual(
      all.filter((e) => e.to === 'cli').map((e) => e.file),
      [],
    );
  });
});
