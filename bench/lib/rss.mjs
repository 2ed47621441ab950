// Preloaded into benchmarked child processes: reports the peak resident set size and the CPU time (user + system) on exit.
// The peak is VmHWM, the high-water mark of this process's own memory: getrusage's maxRSS also
// counts the parent's pages copied at fork, before exec (a bench holding a 100 MB input in
// memory made a child look 30 MB larger in some runs and not in others).
import { readFileSync } from 'node:fs';

function peakKb() {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // not Linux: maxRSS is the nearest there is
  }
  return process.resourceUsage().maxRSS;
}

process.on('exit', () => {
  const u = process.resourceUsage();
  process.stderr.write(`__BENCH_MAXRSS_KB__ ${peakKb()}\n__BENCH_CPU_S__ ${(u.userCPUTime + u.systemCPUTime) / 1e6}\n`);
});
