/** node:sea when this process is our single executable (Node SEA), else undefined (Node running dist/). */
function runningSea() {
  // node:sea cannot be imported statically by code that also runs on Node 20 builds without it,
  // and process.getBuiltinModule itself is missing before Node 20.16.
  try {
    const sea = process.getBuiltinModule?.('node:sea');
    return sea?.isSea() ? sea : undefined;
  } catch {
    return undefined;
  }
}

/** Whether this process is our single executable (Node SEA), not Node running dist/. */
export function isSingleExecutable(): boolean {
  return runningSea() !== undefined;
}

/** A text asset of the single executable, or undefined (not one, or no such asset). */
export function seaTextAsset(key: string): string | undefined {
  const sea = runningSea();
  try {
    return sea?.getAsset(key, 'utf8');
  } catch {
    return undefined;
  }
}
