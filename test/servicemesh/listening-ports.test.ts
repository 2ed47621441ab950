/** Reading the pod's listening sockets from /proc/net/tcp and tcp6. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appTargets, listeningSockets, parseProcNetTcp } from '../../src/servicemesh/listening-ports.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:20FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1B58 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0200D50A:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
   3: 0200D50A:20FB 0100D50A:C350 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
   garbage line
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:2382 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:2383 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:2384 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1 0000000000000000 100 0 0 10 0
   3: 000080FE00000000FF000000010000FE:2385 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 8 1 0000000000000000 100 0 0 10 0
`;

describe('service mesh: listening ports of the pod', () => {
  it('reads LISTEN sockets (not established ones) with their addresses, little-endian words', () => {
    assert.deepEqual(parseProcNetTcp(TCP, 4, true), [
      { address: '0.0.0.0', port: 8443, family: 4 },
      { address: '127.0.0.1', port: 7000, family: 4 },
      { address: '10.213.0.2', port: 8080, family: 4 },
    ]);
    assert.deepEqual(
      parseProcNetTcp(TCP6, 6, true).map((s) => `${s.address}/${s.port}`),
      ['::/9090', '::1/9091', '::ffff:127.0.0.1/9092', 'fe80::ff:fe00:1/9093'],
    );
  });

  it('reads big-endian words in order', () => {
    assert.deepEqual(parseProcNetTcp('header\n 0: 7F000001:1B58 00000000:0000 0A\n', 4, false), [
      { address: '127.0.0.1', port: 7000, family: 4 },
    ]);
  });

  it('leaves loopback-only sockets out; a wildcard is reached on loopback, a single address on itself', () => {
    const targets = appTargets([...parseProcNetTcp(TCP, 4, true), ...parseProcNetTcp(TCP6, 6, true)]);
    assert.deepEqual(
      [...targets].sort(([a], [b]) => a - b),
      [
        [8080, '10.213.0.2'],
        [8443, '127.0.0.1'],
        [9090, '::1'],
        [9093, 'fe80::ff:fe00:1'],
      ],
    );
  });

  it('prefers IPv4 loopback when a port has both wildcards', () => {
    const t = appTargets([
      { address: '::', port: 80, family: 6 },
      { address: '0.0.0.0', port: 80, family: 4 },
    ]);
    assert.equal(t.get(80), '127.0.0.1');
  });

  it('finds a real listening socket of this process, and treats missing files as none', async () => {
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    const port = (server.address() as { port: number }).port;
    try {
      assert.ok(listeningSockets().some((s) => s.port === port && s.address === '0.0.0.0'));
    } finally {
      server.close();
    }
    const empty = mkdtempSync(join(tmpdir(), 'kc-procnet-'));
    try {
      writeFileSync(join(empty, 'tcp'), TCP);
      assert.equal(listeningSockets(empty).length, 3);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
