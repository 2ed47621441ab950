import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { buildTar, type LayerEntry } from '../../src/images/oci-build.js';
import { sha256Digest } from '../../src/images/image-manifest.js';
import {
  EARLY_START_BYTES,
  findPasswdAndGroup,
  normaliseEntryPath,
  sharedLayerScans,
  type LayerScanMemo,
  type LayerScanResult,
} from '../../src/images/rootfs.js';
import { GROUP, PASSWD } from './fixtures.js';

/** Layers given bottom first; returns the result and which layers were opened (one at a time unless `lookahead`). */
async function scan(layers: Buffer[], lookahead = 1) {
  const opened: number[] = [];
  const result = await findPasswdAndGroup(
    layers.length,
    (i) => ({
      open: async () => {
        opened.push(i);
        return Readable.from([layers[i]!]);
      },
    }),
    { lookahead },
  );
  return { result, opened };
}

const gz = (entries: LayerEntry[], keepOrder = false): Buffer => gzipSync(buildTar(entries, keepOrder));
const base = gz([
  { path: 'etc/passwd', content: PASSWD },
  { path: 'etc/group', content: GROUP },
  { path: 'bin/sh', content: 'x' },
]);

describe('images: passwd and group from layers', () => {
  it('normalises tar paths and refuses traversal', () => {
    assert.equal(normaliseEntryPath('./etc/passwd'), 'etc/passwd');
    assert.equal(normaliseEntryPath('/etc//./passwd'), 'etc/passwd');
    assert.equal(normaliseEntryPath('etc/../passwd'), undefined);
  });

  it('reads both files from a single layer', async () => {
    const { result } = await scan([base]);
    assert.equal(result.passwd, PASSWD);
    assert.equal(result.group, GROUP);
  });

  it('takes the top-most version and never opens lower layers once both are known', async () => {
    const top = gz([
      { path: 'etc/passwd', content: 'top\n' },
      { path: 'etc/group', content: 'topg\n' },
    ]);
    const { result, opened } = await scan([base, gz([{ path: 'x', content: '1' }]), top]);
    assert.deepEqual(opened, [2]);
    assert.equal(result.passwd, 'top\n');
    assert.equal(result.group, 'topg\n');
  });

  it('settles each file independently', async () => {
    const mid = gz([{ path: 'etc/group', content: 'midg\n' }]);
    const { result, opened } = await scan([base, mid, gz([{ path: 'etc/hosts', content: 'h' }])]);
    assert.deepEqual(opened, [2, 1, 0]);
    assert.equal(result.passwd, PASSWD);
    assert.equal(result.group, 'midg\n');
  });

  it('honours a whiteout of /etc/passwd in an upper layer', async () => {
    const { result, opened } = await scan([base, gz([{ path: 'etc/.wh.passwd', content: '' }])]);
    assert.deepEqual(opened, [1, 0]);
    assert.equal(result.passwd, undefined);
    assert.equal(result.group, GROUP);
  });

  it('a file re-added above a whiteout wins', async () => {
    const { result } = await scan([
      base,
      gz([{ path: 'etc/.wh.passwd', content: '' }]),
      gz([{ path: 'etc/passwd', content: 'again\n' }]),
    ]);
    assert.equal(result.passwd, 'again\n');
  });

  it('an opaque /etc hides lower files but keeps files of its own layer, whatever the entry order', async () => {
    for (const order of [
      [
        { path: 'etc/.wh..wh..opq', content: '' },
        { path: 'etc/group', content: 'own\n' },
      ],
      [
        { path: 'etc/group', content: 'own\n' },
        { path: 'etc/.wh..wh..opq', content: '' },
      ],
    ] as LayerEntry[][]) {
      const { result, opened } = await scan([base, gz(order, true)]);
      assert.deepEqual(opened, [1]);
      assert.equal(result.passwd, undefined);
      assert.equal(result.group, 'own\n');
    }
  });

  it('a whiteout of /etc itself or an opaque root hides lower files', async () => {
    assert.equal((await scan([base, gz([{ path: '.wh.etc', content: '' }])])).result.passwd, undefined);
    assert.equal((await scan([base, gz([{ path: '.wh..wh..opq', content: '' }])])).result.group, undefined);
  });

  it('treats a symlinked passwd as absent and resolves a hard link to group', async () => {
    const { result } = await scan([
      base,
      gz(
        [
          { path: 'etc/group', content: GROUP },
          { path: 'etc/passwd', type: 'hardlink', target: 'etc/group' },
        ],
        true,
      ),
    ]);
    assert.equal(result.passwd, GROUP);
    const sym = await scan([base, gz([{ path: 'etc/passwd', type: 'symlink', target: '/usr/lib/passwd' }])]);
    assert.equal(sym.result.passwd, undefined);
    assert.equal(sym.result.notes.length, 1);
  });

  it('reads uncompressed layers too and reports missing files as undefined', async () => {
    const { result } = await scan([buildTar([{ path: 'etc/passwd', content: PASSWD }])]);
    assert.equal(result.passwd, PASSWD);
    assert.equal(result.group, undefined);
  });

  it('stops reading a big layer as soon as the files are found', async () => {
    const filler = Array.from({ length: 40 }, (_, i) => ({ path: `zz/file${i}`, content: randomBytes(256 * 1024) }));
    const big = gz([{ path: 'etc/passwd', content: PASSWD }, { path: 'etc/group', content: GROUP }, ...filler]);
    const chunks = Array.from({ length: Math.ceil(big.length / 65536) }, (_, i) =>
      big.subarray(i * 65536, (i + 1) * 65536),
    );
    let served = 0;
    const source = Readable.from(
      (function* () {
        for (const c of chunks) {
          served++;
          yield c;
        }
      })(),
    );
    const result = await findPasswdAndGroup(1, () => ({ open: async () => source }));
    assert.equal(result.passwd, PASSWD);
    assert.equal(result.group, GROUP);
    assert.ok(result.bytesRead < big.length / 4, `read ${result.bytesRead} of ${big.length} bytes`);
    assert.ok(served < chunks.length / 4, `pulled ${served} of ${chunks.length} chunks`);
  });

  it('shares the scan of a common layer between images through the memo', async () => {
    const memo = new Map<string, Promise<LayerScanResult>>();
    const share: LayerScanMemo = (key, scan, signal) => {
      if (!memo.has(key)) memo.set(key, scan(signal));
      return memo.get(key)!;
    };
    let opens = 0;
    const layer = (data: Buffer, name: string) => ({
      digest: sha256Digest(data),
      open: async () => {
        opens++;
        void name;
        return Readable.from([data]);
      },
    });
    const top1 = gz([{ path: 'app/one', content: '1' }]);
    const top2 = gz([{ path: 'app/two', content: '2' }]);
    const [r1, r2] = await Promise.all([
      findPasswdAndGroup(2, (i) => (i === 0 ? layer(base, 'base') : layer(top1, 'top1')), { memo: share }),
      findPasswdAndGroup(2, (i) => (i === 0 ? layer(base, 'base') : layer(top2, 'top2')), { memo: share }),
    ]);
    assert.equal(opens, 3);
    assert.equal(r1.passwd, PASSWD);
    assert.equal(r2.group, GROUP);
    assert.equal(r1.layersScanned + r2.layersScanned, 3);
  });

  it('rejects a layer whose digest does not match when read completely', async () => {
    await assert.rejects(
      findPasswdAndGroup(1, () => ({
        open: async () => Readable.from([gz([{ path: 'x', content: 'y' }])]),
        digest: `sha256:${'0'.repeat(64)}`,
      })),
      /digest/,
    );
  });

  it('reads the next lower layer meanwhile (lookahead 2) and abandons it when the upper one settles both', async () => {
    const filler = Array.from({ length: 30 }, (_, i) => ({ path: `zz/f${i}`, content: randomBytes(256 * 1024) }));
    const lower = gz([{ path: 'etc/passwd', content: 'lower\n' }, ...filler]);
    const top = gz([
      { path: 'etc/passwd', content: 'top\n' },
      { path: 'etc/group', content: 'topg\n' },
    ]);
    const opened: number[] = [];
    let lowerDestroyed = false;
    const layers = [base, lower, top];
    const result = await findPasswdAndGroup(3, (i) => ({
      open: async () => {
        opened.push(i);
        const chunks =
          i === 1 ? Array.from({ length: 64 }, (_, k) => lower.subarray(k * 65536, (k + 1) * 65536)) : [layers[i]!];
        const src = Readable.from(chunks.filter((c) => c.length > 0));
        src.on('close', () => {
          if (i === 1) lowerDestroyed = !src.readableEnded;
        });
        return src;
      },
    }));
    assert.equal(result.passwd, 'top\n');
    assert.equal(result.group, 'topg\n');
    assert.deepEqual(opened.sort(), [1, 2]);
    await new Promise((r) => setImmediate(r));
    assert.ok(lowerDestroyed, 'the abandoned lower layer was read to its end');
  });

  it('takes a layer in chunks of any size (gathered for the scan thread) with the same files and digest check', async () => {
    const filler = Array.from({ length: 6 }, (_, i) => ({ path: `zz/f${i}`, content: randomBytes(200 * 1024) }));
    const layer = gz([...filler, { path: 'etc/passwd', content: PASSWD }, { path: 'etc/group', content: GROUP }], true);
    const sizes = [1, 3, 1000, 70_000, 300_000, 262_144, 5];
    const pieces = (data: Buffer): Buffer[] => {
      const out: Buffer[] = [];
      for (let at = 0, k = 0; at < data.length; k++) {
        const n = sizes[k % sizes.length]!;
        out.push(data.subarray(at, at + n));
        at += n;
      }
      return out;
    };
    const read = (data: Buffer, digest: string) =>
      findPasswdAndGroup(1, () => ({ digest, open: async () => Readable.from(pieces(data)) }));
    const result = await read(layer, sha256Digest(layer));
    assert.equal(result.passwd, PASSWD);
    assert.equal(result.group, GROUP);
    assert.equal(result.bytesRead, layer.length);
    // One byte changed after the files: they are found, but the digest of the whole blob is wrong.
    const tampered = Buffer.from(layer);
    tampered[tampered.length - 3]! ^= 1;
    await assert.rejects(read(tampered, sha256Digest(layer)), /digest|gzip/);
  });

  it('starts the next layer when the running one is near its end (size known), else when it ends', async () => {
    const top = gz([{ path: 'opt/big', content: randomBytes(EARLY_START_BYTES * 3) }]);
    const eventually = async (what: string, cond: () => boolean): Promise<void> => {
      for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
      assert.ok(cond(), what);
    };
    for (const sizeKnown of [true, false]) {
      const feed = new PassThrough();
      let baseOpened = false;
      const run = findPasswdAndGroup(
        2,
        (i) =>
          i === 1
            ? { ...(sizeKnown ? { size: top.length } : {}), open: async () => feed }
            : {
                open: async () => {
                  baseOpened = true;
                  return Readable.from([base]);
                },
              },
        { lookahead: 1 },
      );
      const cut = top.length - EARLY_START_BYTES - 65536;
      feed.write(top.subarray(0, cut - EARLY_START_BYTES));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(baseOpened, false, 'opened with more than EARLY_START_BYTES left');
      feed.write(top.subarray(cut - EARLY_START_BYTES, cut + 131072));
      if (sizeKnown) await eventually('the lower layer was opened before the upper one ended', () => baseOpened);
      else {
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(baseOpened, false, 'opened early without a size');
      }
      feed.end(top.subarray(cut + 131072));
      const result = await run;
      assert.equal(result.passwd, PASSWD);
      assert.equal(result.group, GROUP);
      assert.equal(baseOpened, true);
    }
  });

  it('starts the next layer at once when the running one is no larger than EARLY_START_BYTES', async () => {
    const top = gz([{ path: 'opt/small', content: randomBytes(1024) }]);
    assert.ok(top.length <= EARLY_START_BYTES);
    const feed = new PassThrough();
    let baseOpened = false;
    const run = findPasswdAndGroup(
      2,
      (i) =>
        i === 1
          ? { size: top.length, open: async () => feed }
          : {
              open: async () => {
                baseOpened = true;
                return Readable.from([base]);
              },
            },
      { lookahead: 1 },
    );
    for (let i = 0; i < 500 && !baseOpened; i++) await new Promise((r) => setTimeout(r, 2));
    assert.equal(baseOpened, true, 'the lower layer waited for a small upper layer that had not sent a byte');
    feed.end(top);
    const result = await run;
    assert.equal(result.passwd, PASSWD);
    assert.equal(result.group, GROUP);
  });

  it('reports its tail once the lowest layer has started and every running one is near its end', async () => {
    const top = gz([{ path: 'opt/big', content: randomBytes(EARLY_START_BYTES * 3) }]);
    const settle = () => new Promise((r) => setTimeout(r, 30));
    for (const sizeKnown of [true, false]) {
      const feed = new PassThrough();
      let tails = 0;
      const run = findPasswdAndGroup(
        2,
        (i) =>
          i === 1
            ? { ...(sizeKnown ? { size: top.length } : {}), open: async () => feed }
            : { size: base.length, open: async () => Readable.from([base]) },
        { onTail: () => tails++ },
      );
      // Both layers run at once (lookahead 2); the base layer finishes, the top one has far to go.
      // (Written in pieces of a socket read's size.)
      const send = (from: number, to: number): void => {
        for (let at = from; at < to; at += 65536) feed.write(top.subarray(at, Math.min(to, at + 65536)));
      };
      const cut = top.length - EARLY_START_BYTES - 65536;
      send(0, cut);
      await settle();
      assert.equal(tails, 0, 'a tail with more than EARLY_START_BYTES left to read');
      send(cut, cut + 131072);
      await settle();
      assert.equal(tails, sizeKnown ? 1 : 0, sizeKnown ? 'no tail near the end' : 'a tail without a size');
      feed.end(top.subarray(cut + 131072));
      const result = await run;
      assert.equal(result.passwd, PASSWD);
      assert.equal(tails, 1, 'exactly one tail');
    }
  });

  it('a shared scan stops only when every caller gave it up', async () => {
    const memo = sharedLayerScans();
    let aborted = false;
    let finish: (r: LayerScanResult) => void = () => undefined;
    const scan = (signal: AbortSignal) =>
      new Promise<LayerScanResult>((resolve, reject) => {
        finish = resolve;
        signal.addEventListener('abort', () => {
          aborted = true;
          reject(new Error('aborted'));
        });
      });
    const a = new AbortController();
    const b = new AbortController();
    const pa = memo('k', scan, a.signal);
    const pb = memo('k', scan, b.signal);
    a.abort(new Error('a gave up'));
    await assert.rejects(pa, /a gave up/);
    assert.equal(aborted, false);
    finish({ files: {}, complete: true, notes: [], bytesRead: 1 });
    assert.equal((await pb).bytesRead, 1);
    // Both give up: the scan is stopped and forgotten, a later caller starts again.
    const c = new AbortController();
    const d = new AbortController();
    const pc = memo('k2', scan, c.signal);
    const pd = memo('k2', scan, d.signal);
    c.abort(new Error('c'));
    d.abort(new Error('d'));
    await assert.rejects(pc);
    await assert.rejects(pd);
    assert.equal(aborted, true);
    let started = 0;
    const again = memo('k2', (s) => (started++, scan(s)), new AbortController().signal);
    finish({ files: {}, complete: true, notes: [], bytesRead: 2 });
    assert.equal((await again).bytesRead, 2);
    assert.equal(started, 1);
  });
});
