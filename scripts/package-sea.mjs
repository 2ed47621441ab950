#!/usr/bin/env node
// npm run package: the single executable `kubectl-contrast` (Node SEA) of the host platform.
//
//  1. esbuild bundles src/ and the dependencies into one CommonJS file.
//     - Modules of src/ load their data files with `new URL('./x', import.meta.url)`. Each such
//       module gets an import.meta.url under a virtual root; the data files (the same ones
//       scripts/copy-assets.mjs copies to dist/) become SEA assets, and a small prologue serves
//       reads below that root from them. Dependencies get the executable's own file URL
//       (yargs needs a real one for createRequire).
//     - Optional native helpers that dependencies try to require are stubbed out, or every run
//       would warn that a SEA can only require built-in modules.
//  2. node --experimental-sea-config writes the blob (with code cache for a fast start; V8's
//     random seed fixed, so the code cache, and with it the executable, is the same every build).
//  3. postject injects it into a copy of this node binary (stripped of symbols).
//  4. The binary, LICENSE, NOTICE and kubectl_complete-contrast go into
//     dist-sea/kubectl-contrast-<os>-<arch>.tar.gz (reproducible: fixed order, modes, owner and
//     time), and dist-sea/contrast.yaml, the krew manifest, is written from krew-manifest.yaml
//     (the template, never changed by a build) with the uri and sha256 of every archive in
//     dist-sea/: the very files a release uploads.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import {
  CJS_BUNDLE,
  kubeClientEntry,
  lazyStringWidth,
  OPTIONAL_DEPS,
  srcImportMetaUrl,
  WORKER_ENTRIES,
} from './cjs-bundle.mjs';
import { krewPlatformOf, updateKrewManifest, validateKrewManifest } from './package-sea.krew.mjs';
import { buildInfoJson } from './build-info.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
// CONTRAST_SEA_OUT: another output directory; CONTRAST_SEA_NO_IMAGE_LOCK=1 leaves the image lock
// out (the executable inside our images: so the images do not depend on the lock that names them).
const out = process.env.CONTRAST_SEA_OUT || join(root, 'dist-sea');
const IMAGE_LOCK = 'src/platforms/image-lock.json';
const work = join(out, 'work');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const { os, arch } = krewPlatformOf();
const archiveName = `kubectl-contrast-${os}-${arch}.tar.gz`;
const VIRTUAL_ROOT = '/__kubectl_contrast_sea__/';
const ASSET = /\.(rego|wasm|json|toml|txt)$/;

const log = (msg) => process.stderr.write(`[package] ${msg}\n`);

function assetsUnder(dir) {
  const found = [];
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (ASSET.test(name)) found.push(p);
    }
  };
  walk(dir);
  return found;
}

// Runs first in the bundle: file URL of the executable for dependencies, and reads below the
// virtual root answered from the SEA assets.
const prologue = `
const __importMetaUrl = require('node:url').pathToFileURL(__filename).href;
(() => {
  let sea;
  try { sea = require('node:sea'); if (!sea.isSea()) sea = undefined; } catch { sea = undefined; }
  const fs = require('node:fs');
  const { fileURLToPath } = require('node:url');
  const ROOT = ${JSON.stringify(VIRTUAL_ROOT)};
  const keyOf = (p) => {
    let s = p instanceof URL ? (p.protocol === 'file:' ? fileURLToPath(p) : undefined) : typeof p === 'string' ? p : undefined;
    return s !== undefined && s.startsWith(ROOT) ? s.slice(ROOT.length) : undefined;
  };
  const asset = (key) => { try { return sea ? Buffer.from(sea.getRawAsset(key)) : undefined; } catch { return undefined; } };
  const readFileSync = fs.readFileSync;
  fs.readFileSync = function (p, options) {
    const key = keyOf(p);
    if (key === undefined) return readFileSync.apply(this, arguments);
    const data = asset(key);
    if (data === undefined) { const e = new Error('ENOENT: no such file, open ' + ROOT + key); e.code = 'ENOENT'; throw e; }
    const encoding = typeof options === 'string' ? options : options && options.encoding;
    return encoding ? data.toString(encoding) : data;
  };
  const existsSync = fs.existsSync;
  fs.existsSync = function (p) {
    const key = keyOf(p);
    return key === undefined ? existsSync.apply(this, arguments) : asset(key) !== undefined;
  };
})();
`;

/** esbuild plugin: per-module import.meta.url for src/, stubs for optional dependencies. */
const seaPlugin = {
  name: 'kubectl-contrast-sea',
  setup(b) {
    const optional = new RegExp(`^(${OPTIONAL_DEPS.join('|')})$`);
    b.onResolve({ filter: optional }, (args) => ({ path: args.path, namespace: 'optional-stub' }));
    b.onLoad({ filter: /.*/, namespace: 'optional-stub' }, (args) => ({
      contents: `throw Object.assign(new Error('${args.path} is not part of the single executable'), { code: 'MODULE_NOT_FOUND' });`,
      loader: 'js',
    }));
    srcImportMetaUrl(b, root, (rel) => JSON.stringify(`file://${VIRTUAL_ROOT}${rel}`));
  },
};

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

log('bundling with esbuild');

/**
 * A bundle that becomes an asset of its own: compiled, with its own code cache, by the first
 * code that asks for it, instead of being read by V8 before the executable runs a line. The
 * bundle is wrapped as a CommonJS function; its cache is made by this Node (the one the
 * executable is) with a fixed seed, as the main script's below, so the executable stays
 * reproducible. Returns the source of a module that loads it; `files` is the source of the
 * __filename and __dirname the bundle gets.
 */
function codeCachedAsset(name, bundlePath, files) {
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${readFileSync(bundlePath, 'utf8')}\n})`;
  writeFileSync(bundlePath, wrapped);
  const cache = join(work, `${name}.cache`);
  execFileSync(
    process.execPath,
    [
      '--random-seed=1',
      '-e',
      `const fs = require('node:fs'); const { Script } = require('node:vm');
fs.writeFileSync(process.argv[2], new Script(fs.readFileSync(process.argv[1], 'utf8'), { filename: process.argv[3] }).createCachedData());`,
      bundlePath,
      cache,
      `${VIRTUAL_ROOT}${name}`,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  assetFiles[name] = bundlePath;
  assetFiles[`${name}.cache`] = cache;
  return `
const sea = require('node:sea');
const { Script } = require('node:vm');
const script = new Script(sea.getAsset(${JSON.stringify(name)}, 'utf8'), {
  filename: ${JSON.stringify(`${VIRTUAL_ROOT}${name}`)},
  cachedData: Buffer.from(sea.getRawAsset(${JSON.stringify(`${name}.cache`)})),
});
const m = { exports: {} };
script.runInThisContext()(m.exports, require, m, ${files});
module.exports = m.exports;
`;
}
/** Bundles made assets by codeCachedAsset, by asset name. */
const assetFiles = {};

/** One CommonJS bundle for Node 20; every bundle of the executable differs only in these options. */
const bundleTo = (outfile, options) =>
  build({
    ...CJS_BUNDLE,
    outfile,
    define: { 'import.meta.url': '__importMetaUrl' },
    plugins: [lazyStringWidth, seaPlugin],
    ...options,
  });

// The Kubernetes client is 14 of the bundle's 18 MB: `--version`, generate and the
// post-renderers paid for it (~40 ms) without using it. Cluster commands load it.
const KUBE_ASSET = 'kube-client.cjs';
const kubeBundle = join(work, KUBE_ASSET);
await bundleTo(kubeBundle, {
  stdin: kubeClientEntry(root),
  banner: { js: `const __importMetaUrl = ${JSON.stringify(`file://${VIRTUAL_ROOT}${KUBE_ASSET}`)};` },
});
const kubeLoader = codeCachedAsset(
  KUBE_ASSET,
  kubeBundle,
  `${JSON.stringify(`${VIRTUAL_ROOT}${KUBE_ASSET}`)}, ${JSON.stringify(VIRTUAL_ROOT)}`,
);
const kubeAssetPlugin = {
  name: 'kube-client-asset',
  setup(b) {
    b.onResolve({ filter: /^@kubernetes\/client-node$/ }, (args) => ({ path: args.path, namespace: 'kube-asset' }));
    b.onLoad({ filter: /.*/, namespace: 'kube-asset' }, () => ({ contents: kubeLoader, loader: 'js' }));
  },
};

// The CLI (2.5 MB) is an asset too: the main script is only the prologue and the line that
// answers `--version` before the CLI is read (V8 reads a main script whole, code cache or not:
// 14 ms of a 70 ms `--version`). Dependencies get the executable's own file URL (yargs needs a
// real one for createRequire).
const CLI_ASSET = 'cli.cjs';
const cliBundle = join(work, CLI_ASSET);
await bundleTo(cliBundle, {
  entryPoints: [join(root, 'src/cli/main.ts')],
  banner: { js: "const __importMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [lazyStringWidth, kubeAssetPlugin, seaPlugin],
});
const cliLoader = codeCachedAsset(CLI_ASSET, cliBundle, '__filename, __dirname');
writeFileSync(join(work, 'cli-loader.cjs'), cliLoader);
// Worker threads: each worker module is bundled with the prologue (a worker's modules are its
// own, so the data files need the same reads from the assets) and started from its source by
// src/util/worker.ts. Without them the layer scans and the self-check ran on the main thread.
for (const entry of WORKER_ENTRIES) {
  const name = `workers/${entry.split('/').pop().replace(/\.ts$/, '.cjs')}`;
  const out = join(work, name);
  await bundleTo(out, { entryPoints: [join(root, entry)], banner: { js: prologue } });
  assetFiles[name] = out;
}
const bundle = join(work, 'kubectl-contrast.cjs');
writeFileSync(
  join(work, 'entry.ts'),
  [
    `import { VERSION } from ${JSON.stringify(join(root, 'src/version.ts'))};`,
    'const args = process.argv.slice(2);',
    "if (args.length === 1 && args[0] === '--version') {",
    '  process.stdout.write(`${VERSION}\\n`);',
    '} else {',
    `  const { main } = require(${JSON.stringify(join(work, 'cli-loader.cjs'))}) as { main(a: string[]): Promise<number> };`,
    '  main(args).then((code) => { process.exitCode = code; });',
    '}',
    '',
  ].join('\n'),
);
await bundleTo(bundle, { entryPoints: [join(work, 'entry.ts')], banner: { js: prologue } });

const assets = Object.fromEntries(
  assetsUnder(join(root, 'src'))
    .map((p) => [relative(root, p).split('\\').join('/'), p])
    .filter(([key]) => !(process.env.CONTRAST_SEA_NO_IMAGE_LOCK === '1' && key === IMAGE_LOCK)),
);
// src/version.ts reads build-info.json beside itself. Only a build that names its commit
// (CONTRAST_BUILD_COMMIT, as a release does) gets one: otherwise the executable, and the images
// made from it, would change with every commit although the code did not.
Object.assign(assets, assetFiles);
if (process.env.CONTRAST_BUILD_COMMIT) {
  writeFileSync(join(work, 'build-info.json'), buildInfoJson());
  assets['src/build-info.json'] = join(work, 'build-info.json');
}
log(`${Object.keys(assets).length} assets: ${Object.keys(assets).join(', ')}`);
const blob = join(work, 'sea-prep.blob');
writeFileSync(
  join(work, 'sea-config.json'),
  JSON.stringify(
    {
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      useCodeCache: true,
      assets,
    },
    null,
    2,
  ),
);
// V8 seeds its code cache with a random number; a fixed seed makes the cache (and so the
// executable) reproducible. V8 leaves --random-seed out of the flag hash that a code cache is
// checked against, so the cache is still accepted when the executable runs without it.
execFileSync(process.execPath, ['--random-seed=1', '--experimental-sea-config', join(work, 'sea-config.json')], {
  stdio: ['ignore', 'ignore', 'inherit'],
});

const stage = join(work, 'archive');
mkdirSync(stage, { recursive: true });
const exe = join(stage, os === 'windows' ? 'kubectl-contrast.exe' : 'kubectl-contrast');
copyFileSync(process.execPath, exe);
chmodSync(exe, 0o755);
if (os === 'linux' && process.env.CONTRAST_SEA_STRIP !== '0') {
  try {
    execFileSync('strip', [exe], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch {
    log('strip is not available; the executable keeps its symbols');
  }
}
if (os === 'darwin') execFileSync('codesign', ['--remove-signature', exe]);
log('injecting the blob with postject');
const postject = join(root, 'node_modules', 'postject', 'dist', 'cli.js');
execFileSync(
  process.execPath,
  [
    postject,
    exe,
    'NODE_SEA_BLOB',
    blob,
    '--sentinel-fuse',
    'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
    ...(os === 'darwin' ? ['--macho-segment-name', 'NODE_SEA'] : []),
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
if (os === 'darwin') execFileSync('codesign', ['--sign', '-', exe]);
copyFileSync(join(root, 'LICENSE'), join(stage, 'LICENSE'));
copyFileSync(join(root, 'NOTICE'), join(stage, 'NOTICE'));
// kubectl's plugin completion looks for kubectl_complete-contrast on PATH; krew links only
// `bin`, so docs/krew.md says how to link this one too.
const completion = join(stage, 'kubectl_complete-contrast');
copyFileSync(join(root, 'bin', 'kubectl_complete-contrast'), completion);
for (const [name, mode] of [
  ['LICENSE', 0o644],
  ['NOTICE', 0o644],
  ['kubectl_complete-contrast', 0o755],
])
  chmodSync(join(stage, name), mode);

log(`packing ${archiveName}`);
const archive = join(out, archiveName);
const tar = join(work, 'archive.tar');
const names = readdirSync(stage).sort();
execFileSync('tar', [
  '--sort=name',
  '--owner=0',
  '--group=0',
  '--numeric-owner',
  '--mtime=@0',
  '--format=gnu',
  '-cf',
  tar,
  '-C',
  stage,
  ...names,
]);
execFileSync('sh', ['-c', 'gzip -n -9 -c "$1" > "$2"', 'gzip', tar, archive]);
const sha256 = createHash('sha256').update(readFileSync(archive)).digest('hex');
writeFileSync(`${archive}.sha256`, `${sha256}  ${archiveName}\n`);
rmSync(tar);

// The krew manifest, from the template and the archives themselves (this build's and any other
// platform's archive placed in dist-sea/ for a release).
const version = `v${pkg.version}`;
let text = readFileSync(join(root, 'krew-manifest.yaml'), 'utf8');
for (const name of readdirSync(out)
  .filter((n) => /^kubectl-contrast-[a-z0-9]+-[a-z0-9]+\.tar\.gz$/.test(n))
  .sort()) {
  const [, archiveOs, archiveArch] = /^kubectl-contrast-([a-z0-9]+)-([a-z0-9]+)\.tar\.gz$/.exec(name);
  const exe = archiveOs === 'windows' ? 'kubectl-contrast.exe' : 'kubectl-contrast';
  text = updateKrewManifest(text, {
    version,
    os: archiveOs,
    arch: archiveArch,
    bin: exe,
    sha256: createHash('sha256')
      .update(readFileSync(join(out, name)))
      .digest('hex'),
    uri: `https://github.com/kubectl-contrast/kubectl-contrast/releases/download/${version}/${name}`,
    files: [
      { from: exe, to: '.' },
      { from: 'LICENSE', to: '.' },
      { from: 'NOTICE', to: '.' },
      { from: 'kubectl_complete-contrast', to: '.' },
    ],
  });
}
const problems = validateKrewManifest((await import('yaml')).parse(text), 'contrast.yaml');
if (problems.length > 0) throw new Error(`the krew manifest is not valid:\n${problems.join('\n')}`);
const manifestPath = join(out, 'contrast.yaml');
writeFileSync(
  manifestPath,
  `# Written by \`npm run package\` from krew-manifest.yaml and the archives in dist-sea/.\n${text.replace(/^(#[^\n]*\n)*/, '')}`,
);
log(
  `done: ${relative(root, archive)} (${(statSync(archive).size / 1e6).toFixed(1)} MB, sha256 ${sha256}); krew manifest ${relative(root, manifestPath)}`,
);
process.stdout.write(`${archive}\n`);
