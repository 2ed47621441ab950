/**
 * What every concern of a pod's policy needs: the input (pod spec, images, ConfigMaps,
 * Secrets, settings), the field paths for errors, and the run-time value context.
 */
import type { ResolvedImage } from '../../images/types.js';
import { UserError } from '../../util/errors.js';
import type { PolicySettings } from '../settings.js';
import type { DynContext } from '../values.js';
import { podNamePattern, podSpecPath } from './names.js';

export interface PodPolicyInput {
  workload: { apiVersion: string; kind: string; name: string; namespace: string };
  podMetadata: {
    name?: string;
    generateName?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  podSpec: Record<string, unknown>;
  /** Names of the workload's PersistentVolumeClaim templates (StatefulSet `volumeClaimTemplates`). */
  claimTemplates?: string[];
  image: (reference: string) => ResolvedImage;
  pauseImage: ResolvedImage;
  configMaps: Record<string, unknown>[];
  secrets: Record<string, unknown>[];
  settings: PolicySettings;
}

export type Obj = Record<string, unknown>;

export function obj(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}
export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
export function int(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}

/** The pod being described, shared by the concerns. */
export class PodContext {
  readonly dyn: DynContext;
  readonly ns: string | undefined;
  readonly spec: Obj;
  readonly specPath: string;
  readonly s: PolicySettings;
  /** Some container is privileged (the pause container's /sys is then writable too). */
  readonly privilegedAny: boolean;

  constructor(readonly input: PodPolicyInput) {
    const pattern = podNamePattern(input);
    this.ns = input.workload.namespace || undefined;
    this.dyn = { podNameRegex: pattern.regex, podNameSample: pattern.sample, namespace: this.ns };
    this.spec = input.podSpec;
    this.specPath = podSpecPath(input.workload.kind);
    this.s = input.settings;
    this.privilegedAny = [...arr(this.spec.containers), ...arr(this.spec.initContainers)].some(
      (c) => obj(obj(c)?.securityContext)?.privileged === true,
    );
  }

  /** Problems that do not stop the computation; buildPod reports all of them together. */
  readonly problems: UserError[] = [];

  /** Throw a user error at a field of the pod spec (relative to the spec). */
  fail(message: string, field: string): never {
    throw new UserError(message, { field: field ? `${this.specPath}.${field}` : this.specPath });
  }

  /** Record a user error at a field of the pod spec and go on, so the next ones are found too. */
  report(message: string, field: string): void {
    this.problems.push(new UserError(message, { field: field ? `${this.specPath}.${field}` : this.specPath }));
  }

  get podSecurityContext(): Obj {
    return obj(this.spec.securityContext) ?? {};
  }
}

/** One container as the concerns see it. */
export interface ContainerInput {
  /** The container of the pod spec ({} for the pause container). */
  c: Obj;
  /** Field path of the container inside the pod spec (`containers[1]`; "" for pause). */
  path: string;
  pause: boolean;
  image: ResolvedImage;
  /** The container's own securityContext ({} for pause). */
  sc: Obj;
  privileged: boolean;
}
