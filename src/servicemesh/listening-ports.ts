/**
 * The TCP ports the pod's processes listen on, read from /proc/net/tcp and /proc/net/tcp6 of
 * the sidecar's network namespace (the pod's). This is how the proxy learns "every TCP port of
 * the pod" without being told: a port the application opens later is found on the next scan,
 * and until then the default-deny rule refuses it (see iptables.ts), so there is no moment in
 * which it is reachable without the mesh.
 *
 * Sockets bound to a loopback address are not reachable from outside the pod and are left out:
 * the proxy must not make a 127.0.0.1-only service reachable.
 */
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';

export interface ListeningSocket {
  address: string;
  port: number;
  family: 4 | 6;
}

const LISTEN = '0A';

/** `0100007F` → 127.0.0.1 on a little-endian machine: the kernel prints each 32-bit word in host order. */
function wordBytes(hex: string, littleEndian: boolean): number[] {
  const out: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = hex.slice(w, w + 8);
    const pairs = [0, 2, 4, 6].map((i) => parseInt(word.slice(i, i + 2), 16));
    out.push(...(littleEndian ? pairs.reverse() : pairs));
  }
  return out;
}

function formatV6(bytes: number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // v4-mapped addresses are written the usual way.
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') return `::ffff:${bytes.slice(12).join('.')}`;
  // Compress the longest run of zero groups.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** The LISTEN sockets of one /proc/net/tcp[6] text. Lines that do not parse are skipped. */
export function parseProcNetTcp(text: string, family: 4 | 6, littleEndian = endianness() === 'LE'): ListeningSocket[] {
  const hexLen = family === 4 ? 8 : 32;
  const out: ListeningSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[3] !== LISTEN) continue;
    const m = /^([0-9A-F]+):([0-9A-F]{4})$/.exec(fields[1]!);
    if (!m || m[1]!.length !== hexLen) continue;
    const bytes = wordBytes(m[1]!, littleEndian);
    const address = family === 4 ? bytes.join('.') : formatV6(bytes);
    out.push({ address, port: parseInt(m[2]!, 16), family });
  }
  return out;
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

export function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/** Every LISTEN socket of this network namespace; a missing file (no IPv6) counts as none. */
export function listeningSockets(procNet = '/proc/net'): ListeningSocket[] {
  const read = (name: string): string => {
    try {
      return readFileSync(`${procNet}/${name}`, 'utf8');
    } catch {
      return '';
    }
  };
  return [...parseProcNetTcp(read('tcp'), 4), ...parseProcNetTcp(read('tcp6'), 6)];
}

/**
 * Per port reachable from outside: the address the proxy connects to for it. A wildcard
 * listener is reached on loopback (always bound, no interface scope); a listener on one
 * address, on that address.
 */
export function appTargets(sockets: readonly ListeningSocket[]): Map<number, string> {
  const targets = new Map<number, string>();
  for (const s of sockets) {
    if (isLoopback(s.address)) continue;
    const host = isWildcard(s.address) ? (s.family === 4 ? '127.0.0.1' : '::1') : s.address.replace(/^::ffff:/, '');
    const known = targets.get(s.port);
    // Prefer IPv4 loopback: a dual-stack "::" listener accepts it too.
    if (known === undefined || (host === '127.0.0.1' && known !== host)) targets.set(s.port, host);
  }
  return targets;
}
