// What the two CommonJS bundles of the CLI share: the node build's dist/cli.cjs
// (scripts/bundle-cli.mjs) and the single executable's (scripts/package-sea.mjs).
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

/** esbuild options of every bundle: one CommonJS file for Node 20. */
export const CJS_BUNDLE = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'warning',
  legalComments: 'none',
};

/**
 * esbuild onLoad handler for src/*.ts: every `import.meta.url` of a module becomes
 * `urlOf(path)` (a JavaScript expression), path being the module's path relative to `root`.
 * Modules of src/ find their data files and workers through it, so each needs its own.
 */
export function srcImportMetaUrl(build, root, urlOf) {
  build.onLoad({ filter: /\/src\/.*\.ts$/ }, (args) => {
    const rel = relative(root, args.path).split('\\').join('/');
    return { contents: readFileSync(args.path, 'utf8').replaceAll('import.meta.url', urlOf(rel)), loader: 'ts' };
  });
}
