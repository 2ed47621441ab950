// Copies the non-TypeScript assets that modules load at run time (Rego rules, compiled WASM,
// JSON defaults) from src/ to dist/, keeping their relative paths.
import { cpSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { buildInfoJson } from './build-info.mjs';

const ASSET = /\.(rego|wasm|json|toml|txt)$/;
const src = new URL('../src', import.meta.url).pathname;
const dist = new URL('../dist', import.meta.url).pathname;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (ASSET.test(name)) {
      const target = join(dist, relative(src, path));
      mkdirSync(dirname(target), { recursive: true });
      cpSync(path, target);
    }
  }
}
walk(src);

// dist/build-info.json: the commit of this build, for `kubectl contrast version`.
writeFileSync(join(dist, 'build-info.json'), buildInfoJson());
