/** The workspace's `manifest.json` file (its schema is src/coordinator/manifest.ts). */
import { readFileSync } from 'node:fs';
import { UserError } from '../util/errors.js';
import { validateManifest, type Manifest } from '../coordinator/manifest.js';

export const MANIFEST_FILE = 'manifest.json';

/** Load and validate a manifest; undefined when the file does not exist. */
export function readManifest(path: string): Manifest | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`cannot read manifest: ${(err as Error).message}`, { file: path });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UserError(`manifest is not valid JSON: ${(err as Error).message}`, { file: path });
  }
  return validateManifest(value, path);
}
