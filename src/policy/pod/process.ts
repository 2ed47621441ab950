/**
 * The process of a container: its command line (Kubernetes `command`/`args` over the image
 * `Entrypoint`/`Cmd`), working directory, terminal, and the exec commands of its probes and
 * hooks.
 */
import { compact, expand, isLiteral, literalText, toPattern, toSample, type Value } from '../values.js';
import { arr, obj, str, type ContainerInput, type PodContext } from './context.js';
import type { ContainerEnv } from './env.js';

export interface ProcessPolicy {
  Args: string[];
  ArgsDynamic: Record<string, string>;
  Cwd: string;
  Terminal: boolean;
  /** The command line with run-time parts filled in, as a runtime would send it. */
  sampleArgs: string[];
}

export function processPolicy(pod: PodContext, ci: ContainerInput, env: ContainerEnv): ProcessPolicy {
  const { c, pause, image } = ci;
  const lookup = (n: string) => env.kube.get(n);
  const command = arr(c.command).map(String);
  const args = arr(c.args).map(String);
  const entrypoint = image.config.Entrypoint ?? [];
  const cmd = image.config.Cmd ?? [];
  let argv: Value[];
  if (pause) argv = [...entrypoint, ...cmd].map((a) => [a]);
  else if (command.length > 0) argv = [...command, ...args].map((a) => expand(a, lookup));
  else if (args.length > 0) argv = [...entrypoint.map((a) => [a] as Value), ...args.map((a) => expand(a, lookup))];
  else argv = [...entrypoint, ...cmd].map((a) => [a]);
  if (pause && argv.length === 0) argv = [['/pause']];
  if (argv.length === 0) pod.fail('neither the pod spec nor the image defines a command to run', `${ci.path}.command`);

  const Args: string[] = [];
  const ArgsDynamic: Record<string, string> = {};
  argv.forEach((a, i) => {
    const v = compact(a);
    Args.push(isLiteral(v) ? literalText(v) : toSample(v, pod.dyn));
    if (!isLiteral(v)) ArgsDynamic[String(i)] = toPattern(v, pod.dyn);
  });
  return {
    Args,
    ArgsDynamic,
    Cwd: (!pause && str(c.workingDir)) || image.config.WorkingDir || '/',
    Terminal: !pause && c.tty === true,
    sampleArgs: argv.map((a) => toSample(a, pod.dyn)),
  };
}

/** Exec commands of probes and lifecycle hooks (kubelet expands only statically known variables). */
export function execCommands(ci: ContainerInput, env: ContainerEnv): string[][] {
  if (ci.pause) return [];
  const staticLookup = (n: string) => {
    const v = env.kube.get(n);
    return v && isLiteral(v) ? v : undefined;
  };
  const out: string[][] = [];
  const add = (list: unknown[]) => {
    if (list.length > 0) out.push(list.map((a) => literalText(expand(String(a), staticLookup))));
  };
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'])
    add(arr(obj(obj(ci.c[probe])?.exec)?.command));
  for (const hook of ['postStart', 'preStop']) add(arr(obj(obj(obj(ci.c.lifecycle)?.[hook])?.exec)?.command));
  return out;
}
