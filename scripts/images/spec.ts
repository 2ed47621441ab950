/**
 * What our images are: for each image kubectl-contrast injects or deploys (the keys of the image
 * lock, src/platforms/images.ts) its repository, tag, layers and configuration. The real build
 * (build.ts) and the sample stand-ins (scripts/build-sample-images.ts) both read this table, so a
 * stand-in has the configuration of the image it stands for.
 */
import { IMAGE_EXECUTABLE, IMAGE_KEYS, type ImageKey } from '../../src/platforms/images.js';
import type { ImageConfig } from '../../src/images/types.js';
import { VERSION } from '../../src/version.js';

export const REGISTRY = 'ghcr.io/kubectl-contrast';
export const TAG = `v${VERSION}`;
/** Where the single executable lives in every image that runs it. */
export const EXECUTABLE = IMAGE_EXECUTABLE;

/** A layer of Debian packages (shared between the images that list it, so stored once). */
export type PackageLayer = 'base' | 'busybox' | 'catatonit' | 'coreutils' | 'iptables';
export const PACKAGE_LAYERS: Readonly<Record<PackageLayer, readonly string[]>> = {
  // What Node needs (libc, libstdc++, libgcc_s), the CA certificates and the protocol tables.
  base: ['libc6', 'libgcc-s1', 'gcc-12-base', 'libstdc++6', 'ca-certificates', 'netbase'],
  // The pause process of the runtime's pod sandbox (`catatonit -P`).
  // Only in the end-to-end test's workload image (scripts/images/e2e-app.ts), not in ours.
  busybox: ['busybox-static'],
  catatonit: ['catatonit'],
  // `test`, which the startup probes run (`test -f /ready`, `/bin/test -f /done`).
  coreutils: ['coreutils', 'libacl1', 'libattr1', 'libgmp10', 'libselinux1', 'libpcre2-8-0'],
  // The service mesh's redirection rules (iptables-restore, nft backend).
  iptables: [
    'iptables',
    'libip4tc2',
    'libip6tc2',
    'libxtables12',
    'libnetfilter-conntrack3',
    'libnfnetlink0',
    'libnftnl11',
    'libmnl0',
  ],
};

export type ImageSpecConfig = ImageConfig & { ExposedPorts?: Record<string, object>; StopSignal?: string };

export interface OurImage {
  key: ImageKey;
  repository: string;
  /** Package layers, bottom first; the executable layer goes on top when `executable` is set. */
  packages: readonly PackageLayer[];
  executable: boolean;
  config: ImageSpecConfig;
}

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const ENV = [PATH, 'SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'];

export const OUR_IMAGES: readonly OurImage[] = [
  {
    key: 'coordinator',
    repository: 'coordinator',
    packages: ['base'],
    executable: true,
    config: {
      Env: ENV,
      Entrypoint: [EXECUTABLE, 'coordinator', 'serve'],
      WorkingDir: '/',
      ExposedPorts: { '1313/tcp': {}, '7777/tcp': {}, '9102/tcp': {} },
    },
  },
  {
    key: 'initializer',
    repository: 'initializer',
    packages: ['base', 'coreutils'],
    executable: true,
    config: { Env: ENV, Entrypoint: [EXECUTABLE, 'initializer'], WorkingDir: '/' },
  },
  {
    key: 'serviceMesh',
    repository: 'service-mesh-proxy',
    packages: ['base', 'coreutils', 'iptables'],
    executable: true,
    config: { Env: ENV, Entrypoint: [EXECUTABLE, 'service-mesh'], WorkingDir: '/' },
  },
  {
    // The pod gives the arguments (`port-forwarder --listen-port … --target …`).
    key: 'portForwarder',
    repository: 'port-forwarder',
    packages: ['base'],
    executable: true,
    config: { Env: ENV, Entrypoint: [EXECUTABLE], User: '65534:65534', WorkingDir: '/' },
  },
  {
    key: 'nodeInstaller',
    repository: 'node-installer',
    packages: ['base'],
    executable: true,
    config: { Env: ENV, Entrypoint: [EXECUTABLE, 'runtime', 'install-node'], WorkingDir: '/' },
  },
  {
    key: 'pause',
    repository: 'pause',
    packages: ['base', 'catatonit'],
    executable: false,
    config: { Env: [PATH], Entrypoint: ['/usr/bin/catatonit', '-P'], User: '65535:65535', WorkingDir: '/' },
  },
];

// Every key of the lock has exactly one image.
{
  const keys = OUR_IMAGES.map((i) => i.key).sort();
  if (JSON.stringify(keys) !== JSON.stringify([...IMAGE_KEYS].sort()))
    throw new Error(`scripts/images/spec.ts lists ${keys.join(', ')}, the lock has ${IMAGE_KEYS.join(', ')}`);
}

export const referenceOf = (image: OurImage, registry = REGISTRY): string => `${registry}/${image.repository}:${TAG}`;

/** The lines every image's /etc/passwd and /etc/group start with. */
export const PASSWD = [
  'root:x:0:0:root:/root:/usr/sbin/nologin',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
];
export const GROUP = ['root:x:0:', 'nogroup:x:65534:'];
