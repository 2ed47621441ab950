/**
 * npm run images: builds every image kubectl-contrast injects or deploys (spec.ts) from the
 * single executable and pinned Debian packages, deterministically (same inputs, same digests).
 *
 *   npm run images -- [--out DIR] [--executable FILE] [--deb-cache DIR] [--push REGISTRY/PATH] [--write-lock]
 *   npm run images -- --fetch-only      (only fills the .deb cache; scripts/setup.sh runs it)
 *
 * Writes an OCI image layout to DIR (default out/images) with the lock of the built images
 * (DIR/image-lock.json). --write-lock also writes it into the package (src/platforms/
 * image-lock.json), where the CLI reads the references it injects: a release does that, then
 * packages. --push uploads the images to REGISTRY/PATH/<name>:<tag> and writes
 * DIR/image-replacements.txt, a one-line --image-replacements file that points a deployment there.
 * Without --executable the executable is built by scripts/package-sea.mjs, without the image
 * lock (the images must not depend on the lock that names them).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildImage, OciLayoutWriter, type BuiltImage, type BuiltLayer } from '../../src/images/oci-build.js';
import { parseImageLock, type ImageKey } from '../../src/platforms/images.js';
import { fetchPackage, loadPinnedPackages } from './debian.js';
import { parseRegistryPrefix, pushImage } from './push.js';
import { executableLayer, packageLayer } from './rootfs.js';
import { OUR_IMAGES, REGISTRY, TAG, referenceOf, type PackageLayer } from './spec.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
export const LOCK_IN_PACKAGE = join(ROOT, 'src', 'platforms', 'image-lock.json');

export interface BuildOptions {
  executable: Buffer;
  debCache: string;
  log?: (msg: string) => void;
}

export interface BuiltImages {
  images: { key: ImageKey; reference: string; image: BuiltImage }[];
  /** The image lock document (what image-lock.json holds). */
  lock: string;
  layout: OciLayoutWriter;
}

export async function buildImages(opts: BuildOptions): Promise<BuiltImages> {
  const log = opts.log ?? (() => undefined);
  const pins = loadPinnedPackages();
  const layers = new Map<PackageLayer, BuiltLayer>();
  for (const name of [...new Set(OUR_IMAGES.flatMap((i) => i.packages))]) {
    const t = Date.now();
    layers.set(name, await packageLayer(name, pins, opts.debCache));
    log(
      `layer ${name}: ${layers.get(name)!.descriptor.digest} (${(layers.get(name)!.blob.length / 1e6).toFixed(1)} MB, ${Date.now() - t} ms)`,
    );
  }
  const t = Date.now();
  const exe = executableLayer(opts.executable);
  log(`layer executable: ${exe.descriptor.digest} (${(exe.blob.length / 1e6).toFixed(1)} MB, ${Date.now() - t} ms)`);
  const layout = new OciLayoutWriter();
  const images: BuiltImages['images'] = [];
  for (const spec of OUR_IMAGES) {
    const reference = referenceOf(spec);
    const image = buildImage({
      layers: [...spec.packages.map((p) => layers.get(p)!), ...(spec.executable ? [exe] : [])],
      config: {
        ...spec.config,
        Labels: {
          'org.opencontainers.image.source': 'https://github.com/kubectl-contrast/kubectl-contrast',
          'org.opencontainers.image.title': spec.repository,
          'org.opencontainers.image.version': TAG,
        },
      },
    });
    layout.add(image.descriptor, image.blobs, reference);
    images.push({ key: spec.key, reference, image });
  }
  const lock = `${JSON.stringify(
    {
      comment: 'Written by `npm run images` (scripts/images/build.ts) from the images it built; do not edit.',
      images: Object.fromEntries(images.map((i) => [i.key, `${i.reference}@${i.image.descriptor.digest}`])),
    },
    null,
    2,
  )}\n`;
  parseImageLock(lock, 'the lock just built');
  return { images, lock, layout };
}

/** The single executable, built without the image lock into `dir`. */
export function buildExecutable(dir: string): Buffer {
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'package-sea.mjs')], {
    env: { ...process.env, CONTRAST_SEA_OUT: dir, CONTRAST_SEA_NO_IMAGE_LOCK: '1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return readFileSync(join(dir, 'work', 'archive', 'kubectl-contrast'));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: join(ROOT, 'out', 'images') },
      executable: { type: 'string' },
      'deb-cache': { type: 'string', default: join(ROOT, '.cache', 'debs') },
      push: { type: 'string' },
      'write-lock': { type: 'boolean', default: false },
      'fetch-only': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const log = (msg: string): boolean => process.stderr.write(`[images] ${msg}\n`);
  if (values['fetch-only']) {
    // scripts/setup.sh: fill the .deb cache, so builds and tests need no mirror.
    for (const pin of loadPinnedPackages().values()) fetchPackage(pin, resolve(values['deb-cache']));
    log(`the pinned packages are in ${resolve(values['deb-cache'])}`);
    return;
  }
  const out = resolve(values.out);
  const executable =
    values.executable !== undefined
      ? readFileSync(values.executable)
      : buildExecutable(join(ROOT, '.cache', 'images-sea'));
  const built = await buildImages({ executable, debCache: resolve(values['deb-cache']), log });
  built.layout.write(out, true);
  writeFileSync(join(out, 'image-lock.json'), built.lock);
  if (values['write-lock']) {
    writeFileSync(LOCK_IN_PACKAGE, built.lock);
    log(`wrote ${LOCK_IN_PACKAGE}`);
  }
  if (values.push !== undefined) {
    const { host, path } = parseRegistryPrefix(values.push);
    for (const { reference, image } of built.images) {
      const repository = `${path ? `${path}/` : ''}${reference.slice(REGISTRY.length + 1, reference.lastIndexOf(':'))}`;
      await pushImage(image, { host, repository, tag: TAG });
      log(`pushed ${host}/${repository}:${TAG}@${image.descriptor.digest}`);
    }
    const prefix = `${host}${path ? `/${path}` : ''}`;
    writeFileSync(
      join(out, 'image-replacements.txt'),
      `# Written by npm run images --push: our images, same digests, at ${prefix}.\n${REGISTRY}/*=${prefix}/*\n`,
    );
  }
  mkdirSync(out, { recursive: true });
  for (const { reference, image } of built.images) process.stdout.write(`${reference}@${image.descriptor.digest}\n`);
  log(`wrote ${built.images.length} images to ${out}`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  main().catch((err: unknown) => {
    process.stderr.write(`[images] ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
