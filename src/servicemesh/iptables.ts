/**
 * The redirection in the pod's network namespace, for IPv4 and IPv6 alike. Two chains:
 *
 *   nat    PREROUTING -p tcp -j CONTRAST_INBOUND
 *          CONTRAST_INBOUND:  -i lo RETURN;  per protected port P: --dport P REDIRECT --to-ports L(P)
 *   filter INPUT -p tcp -j CONTRAST_INBOUND_GUARD
 *          CONTRAST_INBOUND_GUARD:  -i lo RETURN;  ESTABLISHED,RELATED RETURN;  ctstate DNAT RETURN
 *          (redirected to a proxy listener);  per untouched port (#true, admin): RETURN;
 *          everything else: REJECT with a TCP reset
 *
 * L(P) is the proxy listener of application port P. Node cannot read a connection's original
 * destination (no SO_ORIGINAL_DST, no IP_TRANSPARENT for TPROXY), so each protected port gets
 * its own listener and its own REDIRECT rule; the listener knows its application port.
 *
 * Loops: the proxy reaches the application over loopback (`-i lo`), which neither chain
 * touches. The guard is the default-deny: a port the proxy has not taken over yet (the
 * application opened it after the last scan) is refused, not exposed in plain text; the
 * proxy's own listener ports are refused when dialled directly (no DNAT state).
 *
 * Every change rewrites both chains in one `iptables-restore --noflush` transaction. The rules
 * stay when the proxy exits, so a stopped or crashed proxy fails closed.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

export const NAT_CHAIN = 'CONTRAST_INBOUND';
export const GUARD_CHAIN = 'CONTRAST_INBOUND_GUARD';

export interface RedirectPlan {
  /** Application port → proxy listener port. */
  redirects: ReadonlyMap<number, number>;
  /** Ports left untouched: `#true` entries and the admin interface. */
  openPorts: readonly number[];
}

export interface Jumps {
  nat: boolean;
  guard: boolean;
}

/** The iptables-restore input for one family; `addJumps` says which jumps are still missing. */
export function restoreScript(plan: RedirectPlan, addJumps: Jumps): string {
  const sorted = [...plan.redirects].sort(([a], [b]) => a - b);
  const open = [...new Set(plan.openPorts)].sort((a, b) => a - b);
  return [
    '*nat',
    `:${NAT_CHAIN} - [0:0]`,
    `-A ${NAT_CHAIN} -i lo -j RETURN`,
    ...sorted.map(([app, listener]) => `-A ${NAT_CHAIN} -p tcp --dport ${app} -j REDIRECT --to-ports ${listener}`),
    ...(addJumps.nat ? [`-I PREROUTING 1 -p tcp -j ${NAT_CHAIN}`] : []),
    'COMMIT',
    '*filter',
    `:${GUARD_CHAIN} - [0:0]`,
    `-A ${GUARD_CHAIN} -i lo -j RETURN`,
    `-A ${GUARD_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
    `-A ${GUARD_CHAIN} -m conntrack --ctstate DNAT -j RETURN`,
    ...open.map((port) => `-A ${GUARD_CHAIN} -p tcp --dport ${port} -j RETURN`),
    `-A ${GUARD_CHAIN} -p tcp -j REJECT --reject-with tcp-reset`,
    ...(addJumps.guard ? [`-I INPUT 1 -p tcp -j ${GUARD_CHAIN}`] : []),
    'COMMIT',
    '',
  ].join('\n');
}

interface Family {
  name: 'IPv4' | 'IPv6';
  iptables: string;
  restore: string;
}

const FAMILIES: readonly Family[] = [
  { name: 'IPv4', iptables: 'iptables', restore: 'iptables-restore' },
  { name: 'IPv6', iptables: 'ip6tables', restore: 'ip6tables-restore' },
];

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 30_000, maxBuffer: 1024 * 1024 }, (err, _stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === 'number'
          ? (err as { code: number }).code
          : -1
        : 0;
      resolve({ code, stderr: err && code === -1 ? `${stderr}${(err as Error).message}` : stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Whether the namespace has an IPv6 address outside loopback (then IPv6 must be guarded too). */
export function ipv6InUse(ifInet6 = '/proc/net/if_inet6'): boolean {
  let text: string;
  try {
    text = readFileSync(ifInet6, 'utf8');
  } catch {
    return false;
  }
  return text.split('\n').some((line) => {
    const fields = line.trim().split(/\s+/);
    return fields.length >= 6 && fields[5] !== 'lo';
  });
}

export class Redirection {
  private readonly jumpsPresent = new Map<string, Jumps>();
  private queue: Promise<void> = Promise.resolve();
  /** Families that are not guarded (IPv6 without any IPv6 address outside loopback). */
  readonly skipped: string[] = [];

  constructor(
    private readonly log: (msg: string) => void,
    private readonly requireIpv6 = ipv6InUse(),
  ) {}

  /** Rewrite the chains of every family; calls are serialised. Rejects with a clear message. */
  apply(plan: RedirectPlan): Promise<void> {
    const next = this.queue.then(() => this.applyNow(plan));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async applyNow(plan: RedirectPlan): Promise<void> {
    for (const family of FAMILIES) {
      if (this.skipped.includes(family.name)) continue;
      const jumps = this.jumpsPresent.get(family.name) ?? {
        nat:
          (await run(family.iptables, ['-w', '5', '-t', 'nat', '-C', 'PREROUTING', '-p', 'tcp', '-j', NAT_CHAIN]))
            .code === 0,
        guard:
          (await run(family.iptables, ['-w', '5', '-t', 'filter', '-C', 'INPUT', '-p', 'tcp', '-j', GUARD_CHAIN]))
            .code === 0,
      };
      const r = await run(
        family.restore,
        ['-w', '5', '--noflush'],
        restoreScript(plan, { nat: !jumps.nat, guard: !jumps.guard }),
      );
      if (r.code !== 0) {
        const why = r.stderr.trim().split('\n').slice(-3).join(' | ') || `exit code ${r.code}`;
        if (family.name === 'IPv6' && !this.requireIpv6) {
          this.skipped.push(family.name);
          this.log(
            `IPv6 is not guarded (${family.restore} failed: ${why}); the namespace has no IPv6 address outside loopback`,
          );
          continue;
        }
        throw new Error(
          `${family.restore} failed for ${family.name}: ${why} (the sidecar needs NET_ADMIN and iptables with the nat and filter tables)`,
        );
      }
      this.jumpsPresent.set(family.name, { nat: true, guard: true });
    }
  }
}
