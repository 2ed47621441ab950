// The build's build-info.json (read by src/version.ts): the commit it was made from,
// $CONTRAST_BUILD_COMMIT or `git rev-parse HEAD`, "unknown" without either.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export function buildInfoJson() {
  let commit = process.env.CONTRAST_BUILD_COMMIT;
  if (!commit) {
    try {
      commit = execFileSync('git', ['rev-parse', 'HEAD'], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        stdio: ['ignore', 'pipe', 'ignore'],
      })
        .toString()
        .trim();
    } catch {
      commit = 'unknown';
    }
  }
  return `${JSON.stringify({ commit })}\n`;
}
