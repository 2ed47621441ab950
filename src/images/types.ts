/**
 * The contract between image resolution (src/images) and its users (generate, policy).
 * Field names of ImageConfig follow the OCI image config (`config` object).
 */

/** The parts of an OCI image config that the agent policy depends on. */
export interface ImageConfig {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  User?: string;
  WorkingDir?: string;
  Volumes?: Record<string, object> | null;
}

export interface ResolvedImage {
  /** The reference as written in the manifest, e.g. `nginx:1.27`. */
  reference: string;
  /**
   * Canonical reference pinned by manifest digest: `docker.io/library/nginx:1.27@sha256:…`
   * (the platform manifest's digest; a digest the user wrote, even an index digest, is kept).
   */
  pinned: string;
  /** sha256 digest of the (platform-specific) image manifest, `sha256:<hex>`. */
  manifestDigest: string;
  /** sha256 digest of the config blob, `sha256:<hex>`. */
  configDigest: string;
  config: ImageConfig;
  /** Final content of /etc/passwd after applying every layer, or undefined when absent. */
  passwd?: string;
  /** Final content of /etc/group after applying every layer, or undefined when absent. */
  group?: string;
  /** Digest of the multi-platform index the manifest was chosen from, when there was one. */
  indexDigest?: string;
  /** Where the image was found (`registry ghcr.io`, `OCI layout DIR`, `image cache`, …), for messages. */
  source?: string;
}

/** Resolves image references; implementations deduplicate and cache by digest. */
export interface ImageResolverLike {
  resolve(reference: string): Promise<ResolvedImage>;
}
