import type { Argv } from 'yargs';
import { ImageResolver, parsePlatform } from '../images/index.js';

export interface ImageArgs {
  'oci-layout': string[];
  'docker-archive': string[];
  'cache-dir'?: string;
  cache: boolean;
  'insecure-registry': string[];
  offline: boolean;
  'docker-config'?: string;
  'image-platform': string;
}

/** Flags that choose where container images come from; shared by generate and the renderers. */
export function imageOptions<T>(y: Argv<T>): Argv<T & ImageArgs> {
  return y
    .option('oci-layout', { type: 'string', array: true, default: [], describe: 'OCI image layout directory to take images from before any registry (repeatable)' })
    .option('docker-archive', { type: 'string', array: true, default: [], describe: '`docker save` archive to take images from before any registry (repeatable)' })
    .option('cache-dir', { type: 'string', describe: 'Image metadata cache (default $CONTRAST_CACHE_DIR, $XDG_CACHE_HOME/kubectl-contrast or ~/.cache/kubectl-contrast)' })
    .option('cache', { type: 'boolean', default: true, describe: 'Read and write the image cache (--no-cache to skip it)' })
    .option('insecure-registry', { type: 'string', array: true, default: [], describe: 'Registry host[:port] to reach over plain HTTP (repeatable)' })
    .option('offline', { type: 'boolean', default: false, describe: 'Never contact a registry: use local sources and the cache only' })
    .option('docker-config', { type: 'string', describe: 'Docker config file with registry credentials (default ~/.docker/config.json and containers auth files)' })
    .option('image-platform', { type: 'string', default: 'linux/amd64', describe: 'Platform picked from multi-platform images' }) as Argv<T & ImageArgs>;
}

export function imageResolverFrom(argv: ImageArgs): ImageResolver {
  return new ImageResolver({
    ociLayouts: argv['oci-layout'],
    dockerArchives: argv['docker-archive'],
    cacheDir: argv.cache ? argv['cache-dir'] : false,
    insecureRegistries: argv['insecure-registry'],
    offline: argv.offline,
    dockerConfigPath: argv['docker-config'],
    platform: parsePlatform(argv['image-platform']),
    progress: true,
  });
}
