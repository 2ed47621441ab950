// Last step of `npm run build`: the CLI of the node build as one CommonJS bundle, dist/cli.cjs,
// and its V8 code cache (bin/launch.mjs runs them). tsc's dist/ stays what the data files are
// loaded from: each module of the bundle gets the import.meta.url of its file in dist/.
//  - Each worker thread's module is bundled too, beside its file in dist/ (worker.cjs next to
//    worker.js): src/util/worker.ts starts that one.
//  - The Kubernetes client (15 MB bundled) is dist/kube-client.cjs, required only by the
//    commands that talk to a cluster: `generate` and the post-renderers do not read it.
//  - The cache is made by running `generate` on samples/plain offline, so it holds the code that
//    run compiled (reading, transforming, policy, writing), not only the top level.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { CODE_CACHE, runCliWritingCodeCache } from '../bin/launch.mjs';
import {
  CJS_BUNDLE,
  kubeClientEntry,
  lazyStringWidth,
  OPTIONAL_DEPS,
  srcImportMetaUrl,
  WORKER_ENTRIES,
} from './cjs-bundle.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');

/** Banner line of every bundle of the node build: the URL of a file below dist/ (`__distDir`, set before it). */
const DIST_URL =
  "const __distUrl = (rel) => require('node:url').pathToFileURL(require('node:path').join(__distDir, rel)).href;";

/** Each module of src/ gets the import.meta.url of its file in dist/ (see DIST_URL). */
function distImportMetaUrl(b) {
  srcImportMetaUrl(b, join(root, 'src'), (rel) => `__distUrl(${JSON.stringify(rel.replace(/\.ts$/, '.js'))})`);
}

async function bundle() {
  rmSync(CODE_CACHE, { force: true });
  await build({
    ...CJS_BUNDLE,
    outfile: join(dist, 'kube-client.cjs'),
    stdin: kubeClientEntry(root),
    external: OPTIONAL_DEPS,
  });
  await build({
    ...CJS_BUNDLE,
    entryPoints: [join(root, 'src/cli/main.ts')],
    outfile: join(dist, 'cli.cjs'),
    sourcemap: 'linked',
    // import() of the Kubernetes client becomes a require of its bundle.
    supported: { 'dynamic-import': false },
    external: OPTIONAL_DEPS,
    // A function of the CommonJS module arguments, which bin/launch.mjs calls (see there). Its
    // __dirname is read first: a bundled dependency declares a top-level __dirname of its own.
    banner: {
      js: `(function (exports, require, module, __filename, __dirname) {
const __bundleUrl = require('node:url').pathToFileURL(__filename).href;
const __distDir = __dirname;
${DIST_URL}`,
    },
    footer: { js: '})' },
    // Dependencies that read import.meta.url (yargs, for createRequire) get the bundle's.
    define: { 'import.meta.url': '__bundleUrl' },
    plugins: [
      lazyStringWidth,
      {
        name: 'kubectl-contrast-node-bundle',
        setup(b) {
          b.onResolve({ filter: /^@kubernetes\/client-node$/ }, () => ({ path: './kube-client.cjs', external: true }));
          distImportMetaUrl(b);
        },
      },
    ],
  });
  absoluteSources(join(dist, 'cli.cjs.map'));
  // Each worker as one file beside its module in dist/ (dist/generate/self-check-worker.cjs),
  // where src/util/worker.ts looks first; its modules get the import.meta.url of their file in
  // dist/, as in cli.cjs.
  for (const entry of WORKER_ENTRIES) {
    const outfile = join(dist, entry.replace(/^src\//, '').replace(/\.ts$/, '.cjs'));
    await build({
      ...CJS_BUNDLE,
      entryPoints: [join(root, entry)],
      outfile,
      sourcemap: 'linked',
      external: OPTIONAL_DEPS,
      banner: {
        js: `const __distDir = require('node:path').join(__dirname, ${JSON.stringify(relative(dirname(outfile), dist))});
${DIST_URL}`,
      },
      plugins: [{ name: 'kubectl-contrast-worker-bundle', setup: distImportMetaUrl }],
    });
    absoluteSources(`${outfile}.map`);
  }
}

/**
 * Absolute source paths in a bundle's map, for coverage: v8-to-istanbul filters the ranges of a
 * bundle by the sources of its map as written, and c8 (include src/**) dropped every one of
 * ../src/… as outside src/, which left every line of src/ counted as run.
 */
function absoluteSources(map) {
  const json = JSON.parse(readFileSync(map, 'utf8'));
  json.sources = json.sources.map((s) => resolve(dirname(map), s));
  writeFileSync(map, JSON.stringify(json));
}

// The run that fills the cache, in a process of its own (this script again, with --train).
if (process.argv[2] === '--train') {
  process.exitCode = await runCliWritingCodeCache(process.argv.slice(3));
} else {
  await bundle();
  const work = mkdtempSync(join(tmpdir(), 'contrast-code-cache-'));
  try {
    execFileSync(
      process.execPath,
      [
        fileURLToPath(import.meta.url),
        '--train',
        'generate',
        '--platform',
        'metal-qemu-snp',
        '--oci-layout',
        join(root, 'samples', 'images'),
        '--offline',
        '--no-cache',
        '--workspace-dir',
        work,
        '-o',
        join(work, 'resources.yaml'),
        join(root, 'samples', 'plain'),
      ],
      {
        env: { ...process.env, CONTRAST_IMAGE_LOCK: join(root, 'samples', 'images', 'image-lock.json') },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
  } catch (err) {
    process.stderr.write(`bundle-cli: the run that makes the code cache failed:\n${err.stderr ?? err.message}\n`);
    process.exitCode = 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
