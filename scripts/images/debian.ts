/**
 * Debian packages as layer content: the pinned list (debian-packages.txt), fetched with
 * `apt-get download` from the configured Debian mirror into a cache, checked against the pinned
 * SHA-256 before use, and unpacked (`dpkg-deb --fsys-tarfile`) into layer entries. Maintainer
 * scripts never run: what they would generate (the CA bundle, alternatives links) the image
 * spec writes itself.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import type { LayerEntry } from '../../src/images/oci-build.js';

export interface PinnedPackage {
  name: string;
  version: string;
  sha256: string;
}

const NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const VERSION = /^[A-Za-z0-9.+~:-]+$/;

/** Parse debian-packages.txt strictly: three fields a line, no duplicates. */
export function parsePinnedPackages(text: string, file: string): Map<string, PinnedPackage> {
  const pins = new Map<string, PinnedPackage>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const [name, version, sha256, ...rest] = line.split(/\s+/);
    const where = `${file}:${i + 1}`;
    if (rest.length > 0 || !name || !version || !sha256) throw new Error(`${where}: expected "name version sha256"`);
    if (!NAME.test(name)) throw new Error(`${where}: "${name}" is not a Debian package name`);
    if (!VERSION.test(version)) throw new Error(`${where}: "${version}" is not a Debian version`);
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`${where}: the SHA-256 must be 64 lower-case hex digits`);
    if (pins.has(name)) throw new Error(`${where}: ${name} is pinned twice`);
    pins.set(name, { name, version, sha256 });
  });
  return pins;
}

export function loadPinnedPackages(): Map<string, PinnedPackage> {
  const file = new URL('./debian-packages.txt', import.meta.url).pathname;
  return parsePinnedPackages(readFileSync(file, 'utf8'), 'scripts/images/debian-packages.txt');
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** The cached .deb of a pin, fetched when missing; its bytes are checked on every use. */
export function fetchPackage(pin: PinnedPackage, cacheDir: string): Buffer {
  mkdirSync(cacheDir, { recursive: true });
  const file = join(cacheDir, `${pin.name}_${pin.version.replace(/:/g, '%3a')}_${pin.sha256.slice(0, 16)}.deb`);
  if (!existsSync(file)) {
    const tmp = mkdtempSync(join(cacheDir, '.download-'));
    try {
      const r = spawnSync('apt-get', ['download', '-qq', `${pin.name}=${pin.version}`], { cwd: tmp, encoding: 'utf8' });
      if (r.status !== 0) {
        throw new Error(
          `apt-get download ${pin.name}=${pin.version} failed: ${(r.stderr || r.error?.message || '').trim()} (is the version still in the Debian mirror? run apt-get update, or update scripts/images/debian-packages.txt)`,
        );
      }
      const got = readdirSync(tmp).filter((n) => n.endsWith('.deb'));
      if (got.length !== 1)
        throw new Error(`apt-get download ${pin.name}=${pin.version} left ${got.length} .deb files`);
      renameSync(join(tmp, got[0]!), file);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const data = readFileSync(file);
  const actual = sha256(data);
  if (actual !== pin.sha256) {
    rmSync(file, { force: true });
    throw new Error(
      `${pin.name} ${pin.version}: the .deb has SHA-256 ${actual}, the pin says ${pin.sha256}; removed it from the cache`,
    );
  }
  return data;
}

/** Paths a minimal runtime image does without (documentation except copyright, manuals, translations). */
function dropped(path: string): boolean {
  if (/^usr\/share\/doc\/[^/]+\/copyright$/.test(path)) return false;
  return /^usr\/share\/(doc|man|info|lintian|locale|bug|bash-completion|zsh)(\/|$)/.test(path);
}

/** Normalise a path inside a .deb (`./usr/lib/x`) to a layer path (`usr/lib/x`); refuses escapes. */
function layerPath(name: string, pkg: string): string {
  const p = name.replace(/^\.\//, '').replace(/\/$/, '');
  if (p === '' || p === '.') return '';
  if (p.startsWith('/') || p.split('/').some((s) => s === '..' || s === ''))
    throw new Error(`${pkg}: unsafe path "${name}" in the package`);
  return p;
}

/** The files, directories and links of a .deb's data archive, as layer entries (no maintainer scripts). */
export async function unpackPackage(deb: Buffer, pkg: string): Promise<LayerEntry[]> {
  const tmp = mkdtempSync(join(process.env.TMPDIR ?? '/tmp', 'deb-'));
  let tar: Buffer;
  try {
    const f = join(tmp, 'p.deb');
    writeFileSync(f, deb);
    tar = execFileSync('dpkg-deb', ['--fsys-tarfile', f], { maxBuffer: 1 << 30 });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const entries: LayerEntry[] = [];
  const extract = tarStream.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('error', reject);
      stream.on('end', () => {
        try {
          const path = layerPath(header.name, pkg);
          if (path !== '' && !dropped(path)) {
            const mode = (header.mode ?? 0o644) & 0o7777;
            if (header.type === 'directory') entries.push({ path, type: 'dir', mode });
            else if (header.type === 'file')
              entries.push({ path, content: Buffer.concat(chunks), mode, uid: header.uid ?? 0, gid: header.gid ?? 0 });
            else if (header.type === 'symlink') entries.push({ path, type: 'symlink', target: header.linkname ?? '' });
            else if (header.type === 'link')
              entries.push({ path, type: 'hardlink', target: layerPath(header.linkname ?? '', pkg) });
            else throw new Error(`${pkg}: unsupported entry type ${header.type} at ${header.name}`);
          }
          next();
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  Readable.from([tar]).pipe(extract);
  await done;
  return entries;
}
