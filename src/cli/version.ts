/**
 * `kubectl contrast version`: what this build is and which runtime classes its manifests name,
 * as `kubectl version` and upstream's `contrast --version` report theirs. `--version` prints the
 * bare version number.
 */
import type { Argv, CommandModule } from 'yargs';
import { stringify } from 'yaml';
import { buildCommit, VERSION } from '../version.js';
import { PLATFORMS, runtimeHandler } from '../platforms/platforms.js';
import { INJECTED_IMAGES } from '../platforms/images.js';
import { outputOption, type OutputArgs } from './kube-options.js';

export interface VersionInfo {
  version: string;
  commit: string;
  node: string;
  os: string;
  arch: string;
  /** Platform id → the runtime class (runtime handler) its workloads get from `generate`. */
  runtimeClasses: Record<string, string>;
  images: Record<string, string>;
  /** Why runtime classes and images are missing (no image lock in this build). */
  error?: string;
}

export function versionInfo(): VersionInfo {
  const info: VersionInfo = {
    version: VERSION,
    commit: buildCommit(),
    node: process.version,
    os: process.platform,
    arch: process.arch,
    runtimeClasses: {},
    images: {},
  };
  // The runtime class names hash the node-installer image: both need the image lock.
  try {
    info.images = Object.fromEntries(Object.entries(INJECTED_IMAGES).map(([k, ref]) => [k, String(ref)]));
    info.runtimeClasses = Object.fromEntries(PLATFORMS.map((p) => [p.id, runtimeHandler(p)]));
  } catch (err) {
    info.error = (err as Error).message;
  }
  return info;
}

function text(info: VersionInfo): string {
  const width = Math.max(0, ...Object.keys(info.runtimeClasses).map((k) => k.length));
  return [
    `Version: ${info.version}`,
    `Commit: ${info.commit}`,
    `Node: ${info.node} (${info.os}/${info.arch})`,
    ...(info.error !== undefined
      ? [`Runtime classes and images: unknown (${info.error})`]
      : [
          'Runtime classes:',
          ...Object.entries(info.runtimeClasses).map(([p, rc]) => `  ${p.padEnd(width)}  ${rc}`),
          'Images:',
          ...Object.entries(info.images).map(([k, ref]) => `  ${k}: ${ref}`),
        ]),
    '',
  ].join('\n');
}

export const versionCommand: CommandModule<object, OutputArgs> = {
  command: 'version',
  describe: 'Print the version, the commit of the build, the runtime classes and the images it injects',
  builder: (y: Argv) => outputOption(y, ['json', 'yaml'], 'Print the same as JSON or YAML'),
  handler: (argv) => {
    const info = versionInfo();
    process.stdout.write(
      argv.output === 'json'
        ? `${JSON.stringify(info, null, 2)}\n`
        : argv.output === 'yaml'
          ? stringify(info)
          : text(info),
    );
  },
};
