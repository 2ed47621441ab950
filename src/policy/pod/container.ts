/** One container of the policy, assembled from the concerns (one module each). */
import type { ResolvedImage } from '../../images/types.js';
import { UserError } from '../../util/errors.js';
import type { ContainerPolicy } from '../types.js';
import { obj, str, type ContainerInput, type Obj, type PodContext } from './context.js';
import { devicesPolicy } from './devices.js';
import { containerEnv, envPolicy, envSample, type ContainerEnv } from './env.js';
import { mountsPolicy } from './mounts.js';
import { execCommands, processPolicy } from './process.js';
import { annotationsPolicy, imageSource, namespacesPolicy, rootPath } from './sandbox.js';
import {
  capabilitiesPolicy,
  maskedPaths,
  noNewPrivileges,
  readOnlyRoot,
  sysctlPolicy,
  userPolicy,
} from './security.js';

/** What `policy check` needs besides the policy to send the requests a runtime would. */
export interface ContainerSample {
  name: string;
  args: string[];
  env: string[];
  /** The container's env as the policy sees it (for the service-link variables kubelet adds). */
  containerEnv: ContainerEnv;
  /** Destination → index of the block storage a mount binds. */
  blockMounts: Record<string, number>;
}

function resolveImage(pod: PodContext, c: Obj, path: string, pause: boolean): { ref: string; image: ResolvedImage } {
  const ref = pause ? pod.input.pauseImage.reference : (str(c.image) ?? '');
  if (!pause && !ref) pod.fail('container has no image', `${path}.image`);
  try {
    return { ref, image: pause ? pod.input.pauseImage : pod.input.image(ref) };
  } catch (err) {
    throw new UserError(`image ${ref} could not be resolved: ${(err as Error).message}`, {
      field: `${pod.specPath}.${path}.image`,
    });
  }
}

export function containerPolicy(
  pod: PodContext,
  c: Obj,
  path: string,
  pause: boolean,
): { policy: ContainerPolicy; sample: ContainerSample } {
  const name = pause ? '' : (str(c.name) ?? '');
  const { ref, image } = resolveImage(pod, c, path, pause);
  const sc = pause ? {} : (obj(c.securityContext) ?? {});
  const ci: ContainerInput = { c, path, pause, image, sc, privileged: sc.privileged === true };
  const template = pause ? pod.s.pauseContainer : pod.s.otherContainer;

  const env = containerEnv(pod, ci);
  const process = processPolicy(pod, ci, env);
  const readOnly = readOnlyRoot(ci);
  const mounts = mountsPolicy(pod, ci, template, readOnly);
  const devices = devicesPolicy(pod, ci);
  const paths = maskedPaths(ci, template);

  const policy: ContainerPolicy = {
    name,
    image: pause ? image.pinned || image.reference : ref,
    image_source: imageSource(pod, ci, ref),
    OCI: {
      Version: pod.s.ociVersion,
      Process: {
        Terminal: process.Terminal,
        User: userPolicy(pod, ci),
        Args: process.Args,
        ArgsDynamic: process.ArgsDynamic,
        ...envPolicy(pod, env),
        Cwd: process.Cwd,
        Capabilities: capabilitiesPolicy(pod, ci),
        NoNewPrivileges: noNewPrivileges(ci),
      },
      Root: { Path: rootPath(pod), Readonly: readOnly },
      Mounts: mounts.mounts,
      Annotations: annotationsPolicy(pod, ci, template, name),
      Linux: {
        Namespaces: namespacesPolicy(pod, ci),
        ...paths,
        Devices: devices.linuxDevices,
        Sysctl: sysctlPolicy(pod, template),
      },
    },
    storages: mounts.storages,
    devices: devices.devices,
    gpus: devices.gpus,
    sandbox_pidns: !pause && pod.spec.shareProcessNamespace === true,
    exec_commands: execCommands(ci, env),
  };
  return {
    policy,
    sample: {
      name,
      args: process.sampleArgs,
      env: envSample(pod, env),
      containerEnv: env,
      blockMounts: mounts.blockMounts,
    },
  };
}
