/** The release version; kept equal to package.json by test/version.test.ts. */
import { readFileSync } from 'node:fs';

export const VERSION = '0.1.0';

/**
 * The commit the build was made from: `build-info.json` beside this module, written by
 * scripts/copy-assets.mjs into dist/ ($CONTRAST_BUILD_COMMIT, else `git rev-parse HEAD`) and by
 * scripts/package-sea.mjs into the single executable when $CONTRAST_BUILD_COMMIT is set.
 * "unknown" when run from the sources or built without either.
 */
export function buildCommit(): string {
  try {
    const info = JSON.parse(readFileSync(new URL('./build-info.json', import.meta.url), 'utf8')) as {
      commit?: unknown;
    };
    return typeof info.commit === 'string' && /^[0-9a-f]{7,64}$/.test(info.commit) ? info.commit : 'unknown';
  } catch {
    return 'unknown';
  }
}
