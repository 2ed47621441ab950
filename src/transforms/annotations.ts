/** The Contrast annotations a workload owner sets on the pod template. */
const ANNOTATION_PREFIX = 'contrast.edgeless.systems/';
export const ANNOTATIONS = {
  skipInitializer: `${ANNOTATION_PREFIX}skip-initializer`,
  meshIngress: `${ANNOTATION_PREFIX}servicemesh-ingress`,
  meshEgress: `${ANNOTATION_PREFIX}servicemesh-egress`,
  meshAdminPort: `${ANNOTATION_PREFIX}servicemesh-admin-interface-port`,
  workloadSecretId: `${ANNOTATION_PREFIX}workload-secret-id`,
  securePv: `${ANNOTATION_PREFIX}secure-pv`,
  imageStoreSize: `${ANNOTATION_PREFIX}image-store-size`,
  podRole: `${ANNOTATION_PREFIX}pod-role`,
} as const;

export const COORDINATOR_ROLE = 'coordinator';

/** Annotations that only take effect on the pod template. */
export const POD_TEMPLATE_ANNOTATIONS: readonly string[] = Object.values(ANNOTATIONS);
