import type { Argv } from 'yargs';
import { ImageResolver, parseImagePlatform } from '../images/index.js';
import { optionsOf, registerOptions, type ImageArgs } from './options-table.js';

export type { ImageArgs } from './options-table.js';

/** Flags that choose where container images come from; shared by generate, the renderers and `policy check`. */
export function imageOptions<T>(y: Argv<T>): Argv<T & ImageArgs> {
  return registerOptions<T, ImageArgs>(y, optionsOf(['image']));
}

/** The resolver the image flags describe; its warnings go to `warn` (default: standard error). */
export function imageResolverFrom(argv: ImageArgs, warn?: (message: string) => void): ImageResolver {
  return new ImageResolver({
    ociLayouts: argv['oci-layout'],
    dockerArchives: argv['docker-archive'],
    cacheDir: argv.cache ? argv['cache-dir'] : false,
    insecureRegistries: argv['insecure-registry'],
    offline: argv.offline,
    dockerConfigPath: argv['docker-config'],
    platform: parseImagePlatform(argv['image-platform']),
    progress: true,
    ...(warn ? { warn } : {}),
  });
}
