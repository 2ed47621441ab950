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

/** A text asset of the single executable, or undefined (not one, or no such asset). */
export function seaTextAsset(key: string): string | undefined {
  try {
    const sea = process.getBuiltinModule?.('node:sea');
    return sea?.isSea() ? sea.getAsset(key, 'utf8') : undefined;
  } catch {
    return undefined;
  }
}
