/**
 * Every attestation and aTLS check id that the source can report is named by some test (as the
 * expected check of a refusal), so no check exists that a test has never seen fail.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/cli.js';

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const CHECK_ID = /'((?:snp|tdx|sim|atls|x509|crl|asn1|policy|evidence)\.[a-z0-9.]+)'/g;

describe('attestation check ids', () => {
  it('every check id in src/attestation and src/atls is exercised by a test', () => {
    const ids = new Map<string, string>();
    for (const f of [...files(join(REPO_ROOT, 'src', 'attestation')), ...files(join(REPO_ROOT, 'src', 'atls'))]) {
      for (const m of readFileSync(f, 'utf8').matchAll(CHECK_ID))
        if (!ids.has(m[1]!)) ids.set(m[1]!, f.slice(REPO_ROOT.length));
    }
    assert.ok(ids.size > 50, `only ${ids.size} check ids found: the pattern no longer matches the source`);
    const self = join(REPO_ROOT, 'test', 'meta');
    // A test names a check as 'id' or inside a regular expression (/id/ with escaped dots).
    const tests = files(join(REPO_ROOT, 'test'))
      .filter((f) => !f.startsWith(self))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n')
      .replaceAll('\\.', '.');
    const unexercised = [...ids].filter(([id]) => !tests.includes(id)).map(([id, f]) => `${id} (${f})`);
    assert.deepEqual(unexercised, [], 'check ids that no test expects');
  });
});
