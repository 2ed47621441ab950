/**
 * Where a runtime lives on a node. One table, read by the node installer (which writes the files),
 * by the DaemonSet it runs in (which mounts them) and by the wrapper script (which calls them).
 * All paths are the node's own, not a container's view of them.
 */
import { join } from 'node:path';

/** Defaults for a real node; `runtime apply --runtime-dir/--containerd-config` change them. */
export const DEFAULT_RUNTIME_DIR = '/opt/kubectl-contrast';
export const DEFAULT_CONTAINERD_CONFIG = '/etc/containerd/config.toml';

export interface RuntimePaths {
  /** Everything of this handler: installing another version never touches it. */
  handlerDir: string;
  /** Our single executable, copied out of the node-installer image. */
  executable: string;
  /** The OCI runtime that containerd's runc v2 shim runs for this handler. */
  wrapper: string;
  /** The agent hook's record of each pod (policy, agent state). */
  agentState: string;
  /** The simulated attestation device's sockets and per-pod directories. */
  deviceState: string;
  /**
   * The simulated platform's root key, one per node and not per runtime version: like a
   * machine's hardware root it outlives runtime upgrades. Its public half is what verifiers pin.
   */
  simRoot: string;
}

export function runtimePaths(runtimeDir: string, handler: string): RuntimePaths {
  const handlerDir = join(runtimeDir, handler);
  return {
    handlerDir,
    executable: join(handlerDir, 'bin', 'kubectl-contrast'),
    wrapper: join(handlerDir, 'bin', 'runc-wrapper'),
    agentState: join(handlerDir, 'agent'),
    deviceState: join(handlerDir, 'device'),
    simRoot: join(runtimeDir, 'insecure-sim-root'),
  };
}
