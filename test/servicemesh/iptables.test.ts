/** The rules the sidecar installs (the integration test runs them in a namespace). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GUARD_CHAIN, NAT_CHAIN, ipv6InUse, restoreScript } from '../../src/servicemesh/iptables.js';

describe('service mesh: iptables rules', () => {
  const script = restoreScript(
    {
      redirects: new Map([
        [8443, 40001],
        [80, 40000],
      ]),
      openPorts: [9090, 9901, 9090],
    },
    { nat: true, guard: true },
  );
  const lines = script.split('\n');

  it('redirects each protected port to its listener, after leaving loopback alone', () => {
    const nat = lines.slice(lines.indexOf('*nat'), lines.indexOf('COMMIT'));
    assert.deepEqual(nat, [
      '*nat',
      `:${NAT_CHAIN} - [0:0]`,
      `-A ${NAT_CHAIN} -i lo -j RETURN`,
      `-A ${NAT_CHAIN} -p tcp --dport 80 -j REDIRECT --to-ports 40000`,
      `-A ${NAT_CHAIN} -p tcp --dport 8443 -j REDIRECT --to-ports 40001`,
      `-I PREROUTING 1 -p tcp -j ${NAT_CHAIN}`,
    ]);
  });

  it('the guard lets through loopback, established, redirected and untouched ports, and resets the rest', () => {
    const filter = lines.slice(lines.indexOf('*filter'), lines.lastIndexOf('COMMIT'));
    assert.deepEqual(filter, [
      '*filter',
      `:${GUARD_CHAIN} - [0:0]`,
      `-A ${GUARD_CHAIN} -i lo -j RETURN`,
      `-A ${GUARD_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
      `-A ${GUARD_CHAIN} -m conntrack --ctstate DNAT -j RETURN`,
      `-A ${GUARD_CHAIN} -p tcp --dport 9090 -j RETURN`,
      `-A ${GUARD_CHAIN} -p tcp --dport 9901 -j RETURN`,
      `-A ${GUARD_CHAIN} -p tcp -j REJECT --reject-with tcp-reset`,
      `-I INPUT 1 -p tcp -j ${GUARD_CHAIN}`,
    ]);
  });

  it('adds the jumps only when they are missing (a restarted sidecar rewrites the chains in place)', () => {
    const again = restoreScript({ redirects: new Map(), openPorts: [] }, { nat: false, guard: false });
    assert.ok(!again.includes('PREROUTING') && !again.includes('-I INPUT'));
    assert.match(again, new RegExp(`:${NAT_CHAIN} - \\[0:0\\]\\n-A ${NAT_CHAIN} -i lo -j RETURN\\nCOMMIT`));
  });

  it('IPv6 must be guarded when an interface other than lo has an IPv6 address', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-inet6-'));
    try {
      const f = join(dir, 'if_inet6');
      writeFileSync(f, '00000000000000000000000000000001 01 80 10 80       lo\n');
      assert.equal(ipv6InUse(f), false);
      writeFileSync(
        f,
        '00000000000000000000000000000001 01 80 10 80       lo\nfe8000000000000000fc00fffe000001 04 40 20 80     eth0\n',
      );
      assert.equal(ipv6InUse(f), true);
      assert.equal(ipv6InUse(join(dir, 'missing')), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
