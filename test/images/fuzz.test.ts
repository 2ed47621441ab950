/**
 * Fuzzing (fast-check, bounded) of the parsers that read what a registry or an image sends:
 * manifests and indexes, image configs, WWW-Authenticate challenges, layout indexes, tar
 * numeric fields and PAX records. Hostile input must give a plain Error with a message, never a
 * TypeError/RangeError from deep inside, and never hang.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseManifestDocument } from '../../src/images/image-manifest.js';
import { extractImageConfig } from '../../src/images/index.js';
import { parseChallenge } from '../../src/images/registry.js';
import { readLayoutIndex } from '../../src/images/oci-layout.js';
import { parseNumeric, parsePaxRecords } from '../../src/images/tar-scan.js';

const RUNS = 400;

function onlyPlainErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof Error, `threw a non-Error: ${String(err)}`);
    assert.ok(
      !(err instanceof TypeError) && !(err instanceof RangeError),
      `crashed with ${(err as Error).name}: ${(err as Error).message}`,
    );
    assert.ok((err as Error).message.length > 0);
  }
}

const jsonish = fc.jsonValue({ maxDepth: 4 });
const descriptorish = fc.record(
  {
    mediaType: fc.oneof(
      fc.string(),
      fc.constantFrom('application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json'),
    ),
    digest: fc.oneof(fc.string(), fc.constant(`sha256:${'a'.repeat(64)}`)),
    size: fc.oneof(fc.integer(), fc.double(), fc.string()),
    platform: fc.option(fc.record({ os: fc.string(), architecture: fc.string(), variant: fc.option(fc.string()) }), {
      nil: undefined,
    }),
  },
  { requiredKeys: [] },
);
const manifestish = fc.record(
  {
    schemaVersion: fc.oneof(fc.constant(2), fc.constant(1), jsonish),
    mediaType: fc.oneof(
      fc.string(),
      fc.constantFrom(
        'application/vnd.oci.image.index.v1+json',
        'application/vnd.docker.distribution.manifest.list.v2+json',
      ),
    ),
    config: fc.oneof(descriptorish, jsonish),
    layers: fc.oneof(fc.array(descriptorish, { maxLength: 4 }), jsonish),
    manifests: fc.oneof(fc.array(descriptorish, { maxLength: 4 }), jsonish),
  },
  { requiredKeys: [] },
);

describe('fuzzing registry and image parsers', function () {
  this.timeout(120_000);

  it('parseManifestDocument: random bytes, JSON values and near-manifests', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 256 }),
          jsonish.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
          manifestish.map((m) => Buffer.from(JSON.stringify(m))),
        ),
        fc.option(fc.string(), { nil: undefined }),
        (bytes, hint) => {
          onlyPlainErrors(() => parseManifestDocument(bytes, hint));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('extractImageConfig: random config documents', () => {
    const configish = fc.record(
      {
        config: fc.dictionary(
          fc.constantFrom('Entrypoint', 'Cmd', 'Env', 'User', 'WorkingDir', 'Volumes', 'Other'),
          jsonish,
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(jsonish, configish), (doc) => onlyPlainErrors(() => extractImageConfig(doc))),
      { numRuns: RUNS },
    );
  });

  // Adversarial headers would hang a backtracking regex; the suite's timeout is the guard.
  it('parseChallenge: random and adversarial WWW-Authenticate headers', () => {
    const header = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.constant(`Bearer ${'a="'.repeat(2000)}`),
      fc.constant(`Bearer ${'x=\\\\'.repeat(2000)}`),
    );
    fc.assert(
      fc.property(header, (h) => onlyPlainErrors(() => parseChallenge(h))),
      { numRuns: RUNS },
    );
  });

  it('readLayoutIndex: random index.json content', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          manifestish.map((m) => Buffer.from(JSON.stringify(m))),
        ),
        async (bytes) => {
          try {
            await readLayoutIndex(Buffer.from(bytes), 'fuzz/index.json');
          } catch (err) {
            assert.ok(
              err instanceof Error && !(err instanceof TypeError) && !(err instanceof RangeError),
              `crashed: ${String(err)}`,
            );
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('tar numeric fields and PAX records: random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 64 }), fc.nat(50), (bytes, start) => {
        const buf = Buffer.from(bytes);
        onlyPlainErrors(() => parseNumeric(buf, Math.min(start, buf.length - 12), 12));
        onlyPlainErrors(() => parsePaxRecords(buf));
      }),
      { numRuns: RUNS },
    );
  });
});
