/**
 * Helm hooks. Helm 3 never post-renders hooks; Helm 4 does. A confidential hook is then a
 * workload like any other (runtime class, policy, manifest entry), and its `helm.sh/hook*`
 * annotations stay as they are. One thing needs a word to the user: install and upgrade hooks
 * run while `helm install|upgrade` waits, i.e. before `kubectl contrast set` can give the
 * Coordinator the new manifest. A hook pod with the Initializer would wait for an attestation
 * that cannot succeed yet, so we warn and name the way out.
 */
import { isPlainObject } from '../util/values.js';
import type { Warn } from '../util/diagnostics.js';
import { INITIALIZER_NAME } from '../transforms/initializer.js';
import type { TransformedWorkload } from '../generate/pipeline.js';

const HOOK_ANNOTATION = 'helm.sh/hook';

/** Hooks that run before `helm install|upgrade|rollback` returns. */
const BLOCKING_HOOKS = new Set([
  'pre-install',
  'post-install',
  'pre-upgrade',
  'post-upgrade',
  'pre-rollback',
  'post-rollback',
]);

function helmHooksOf(object: Record<string, unknown>): string[] {
  const meta = object.metadata;
  if (!isPlainObject(meta) || !isPlainObject(meta.annotations)) return [];
  const value = meta.annotations[HOOK_ANNOTATION];
  return typeof value === 'string'
    ? value
        .split(',')
        .map((h) => h.trim())
        .filter(Boolean)
    : [];
}

export function warnAboutHooks(workloads: readonly TransformedWorkload[], warn: Warn): void {
  for (const w of workloads) {
    const blocking = helmHooksOf(w.resource.object).filter((h) => BLOCKING_HOOKS.has(h));
    if (blocking.length === 0) continue;
    const inits = w.template.spec.initContainers;
    const hasInitializer = Array.isArray(inits) && inits.some((c) => isPlainObject(c) && c.name === INITIALIZER_NAME);
    if (!hasInitializer) continue;
    warn(
      `is a Helm ${blocking.join(',')} hook with the Initializer: it runs while helm waits, before \`kubectl contrast set\` can add its policy to the Coordinator, so it cannot attest; annotate its pod template with contrast.edgeless.systems/skip-initializer: "true" or make it a regular resource`,
      w.resource.location,
    );
  }
}
