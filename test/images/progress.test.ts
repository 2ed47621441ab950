import assert from 'node:assert/strict';
import { Progress } from '../../src/images/progress.js';

describe('images: progress line', () => {
  const sink = () => {
    const written: string[] = [];
    return {
      written,
      out: {
        columns: 80,
        write: (s: string | Uint8Array) => {
          written.push(String(s));
          return true;
        },
      } as never,
    };
  };

  it('draws nothing when disabled (not a TTY)', () => {
    const { written, out } = sink();
    const p = new Progress(false, out, 0);
    const t = p.start('img', 100);
    t.advance(50);
    t.finish();
    p.done();
    assert.deepEqual(written, []);
  });

  it('stays quiet for quick scans and draws one line for long ones, then clears it', async () => {
    const quiet = sink();
    const q = new Progress(true, quiet.out, 60_000);
    q.start('img', 10).advance(5);
    q.done();
    assert.deepEqual(quiet.written, []);

    const { written, out } = sink();
    const p = new Progress(true, out, 0);
    const t = p.start('ghcr.io/x/y:1', 2_000_000);
    t.advance(1_000_000);
    assert.equal(written.length, 1);
    assert.match(written[0]!, /^\rscanning images: 0\/1 done, 1\.0\/2\.0 MB of active layers \(ghcr\.io\/x\/y:1\)/);
    assert.ok(written[0]!.length <= 80);
    t.finish();
    p.done();
    assert.equal(written.at(-1), '\r\x1b[K');
  });
});
