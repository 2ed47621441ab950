/**
 * The zstd decoder (src/images/zstd.ts) against independent output: Debian's `zstd` CLI
 * compresses fixtures at several levels and modes (long window, no checksum, no content size,
 * several frames), and the decoder must give back exactly the input, however the compressed
 * bytes are cut into chunks. Truncated, corrupted and out-of-bounds frames must be refused with
 * a ZstdError, never a crash or a hang. Then zstd layers through the layer scan, on the scan
 * thread and on the main thread, and from a registry.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { buildImage, buildTar, OciLayoutWriter, type BuiltLayer } from '../../src/images/oci-build.js';
import { MediaType, sha256Digest } from '../../src/images/image-manifest.js';
import { ImageResolver } from '../../src/images/index.js';
import { findPasswdAndGroup } from '../../src/images/rootfs.js';
import { setLayerScanPlacement } from '../../src/images/scan-thread.js';
import { MAX_WINDOW, Xxh64, ZstdDecoder, ZstdError } from '../../src/images/zstd.js';
import { pushLayout, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { GROUP, PASSWD, tempDir } from './fixtures.js';

const zstd = (input: Buffer, ...args: string[]): Buffer =>
  execFileSync('zstd', ['-q', '-c', ...args], { input, maxBuffer: 256 * 1024 * 1024 });

/** Decode with the given chunk sizes (cycled); the output and the number of frames. */
function decode(data: Buffer, sizes: number[] = [65536]): { out: Buffer; frames: number } {
  const parts: Buffer[] = [];
  const d = new ZstdDecoder((b) => {
    parts.push(Buffer.from(b));
    return true;
  });
  let pos = 0;
  for (let i = 0; pos < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    d.push(data.subarray(pos, pos + n));
    pos += n;
  }
  d.end();
  return { out: Buffer.concat(parts), frames: d.frames };
}

/** Text, random bytes and long runs mixed, so every block and literal type shows up. */
function mixedData(bytes: number, seed = 1): Buffer {
  const words = 'root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc nobody'.split(' ');
  const out: Buffer[] = [];
  let n = 0;
  let x = seed;
  const rnd = (k: number): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % k;
  };
  while (n < bytes) {
    const kind = rnd(10);
    let b: Buffer;
    if (kind < 4) b = randomBytes(1 + rnd(2000));
    else if (kind < 8) b = Buffer.from(Array.from({ length: 1 + rnd(300) }, () => words[rnd(words.length)]).join(':'));
    else b = Buffer.alloc(1 + rnd(4000), rnd(256));
    out.push(b);
    n += b.length;
  }
  return Buffer.concat(out).subarray(0, bytes);
}

/** A skippable frame (RFC 8878, 3.1.2) with `n` bytes of content. */
function skippable(n: number, variant = 0): Buffer {
  const b = Buffer.alloc(8 + n, 0xab);
  b.writeUInt32LE(0x184d2a50 + variant, 0);
  b.writeUInt32LE(n, 4);
  return b;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('images: zstd decoder (RFC 8878) against the zstd CLI', function () {
  this.timeout(120_000);
  const data = mixedData(1_500_000);

  for (const [name, args] of [
    ['level 1', ['-1']],
    ['level 3 (default)', ['-3']],
    ['level 9', ['-9']],
    ['level 19', ['-19']],
    ['--ultra -22 (128 MiB window)', ['--ultra', '-22']],
    ['--long=27', ['--long=27']],
    ['--no-check (no content checksum)', ['--no-check']],
    ['--no-content-size', ['--no-content-size']],
  ] as [string, string[]][]) {
    it(`decodes ${name} exactly, in any chunking`, () => {
      const z = zstd(data, ...args);
      for (const sizes of [[65536], [1], [7, 4096, 13], [z.length]]) {
        if (sizes[0] === 1 && z.length > 200_000) continue;
        assert.equal(sha(decode(z, sizes).out), sha(data), `chunks ${sizes.join(',')}`);
      }
      assert.equal(sha(decode(z, [1]).out), sha(data)); // byte by byte, once per mode
    });
  }

  it('decodes several frames and skips skippable frames', () => {
    const a = zstd(data.subarray(0, 400_000), '-3');
    const b = zstd(data.subarray(400_000), '-19');
    const joined = Buffer.concat([skippable(10), a, skippable(0, 15), b, skippable(70_000, 3)]);
    const { out, frames } = decode(joined, [5000, 3]);
    assert.equal(sha(out), sha(data));
    assert.equal(frames, 5);
  });

  it('decodes small, empty and repetitive inputs', () => {
    for (const input of [Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(1_000_000, 0), Buffer.from(PASSWD)]) {
      assert.deepEqual(decode(zstd(input)).out, input);
    }
  });

  it('computes XXH64 like the reference (empty input) and as zstd checks it', () => {
    assert.equal(new Xxh64().digestLow32(), 0x51d8e999); // XXH64("") = ef46db3751d8e999
    const z = zstd(data.subarray(0, 100_000));
    const bad = Buffer.from(z);
    bad[bad.length - 1]! ^= 1;
    assert.throws(() => decode(bad), /content checksum mismatch/);
  });

  it('refuses truncated frames', () => {
    const z = zstd(data.subarray(0, 300_000), '-3');
    for (const cut of [1, 4, 5, 8, 20, 1000, Math.floor(z.length / 2), z.length - 4, z.length - 1]) {
      assert.throws(
        () => decode(z.subarray(0, cut)),
        (err: Error) => err instanceof ZstdError && /truncated|malformed/.test(err.message),
        `cut at ${cut}`,
      );
    }
  });

  it('refuses corrupted frames or decodes them unchanged, never crashes', () => {
    const input = data.subarray(0, 60_000);
    const z = zstd(input, '-3');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: z.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, mask) => {
        const bad = Buffer.from(z);
        bad[at]! ^= mask;
        try {
          const { out } = decode(bad);
          assert.equal(sha(out), sha(input), 'a corrupted frame decoded to something else');
        } catch (err) {
          assert.ok(err instanceof ZstdError, `${(err as Error).name}: ${(err as Error).message}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses random bytes after the magic number with a ZstdError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (tail) => {
        const bytes = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.from(tail)]);
        try {
          decode(bytes, [17]);
        } catch (err) {
          assert.ok(err instanceof ZstdError, `${(err as Error).name}: ${(err as Error).message}`);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a window above the limit, a dictionary, a reserved bit and a foreign magic', () => {
    const header = (descriptor: number, ...rest: number[]) =>
      Buffer.from([0x28, 0xb5, 0x2f, 0xfd, descriptor, ...rest]);
    // Window_Descriptor exponent 18: 2^28 bytes, twice the limit.
    assert.throws(
      () => decode(header(0x00, 18 << 3)),
      (e: Error) => e.message.includes(String(MAX_WINDOW)),
    );
    assert.throws(() => decode(header(0x01, 0x50, 7)), /dictionary \(ID 7\)/);
    assert.throws(() => decode(header(0x08, 0x50)), /reserved bit/);
    assert.throws(() => decode(Buffer.from('not zstd at all')), /not a zstd frame/);
    assert.throws(() => decode(Buffer.alloc(0)), /no zstd frame/);
  });

  it('stops when the consumer says so', () => {
    const z = zstd(data, '-3');
    let calls = 0;
    const d = new ZstdDecoder(() => ++calls < 2);
    d.push(z);
    d.end();
    assert.equal(calls, 2);
  });
});

/** A zstd layer (OCI media type) from the CLI. */
function zstdLayer(tarBytes: Buffer, ...args: string[]): BuiltLayer {
  const blob = zstd(tarBytes, ...args);
  return {
    blob,
    diffId: sha256Digest(tarBytes),
    descriptor: { mediaType: MediaType.ociLayerZstd, digest: sha256Digest(blob), size: blob.length },
  };
}

describe('images: zstd layers', function () {
  this.timeout(120_000);
  const filler = mixedData(3_000_000, 5);
  const base = buildTar([
    { path: 'bin/app', content: filler },
    { path: 'etc/passwd', content: PASSWD },
    { path: 'etc/group', content: GROUP },
  ]);

  for (const placement of ['thread', 'main'] as const) {
    it(`finds passwd and group in a zstd layer (scan on the ${placement === 'thread' ? 'scan' : 'main'} thread)`, async () => {
      setLayerScanPlacement(placement);
      try {
        const layer = zstdLayer(base, '-19', '--long=27');
        const result = await findPasswdAndGroup(1, () => ({
          digest: layer.descriptor.digest,
          mediaType: layer.descriptor.mediaType,
          open: async () => Readable.from([layer.blob.subarray(0, 1000), layer.blob.subarray(1000)]),
        }));
        assert.equal(result.passwd, PASSWD);
        assert.equal(result.group, GROUP);
        assert.equal(result.bytesRead, layer.blob.length);
      } finally {
        setLayerScanPlacement('thread');
      }
    });

    it(`refuses a truncated zstd layer, naming it (scan on the ${placement === 'thread' ? 'scan' : 'main'} thread)`, async () => {
      setLayerScanPlacement(placement);
      try {
        const layer = zstdLayer(buildTar([{ path: 'bin/app', content: filler }]));
        await assert.rejects(
          findPasswdAndGroup(1, () => ({
            digest: layer.descriptor.digest,
            open: async () => Readable.from([layer.blob.subarray(0, layer.blob.length - 100)]),
          })),
          (err: Error) => err.message.includes(layer.descriptor.digest) && /zstd: truncated/.test(err.message),
        );
      } finally {
        setLayerScanPlacement('thread');
      }
    });
  }

  describe('from a registry', () => {
    let reg: TestRegistry;
    const tmp = tempDir();
    before(async () => {
      reg = await startRegistry();
      const img = buildImage({
        layers: [zstdLayer(base, '-3'), zstdLayer(buildTar([{ path: 'opt/x', content: filler }]), '-9')],
        config: { User: 'app', Cmd: ['/bin/app'] },
      });
      new OciLayoutWriter().add(img.descriptor, img.blobs, 'z').write(tmp.path);
      await pushLayout(tmp.path, 'z', `${reg.host}/team/zstd:1`);
    });
    after(async () => {
      await reg?.stop();
      tmp.remove();
    });

    it('resolves an image whose layers are zstd-compressed', async () => {
      const r = new ImageResolver({ insecureRegistries: [reg.host], cacheDir: false, progress: false });
      const res = await r.resolve(`${reg.host}/team/zstd:1`);
      assert.equal(res.passwd, PASSWD);
      assert.equal(res.group, GROUP);
      assert.equal(r.stats.layersScanned, 2);
    });
  });
});
