/**
 * The policy settings for the local node of scripts/cluster.sh (`up` writes them to
 * $CONTRAST_CLUSTER_DIR/policy-settings.json). The defaults describe a Kata node with containerd
 * 1.7 or later and the full capability set; three facts of this node differ, and the
 * simulated runtime checks the specs containerd really writes, so the policies must know them:
 *
 * - containerd 1.6 writes `ociVersion` "1.0.2-dev" (1.7 and later: "1.1.0");
 * - containerd 1.6 mounts the sandbox's /etc/resolv.conf with `rbind,ro` only;
 * - a privileged container gets the capabilities of containerd's own bounding set, which is
 *   smaller when the node itself runs in a container (this machine lacks CAP_SYS_RESOURCE).
 *
 *   node --import=tsx scripts/node-settings.ts CONTAINERD_VERSION CAPBND_HEX > policy-settings.json
 */
import { ALL_CAPS, defaultSettings } from '../src/policy/settings.js';

export function nodeSettings(containerdVersion: string, capBnd: bigint): ReturnType<typeof defaultSettings> {
  const s = defaultSettings();
  const m = /^v?(\d+)\.(\d+)\./.exec(containerdVersion);
  if (!m) throw new Error(`not a containerd version: ${JSON.stringify(containerdVersion)}`);
  if (Number(m[1]) === 1 && Number(m[2]) < 7) {
    s.ociVersion = '1.0.2-dev';
    for (const mount of s.pauseContainer.mounts)
      if (mount.destination === '/etc/resolv.conf') mount.options = ['rbind', 'ro'];
  }
  s.privilegedCaps = s.privilegedCaps.filter((c) => {
    const n = ALL_CAPS.indexOf(c);
    if (n < 0) throw new Error(`no capability number for ${c}`);
    return ((capBnd >> BigInt(n)) & 1n) === 1n;
  });
  return s;
}

if (process.argv[1]?.endsWith('node-settings.ts')) {
  const [version, capBnd] = process.argv.slice(2);
  if (!version || !capBnd || !/^[0-9a-f]+$/i.test(capBnd))
    throw new Error('usage: node-settings.ts CONTAINERD_VERSION CAPBND_HEX');
  process.stdout.write(`${JSON.stringify(nodeSettings(version, BigInt(`0x${capBnd}`)), null, 2)}\n`);
}
