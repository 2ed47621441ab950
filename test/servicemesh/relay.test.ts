/** The relay between two sockets: bytes, half-close, idle and error handling (on loopback). */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { relay, type RelayLimits } from '../../src/servicemesh/relay.js';

/** A connected pair of sockets (client end, server end), both allowHalfOpen. */
async function pair(): Promise<{ left: Socket; right: Socket; close: () => void }> {
  const server: Server = createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const left = connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1', allowHalfOpen: true });
  const [right] = await Promise.all([accepted, new Promise((r) => left.once('connect', r))]);
  return { left, right, close: () => server.close() };
}

/**
 * Peer A — [a relay b] — peer B: returns the outer ends and the relay. The outer ends answer a
 * FIN with their own, as ordinary peers do, unless told to hold (`holdB`).
 */
async function chain(limits: RelayLimits, holdB = false) {
  const p1 = await pair();
  const p2 = await pair();
  const r = relay(p1.right, p2.left, limits);
  p1.left.on('end', () => p1.left.end());
  if (!holdB) p2.right.on('end', () => p2.right.end());
  return {
    a: p1.left,
    b: p2.right,
    r,
    close: () => {
      p1.close();
      p2.close();
    },
  };
}

const closed = (s: Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));
const LONG = { idleTimeoutMs: 60_000, halfCloseTimeoutMs: 60_000 };

describe('service mesh: relay', () => {
  it('carries bytes unchanged both ways and passes FIN as FIN', async () => {
    const { a, b, r, close } = await chain(LONG, true);
    const data = randomBytes(4 * 1024 * 1024);
    const hash = (chunks: Buffer[]) => createHash('sha256').update(Buffer.concat(chunks)).digest('hex');
    const atB: Buffer[] = [];
    b.on('data', (c: Buffer) => atB.push(c));
    const bEnded = new Promise((res) => b.once('end', res));
    a.end(data);
    await bEnded;
    assert.equal(hash(atB), hash([data]));
    // B can still answer after A finished sending (half-close), then finishes too.
    const atA: Buffer[] = [];
    a.on('data', (c: Buffer) => atA.push(c));
    const aEnded = new Promise((res) => a.once('end', res));
    b.end('reply');
    await aEnded;
    assert.equal(Buffer.concat(atA).toString(), 'reply');
    const res = await r.done;
    assert.deepEqual(
      { reason: res.reason, aToB: res.aToB, bToA: res.bToA },
      { reason: 'done', aToB: data.length, bToA: 5 },
    );
    close();
  });

  it('carries bytes from sides the caller paused before the relay started (as the proxy does)', async () => {
    const p1 = await pair();
    const p2 = await pair();
    p1.right.pause();
    p2.left.pause();
    const r = relay(p1.right, p2.left, LONG);
    const atB: Buffer[] = [];
    p2.right.on('data', (c: Buffer) => atB.push(c));
    const atA: Buffer[] = [];
    p1.left.on('data', (c: Buffer) => atA.push(c));
    const bEnded = new Promise((res) => p2.right.once('end', res));
    p1.left.end('to b');
    await bEnded;
    const aEnded = new Promise((res) => p1.left.once('end', res));
    p2.right.end('to a');
    await aEnded;
    assert.deepEqual([Buffer.concat(atB).toString(), Buffer.concat(atA).toString()], ['to b', 'to a']);
    assert.equal((await r.done).reason, 'done');
    p1.close();
    p2.close();
  });

  it('closes both sides when nothing moves for the idle timeout', async () => {
    const { a, b, r, close } = await chain({ idleTimeoutMs: 200, halfCloseTimeoutMs: 60_000 });
    a.on('error', () => {});
    b.on('error', () => {});
    const res = await r.done;
    assert.equal(res.reason, 'idle');
    await Promise.all([closed(a), closed(b)]);
    close();
  });

  it('closes a half-closed connection whose other side neither sends nor finishes', async () => {
    const { a, b, r, close } = await chain({ idleTimeoutMs: 60_000, halfCloseTimeoutMs: 200 }, true);
    a.on('error', () => {});
    b.on('error', () => {});
    b.on('data', () => {});
    const bSawEnd = new Promise<void>((res) => b.once('end', () => res()));
    a.end('bye');
    const res = await r.done;
    assert.equal(res.reason, 'half-close-timeout');
    // B got the FIN (and holds its side open: only the relay's clock ended the connection).
    await Promise.all([closed(a), bSawEnd]);
    b.destroy();
    close();
  });

  it('a reset on one side destroys the other', async () => {
    const { a, b, r, close } = await chain(LONG);
    a.on('error', () => {});
    b.on('error', () => {});
    a.resetAndDestroy();
    const res = await r.done;
    assert.equal(res.reason, 'error');
    assert.match(res.error ?? '', /ECONNRESET/);
    await closed(b);
    assert.ok(b.destroyed);
    close();
  });

  it('close() destroys both sides at once', async () => {
    const { a, b, r, close } = await chain(LONG);
    a.on('error', () => {});
    b.on('error', () => {});
    r.close();
    assert.equal((await r.done).reason, 'closed-by-proxy');
    await Promise.all([closed(a), closed(b)]);
    close();
  });
});
