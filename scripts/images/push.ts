/**
 * Pushing built images to a registry with the distribution API (monolithic blob uploads, then
 * the manifest by tag). Anonymous only: for a local or CI registry; a release pushes to its
 * registry with the tools that hold its credentials (skopeo copy oci:… docker://…).
 * Plain HTTP only for loopback addresses, HTTPS otherwise.
 */
import type { BuiltImage } from '../../src/images/oci-build.js';

export interface PushTarget {
  /** host[:port] */
  host: string;
  /** Repository path below the host, e.g. `kubectl-contrast/coordinator`. */
  repository: string;
  tag: string;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/;

/** Split `host[:port]/path` (a registry prefix) strictly. */
export function parseRegistryPrefix(prefix: string): { host: string; path: string } {
  const m =
    /^([a-zA-Z0-9.-]+(?::\d{1,5})?|\[[0-9a-fA-F:]+\](?::\d{1,5})?)((?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)\/?$/.exec(
      prefix,
    );
  if (!m) throw new Error(`--push: "${prefix}" is not a registry prefix (host[:port][/path])`);
  return { host: m[1]!, path: m[2]!.replace(/^\//, '') };
}

async function check(res: Response, what: string, ok: number[]): Promise<Response> {
  if (!ok.includes(res.status)) {
    const body = (await res.text()).slice(0, 500);
    throw new Error(`${what}: HTTP ${res.status}${body ? `: ${body}` : ''}`);
  }
  return res;
}

/** Push one image (its blobs, then its manifest under the tag); returns the digest the registry reports. */
export async function pushImage(image: BuiltImage, target: PushTarget): Promise<string> {
  const scheme = LOOPBACK.test(target.host) ? 'http' : 'https';
  const base = `${scheme}://${target.host}/v2/${target.repository}`;
  const manifest = JSON.parse(image.manifest.toString('utf8')) as {
    config: { digest: string };
    layers: { digest: string }[];
    mediaType: string;
  };
  for (const digest of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
    const head = await fetch(`${base}/blobs/${digest}`, { method: 'HEAD' });
    if (head.status === 200) continue;
    const start = await check(
      await fetch(`${base}/blobs/uploads/`, { method: 'POST' }),
      `${target.repository}: starting the upload of ${digest}`,
      [202],
    );
    const location = start.headers.get('location');
    if (!location) throw new Error(`${target.repository}: the registry gave no upload location`);
    const url = new URL(location, `${scheme}://${target.host}`);
    if (url.host !== target.host)
      throw new Error(`${target.repository}: the registry sent the upload to another host (${url.host})`);
    url.searchParams.set('digest', digest);
    const blob = image.blobs.get(digest);
    if (!blob) throw new Error(`${target.repository}: blob ${digest} missing from the build`);
    await check(
      await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: blob }),
      `${target.repository}: uploading ${digest}`,
      [201],
    );
  }
  const put = await check(
    await fetch(`${base}/manifests/${target.tag}`, {
      method: 'PUT',
      headers: { 'content-type': manifest.mediaType },
      body: image.manifest,
    }),
    `${target.repository}:${target.tag}: putting the manifest`,
    [201],
  );
  const digest = put.headers.get('docker-content-digest');
  if (digest !== null && digest !== image.descriptor.digest)
    throw new Error(
      `${target.repository}:${target.tag}: the registry stored ${digest}, we pushed ${image.descriptor.digest}`,
    );
  return image.descriptor.digest;
}
