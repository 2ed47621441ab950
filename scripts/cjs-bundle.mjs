// What the two CommonJS bundles of the CLI share: the node build's dist/cli.cjs
// (scripts/bundle-cli.mjs) and the single executable's (scripts/package-sea.mjs).
import { readFileSync } from 'node:fs';
import { dirname, relative } from 'node:path';

/**
 * esbuild `stdin` of the Kubernetes client's own bundle (in both builds: only the cluster
 * commands load it); `root` is the checkout, where it resolves.
 */
export const kubeClientEntry = (root) => ({
  contents: "module.exports = require('@kubernetes/client-node');",
  resolveDir: root,
  loader: 'js',
});
/**
 * The modules src/util/worker.ts starts as worker threads. Each build bundles every one of them
 * into one CommonJS file of its own: a worker has its own module graph, and loading tsc's ES
 * modules one by one cost a worker about 70 ms of its start (resolution and linking).
 */
export const WORKER_ENTRIES = ['src/images/scan-thread-worker.ts', 'src/generate/self-check-worker.ts'];

/** Native helpers some dependencies try to require (when installed); never bundled. */
export const OPTIONAL_DEPS = ['supports-color', 'bufferutil', 'utf-8-validate', 'encoding'];

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

/**
 * esbuild plugin: string-width (yargs and cliui each import a copy) is loaded at its first call,
 * not with yargs. Loading it makes an Intl.Segmenter, 9–13 ms each, and only help text measures
 * widths: every other command paid about 25 ms for it.
 */
export const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.pluginData?.real) return undefined;
      const real = await b.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: { real: true },
      });
      if (real.errors.length > 0) return { errors: real.errors };
      return { path: real.path, namespace: 'lazy-string-width' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-string-width' }, (args) => ({
      contents: `let width;
export default function stringWidth(text, options) {
  width ??= require(${JSON.stringify(args.path)}).default;
  return width(text, options);
}`,
      loader: 'js',
      resolveDir: dirname(args.path),
    }));
  },
};
