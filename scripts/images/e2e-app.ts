/**
 * The workload image of the end-to-end test (test/e2e/flow.test.ts): Debian's static busybox on
 * our base layer, so the test's web and api pods really serve and fetch over the service mesh.
 * Built like our images (pinned .debs, deterministic layers), but it is the test's application,
 * not part of kubectl-contrast: it is not in the image lock.
 *
 *   node --import=tsx scripts/images/e2e-app.ts --push HOST[:PORT][/PATH] [--out DIR]
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildImage, OciLayoutWriter, type BuiltImage } from '../../src/images/oci-build.js';
import { loadPinnedPackages } from './debian.js';
import { parseRegistryPrefix, pushImage } from './push.js';
import { packageLayer } from './rootfs.js';
import { REGISTRY, TAG } from './spec.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
export const E2E_APP_REPOSITORY = 'e2e/app';
export const E2E_APP_REFERENCE = `${REGISTRY}/${E2E_APP_REPOSITORY}:${TAG}`;

export async function buildE2eApp(debCache: string): Promise<BuiltImage> {
  const pins = loadPinnedPackages();
  return buildImage({
    layers: [await packageLayer('base', pins, debCache), await packageLayer('busybox', pins, debCache)],
    config: {
      Env: ['PATH=/usr/bin:/usr/sbin'],
      Entrypoint: ['/usr/bin/busybox'],
      User: '65534:65534',
      WorkingDir: '/',
    },
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      push: { type: 'string' },
      out: { type: 'string' },
      'deb-cache': { type: 'string', default: join(ROOT, '.cache', 'debs') },
    },
    strict: true,
  });
  const image = await buildE2eApp(resolve(values['deb-cache']));
  if (values.out !== undefined) {
    const layout = new OciLayoutWriter();
    layout.add(image.descriptor, image.blobs, E2E_APP_REFERENCE);
    layout.write(resolve(values.out), true);
  }
  if (values.push !== undefined) {
    const { host, path } = parseRegistryPrefix(values.push);
    const repository = `${path ? `${path}/` : ''}${E2E_APP_REPOSITORY}`;
    await pushImage(image, { host, repository, tag: TAG });
  }
  process.stdout.write(`${E2E_APP_REFERENCE}@${image.descriptor.digest}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) await main();
