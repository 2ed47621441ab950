/** Test images built as OCI layouts by the tests themselves. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildImage,
  buildIndex,
  buildLayer,
  buildTar,
  OciLayoutWriter,
  type BuiltImage,
  type LayerEntry,
} from '../../src/images/oci-build.js';
import type { ImagePlatform } from '../../src/images/image-manifest.js';
import type { ImageConfig } from '../../src/images/types.js';

export const PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n';
export const GROUP = 'root:x:0:\napp:x:1000:\n';

export function tempDir(prefix = 'contrast-images-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** An image from layers given bottom first, each a list of entries. */
export function image(
  layers: LayerEntry[][],
  config: ImageConfig = { User: 'app', Cmd: ['/bin/sh'] },
  platform?: ImagePlatform,
): BuiltImage {
  const spec: Parameters<typeof buildImage>[0] = { layers: layers.map((l) => buildLayer(buildTar(l))), config };
  if (platform) spec.platform = platform;
  return buildImage(spec);
}

export function basicImage(marker: string, user = 'app'): BuiltImage {
  return image(
    [
      [
        { path: 'etc/passwd', content: PASSWD },
        { path: 'etc/group', content: GROUP },
        { path: 'marker', content: marker },
      ],
    ],
    {
      User: user,
      Entrypoint: ['/bin/app'],
      Cmd: [marker],
      Env: ['PATH=/bin', `MARKER=${marker}`],
      WorkingDir: '/work',
    },
  );
}

/** Write images into a layout dir, each tagged with its ref name. */
export function writeLayout(dir: string, items: { ref: string; image: BuiltImage }[]): void {
  const w = new OciLayoutWriter();
  for (const { ref, image: img } of items) w.add(img.descriptor, img.blobs, ref);
  w.write(dir, true);
}

/** A layout with one multi-platform index named `ref`; returns the per-platform images. */
export function writeIndexLayout(
  dir: string,
  ref: string,
  platforms: ImagePlatform[],
): { index: ReturnType<typeof buildIndex>; images: BuiltImage[] } {
  const images = platforms.map((p) =>
    image(
      [
        [
          {
            path: 'etc/passwd',
            content: `root:x:0:0:root:/root:/bin/sh\narch:x:${1000 + platforms.indexOf(p)}:0::/:/bin/sh\n`,
          },
          { path: 'etc/group', content: GROUP },
        ],
      ],
      { User: 'arch', Cmd: [`${p.architecture}${p.variant ?? ''}`] },
      p,
    ),
  );
  const index = buildIndex(images.map((img, i) => ({ image: img, platform: platforms[i]! })));
  const w = new OciLayoutWriter();
  w.add(index.descriptor, index.blobs, ref);
  w.write(dir, true);
  return { index, images };
}
