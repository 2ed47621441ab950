/**
 * A real OCI image layout with the images the generate tests use, built with the project's
 * deterministic image builder, plus the offline sample images.
 */
import { join } from 'node:path';
import { buildImage, buildLayer, buildTar, OciLayoutWriter } from '../../src/images/oci-build.js';
import { ImageResolver } from '../../src/images/index.js';
import { REPO_ROOT } from './cli.js';
import { tempDir } from './tmp.js';

export const SAMPLE_IMAGES = join(REPO_ROOT, 'samples', 'images');

/** Images referenced by the unit tests' manifests. */
export const TEST_IMAGES = ['busybox:1.36', 'app:1', 'side:1', 'migrate:1', 'coord:1', 'i'];

let layoutDir: string | undefined;

export function testImageLayout(): string {
  if (layoutDir) return layoutDir;
  const writer = new OciLayoutWriter();
  for (const ref of TEST_IMAGES) {
    const layer = buildLayer(
      buildTar([
        { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' },
        { path: 'etc/group', content: 'root:x:0:\napp:x:1000:\n' },
      ]),
    );
    const image = buildImage({
      layers: [layer],
      config: { Entrypoint: ['/bin/sh'], Cmd: ['-c', `echo ${ref}`], Env: ['PATH=/usr/bin:/bin'], WorkingDir: '/' },
    });
    writer.add(
      image.descriptor,
      image.blobs,
      ref.includes('/') ? ref : `docker.io/library/${ref.includes(':') ? ref : `${ref}:latest`}`,
    );
  }
  layoutDir = tempDir('kc-images-');
  writer.write(layoutDir);
  return layoutDir;
}

/** An offline resolver over the test images and the sample images; no cache, no network. */
export function testResolver(): ImageResolver {
  return new ImageResolver({
    ociLayouts: [testImageLayout(), SAMPLE_IMAGES],
    offline: true,
    cacheDir: false,
    progress: false,
  });
}
