// Runs the CLI of the node build: dist/cli.cjs, the bundle `npm run build` makes
// (scripts/bundle-cli.mjs), with the V8 code cache the build made by running it once. Node 20
// has no compile cache for ES modules: loading and compiling dist/'s modules cold was a fifth of
// a small `generate`. The cache starts with the SHA-256 of the bundle it belongs to: V8 itself
// checks only the length of the source, so a cache of another bundle is never handed to it. A
// cache V8 refuses (another Node) only costs the compile it would have saved.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, Script } from 'node:vm';

const BUNDLE = fileURLToPath(new URL('../dist/cli.cjs', import.meta.url));
export const CODE_CACHE = `${BUNDLE}.cache`;
const DIGEST_BYTES = 32;

function load() {
  if (!existsSync(BUNDLE)) {
    process.stderr.write(
      `kubectl-contrast: the CLI is not built; run \`npm run build\` in ${fileURLToPath(new URL('..', import.meta.url))}\n`,
    );
    process.exit(1);
  }
  const bytes = readFileSync(BUNDLE);
  const digest = createHash('sha256').update(bytes).digest();
  let cachedData;
  try {
    const cache = readFileSync(CODE_CACHE);
    if (cache.subarray(0, DIGEST_BYTES).equals(digest)) cachedData = cache.subarray(DIGEST_BYTES);
  } catch {
    // no cache: compile
  }
  // The bundle is a function expression of the CommonJS module arguments (so that line and
  // column numbers, for stack traces and coverage, are those of the file).
  const script = new Script(bytes.toString('utf8'), {
    filename: BUNDLE,
    cachedData,
    // The build turns import() into require; one left in a dependency loads as in the main context.
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(BUNDLE), module, BUNDLE, dirname(BUNDLE));
  return { main: module.exports.main, script, digest };
}

/** Run the CLI with these arguments; resolves to its exit code. */
export async function runCli(args) {
  return load().main(args);
}

/** For the build: run the CLI once, then write the code cache of everything that run compiled. */
export async function runCliWritingCodeCache(args) {
  const { main, script, digest } = load();
  const code = await main(args);
  if (code === 0) writeFileSync(CODE_CACHE, Buffer.concat([digest, script.createCachedData()]));
  return code;
}
