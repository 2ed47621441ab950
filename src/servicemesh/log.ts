/**
 * Log lines of the sidecar on standard error. Per-connection messages (refused handshakes,
 * unreachable peers) go through a budget, so a peer that opens connections as fast as it can
 * cannot fill the node's disk with our log: beyond the budget they are counted and summarised.
 */
export type Log = (msg: string) => void;

export function stderrLog(prefix = 'service-mesh'): Log {
  return (msg) => process.stderr.write(`${new Date().toISOString()} ${prefix}: ${msg}\n`);
}

export function rateLimited(log: Log, perWindow = 20, windowMs = 10_000): Log {
  let windowStart = 0;
  let used = 0;
  let suppressed = 0;
  return (msg) => {
    const now = Date.now();
    if (now - windowStart >= windowMs) {
      if (suppressed > 0)
        log(
          `${suppressed} similar messages suppressed in the last ${Math.round((now - windowStart) / 1000)} s (see the admin interface's counters)`,
        );
      windowStart = now;
      used = 0;
      suppressed = 0;
    }
    if (used < perWindow) {
      used++;
      log(msg);
    } else {
      suppressed++;
    }
  };
}
