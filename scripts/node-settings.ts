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
import { defaultSettings } from '../src/policy/settings.js';

/** Linux capability numbers (include/uapi/linux/capability.h). */
const CAP_NUMBERS: Record<string, number> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
};

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
    const n = CAP_NUMBERS[c];
    if (n === undefined) throw new Error(`no capability number for ${c}`);
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
