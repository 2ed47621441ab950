// Preloaded into benchmarked child processes: reports the peak resident set size on exit.
process.on('exit', () => {
  process.stderr.write(`__BENCH_MAXRSS_KB__ ${process.resourceUsage().maxRSS}\n`);
});
