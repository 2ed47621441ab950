// Preloaded into benchmarked child processes: reports the peak resident set size and the CPU time (user + system) on exit.
process.on('exit', () => {
  const u = process.resourceUsage();
  process.stderr.write(`__BENCH_MAXRSS_KB__ ${u.maxRSS}\n__BENCH_CPU_S__ ${(u.userCPUTime + u.systemCPUTime) / 1e6}\n`);
});
