/**
 * The layers of our images: one per package set of spec.ts (merged /usr like Debian 12, plus what
 * the maintainer scripts would have made) and one with the single executable. Each layer is built
 * once and shared by every image that lists it.
 */
import { buildLayer, buildTar, type BuiltLayer, type LayerEntry } from '../../src/images/oci-build.js';
import { fetchPackage, unpackPackage, type PinnedPackage } from './debian.js';
import { EXECUTABLE, GROUP, PACKAGE_LAYERS, PASSWD, type PackageLayer } from './spec.js';

/** Debian 12 merges /bin, /sbin and /lib into /usr; packages still ship some files below them. */
const MERGED = ['bin', 'sbin', 'lib', 'lib64'];

function mergedUsr(path: string): string {
  const top = path.split('/', 1)[0]!;
  return MERGED.includes(top) ? `usr/${path}` : path;
}

function relocate(e: LayerEntry): LayerEntry {
  const path = mergedUsr(e.path);
  return e.type === 'hardlink' ? { ...e, path, target: mergedUsr(e.target) } : { ...e, path };
}

// Not wget: Debian 12's static busybox crashes in it (measured: SIGSEGV on any URL); nc does HTTP.
const BUSYBOX_APPLETS = ['sh', 'cat', 'echo', 'httpd', 'ls', 'nc', 'printf', 'sleep', 'test'];

/** What a package layer holds besides the packages' own files. */
function extras(layer: PackageLayer, files: Map<string, LayerEntry>): LayerEntry[] {
  if (layer === 'base') {
    // update-ca-certificates would concatenate the enabled certificates (all of Mozilla's).
    const certs = [...files.values()]
      .filter(
        (e): e is Extract<LayerEntry, { content: string | Buffer }> =>
          'content' in e && /^usr\/share\/ca-certificates\/mozilla\/[^/]+\.crt$/.test(e.path),
      )
      .sort((a, b) => (a.path < b.path ? -1 : 1))
      .map((e) => {
        const t = e.content.toString();
        return t.endsWith('\n') ? t : `${t}\n`;
      });
    if (certs.length < 100) throw new Error(`ca-certificates: only ${certs.length} certificates found`);
    return [
      ...MERGED.map((d): LayerEntry => ({ path: d, type: 'symlink', target: `usr/${d}` })),
      { path: 'etc/passwd', content: `${PASSWD.join('\n')}\n` },
      { path: 'etc/group', content: `${GROUP.join('\n')}\n` },
      { path: 'etc/ssl/certs/ca-certificates.crt', content: certs.join('') },
      { path: 'tmp', type: 'dir', mode: 0o1777 },
      { path: 'root', type: 'dir', mode: 0o700 },
    ];
  }
  if (layer === 'busybox') {
    // The applets the end-to-end workloads call, as `busybox --install` would link them.
    return BUSYBOX_APPLETS.map((n): LayerEntry => ({ path: `usr/bin/${n}`, type: 'symlink', target: 'busybox' }));
  }
  if (layer === 'iptables') {
    // update-alternatives would choose the nft backend, Debian 12's default.
    return ['iptables', 'iptables-restore', 'iptables-save', 'ip6tables', 'ip6tables-restore', 'ip6tables-save'].map(
      (n): LayerEntry => ({ path: `usr/sbin/${n}`, type: 'symlink', target: 'xtables-nft-multi' }),
    );
  }
  return [];
}

export async function packageLayer(
  layer: PackageLayer,
  pins: Map<string, PinnedPackage>,
  debCache: string,
): Promise<BuiltLayer> {
  const files = new Map<string, LayerEntry>();
  for (const name of PACKAGE_LAYERS[layer]) {
    const pin = pins.get(name);
    if (!pin) throw new Error(`package layer ${layer}: ${name} is not pinned in scripts/images/debian-packages.txt`);
    for (const e of (await unpackPackage(fetchPackage(pin, debCache), name)).map(relocate)) {
      const had = files.get(e.path);
      if (had && !(had.type === 'dir' && e.type === 'dir'))
        throw new Error(`package layer ${layer}: ${e.path} is shipped twice (${name})`);
      files.set(e.path, e);
    }
  }
  for (const e of extras(layer, files)) files.set(e.path, e);
  // A merged directory is a link in the base layer; it cannot also be a directory here.
  for (const d of MERGED) if (files.get(d)?.type === 'dir') files.delete(d);
  return buildLayer(buildTar([...files.values()]));
}

export function executableLayer(executable: Buffer): BuiltLayer {
  return buildLayer(buildTar([{ path: EXECUTABLE.slice(1), content: executable, mode: 0o755 }]));
}
