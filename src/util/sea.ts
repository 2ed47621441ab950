/** Whether this process is our single executable (Node SEA), not Node running dist/. */
export function isSingleExecutable(): boolean {
  // node:sea cannot be imported statically by code that also runs on Node 20 builds without it,
  // and process.getBuiltinModule itself is missing before Node 20.16.
  try {
    return process.getBuiltinModule?.('node:sea')?.isSea() ?? false;
  } catch {
    return false;
  }
}
