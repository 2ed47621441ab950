import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import fc from 'fast-check';
import { buildTar } from '../../src/images/oci-build.js';
import { TarScanner, type TarHeader } from '../../src/images/tar-scan.js';
import { tempDir } from './fixtures.js';

/** Feed `data` in chunks of the given sizes (cycled); collect every header and the wanted contents. */
function scan(data: Buffer, sizes: number[], want = (h: TarHeader) => h.name.endsWith('passwd')) {
  const headers: TarHeader[] = [];
  const contents = new Map<string, string>();
  const s = new TarScanner({
    entry: (h) => {
      headers.push(h);
      return want(h) ? 1 << 20 : undefined;
    },
    content: (h, d) => contents.set(h.name, d.toString('utf8')),
  });
  let pos = 0;
  for (let i = 0; pos < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    s.push(data.subarray(pos, pos + n));
    pos += n;
  }
  s.end();
  return { headers, contents, finished: s.finished };
}

describe('images: tar scanner', () => {
  let tmp: ReturnType<typeof tempDir>;
  before(() => {
    tmp = tempDir();
  });
  after(() => tmp.remove());

  for (const format of ['gnu', 'pax', 'ustar'] as const) {
    it(`reads GNU tar's ${format} format, including long names`, async () => {
      const root = join(tmp.path, format);
      const deep = `usr/${'long-directory-name/'.repeat(format === 'ustar' ? 5 : 9)}`;
      mkdirSync(join(root, 'etc'), { recursive: true });
      mkdirSync(join(root, deep), { recursive: true });
      writeFileSync(join(root, deep, 'passwd'), 'deep\n');
      writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0::/:/bin/sh\n');
      writeFileSync(join(root, 'big'), Buffer.alloc(100_000, 1));
      const archive = join(tmp.path, `${format}.tar`);
      await execa('tar', [`--format=${format}`, '--sort=name', '-C', root, '-cf', archive, 'big', 'etc', 'usr']);
      const data = readFileSync(archive);
      for (const sizes of [[data.length], [1], [511, 513, 7], [4096]]) {
        const { headers, contents, finished } = scan(data, sizes);
        assert.ok(finished);
        assert.equal(contents.get('etc/passwd'), 'root:x:0:0::/:/bin/sh\n');
        assert.equal(contents.get(`${deep}passwd`), 'deep\n', `long name with chunks ${sizes.join(',')}`);
        assert.ok(headers.some((h) => h.name === 'big' && h.size === 100_000));
      }
    });
  }

  it('delivers contents exactly, whatever the chunking (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ name: fc.stringMatching(/^[a-z]{1,12}$/), size: fc.nat(3000) }), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 5 }),
        (files, sizes) => {
          const unique = [...new Map(files.map((f) => [f.name, f])).values()];
          const entries = unique.map((f, i) => ({ path: `d/${f.name}`, content: Buffer.alloc(f.size, 97 + (i % 26)) }));
          const { contents } = scan(buildTar(entries), sizes, () => true);
          for (const e of entries) assert.equal(contents.get(e.path), e.content.toString('utf8'));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects a corrupted header and a truncated stream', () => {
    const data = buildTar([{ path: 'etc/passwd', content: 'x'.repeat(1000) }]);
    const bad = Buffer.from(data);
    bad[600] = bad[600]! ^ 0xff; // inside the second header (etc/passwd after etc/)
    assert.throws(() => scan(bad, [bad.length]), /checksum/);
    assert.throws(() => scan(data.subarray(0, 1200), [1200]), /truncated/);
  });
});
