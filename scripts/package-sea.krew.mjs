// The krew plugin manifest (krew-manifest.yaml): writing the entry of one platform and
// checking a manifest against krew's schema and validation rules (krew's ValidatePlugin plus
// the krew-index checks that need no network). Used by `npm run package` and the tests.
import { parse, stringify } from 'yaml';

export const KREW_API_VERSION = 'krew.googlecontainertools.github.com/v1alpha2';

/** os/arch pairs krew-index accepts. */
export const KREW_PLATFORMS = {
  windows: ['386', 'amd64', 'arm64'],
  linux: ['386', 'amd64', 'arm', 'arm64', 'ppc64le'],
  darwin: ['386', 'amd64', 'arm64'],
};

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])$/i;
// SemVer 2.0 with the leading "v" krew requires.
const SEMVER =
  /^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

/** Node's os/arch names → krew's (GOOS/GOARCH). */
export function krewPlatformOf(platform = process.platform, arch = process.arch) {
  const os = { linux: 'linux', darwin: 'darwin', win32: 'windows' }[platform];
  const a = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm', ppc64: 'ppc64le' }[arch];
  if (!os || !a) throw new Error(`krew has no platform for ${platform}/${arch}`);
  return { os, arch: a };
}

function selectorMatches(selector, os, arch) {
  const labels = selector?.matchLabels ?? {};
  if (labels.os !== undefined && labels.os !== os) return false;
  if (labels.arch !== undefined && labels.arch !== arch) return false;
  for (const expr of selector?.matchExpressions ?? []) {
    const value = { os, arch }[expr.key];
    const values = expr.values ?? [];
    if (expr.operator === 'In' && !values.includes(value)) return false;
    if (expr.operator === 'NotIn' && values.includes(value)) return false;
    if (expr.operator === 'Exists' && value === undefined) return false;
    if (expr.operator === 'DoesNotExist' && value !== undefined) return false;
  }
  return true;
}

/**
 * Problems with a krew manifest; empty when it is valid. `fileName` (when given) must be
 * `<metadata.name>.yaml`, as krew-index requires.
 */
export function validateKrewManifest(manifest, fileName) {
  const errors = [];
  const m = manifest ?? {};
  if (m.apiVersion !== KREW_API_VERSION) errors.push(`apiVersion must be ${KREW_API_VERSION}`);
  if (m.kind !== 'Plugin') errors.push('kind must be Plugin');
  const name = m.metadata?.name;
  if (typeof name !== 'string' || !/^[\w-]+$/.test(name)) errors.push('metadata.name must match ^[\\w-]+$');
  else if (WINDOWS_RESERVED.test(name)) errors.push(`metadata.name "${name}" is a reserved Windows name`);
  if (fileName !== undefined && name !== undefined && fileName !== `${name}.yaml`)
    errors.push(`krew-index wants the file named ${name}.yaml (found ${fileName})`);
  const spec = m.spec ?? {};
  if (typeof spec.version !== 'string' || !SEMVER.test(spec.version))
    errors.push('spec.version must be semantic version with a leading "v" (e.g. v0.1.0)');
  if (typeof spec.shortDescription !== 'string' || spec.shortDescription.trim() === '')
    errors.push('spec.shortDescription is required');
  else if (/[\r\n]/.test(spec.shortDescription)) errors.push('spec.shortDescription must be one line');
  if (typeof spec.description !== 'string' || spec.description.trim() === '')
    errors.push('spec.description is required (krew docs)');
  const platforms = spec.platforms;
  if (!Array.isArray(platforms) || platforms.length === 0) {
    errors.push('spec.platforms needs at least one platform');
    return errors;
  }
  platforms.forEach((p, i) => {
    const at = `spec.platforms[${i}]`;
    if (typeof p.uri !== 'string' || p.uri === '') errors.push(`${at}.uri is required`);
    else if (!/\.(tar\.gz|tgz|zip)$/.test(new URL(p.uri, 'file:///').pathname))
      errors.push(`${at}.uri must be a .tar.gz or .zip archive`);
    if (typeof p.sha256 !== 'string' || !/^[a-f0-9]{64}$/.test(p.sha256))
      errors.push(`${at}.sha256 must be 64 lowercase hex digits`);
    if (typeof p.bin !== 'string' || p.bin === '') errors.push(`${at}.bin is required`);
    const sel = p.selector;
    if (
      !sel ||
      typeof sel !== 'object' ||
      (Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0)
    ) {
      errors.push(`${at}.selector must not be empty`);
    } else {
      for (const key of Object.keys(sel.matchLabels ?? {}))
        if (key !== 'os' && key !== 'arch') errors.push(`${at}.selector may only use os and arch (found ${key})`);
      for (const e of sel.matchExpressions ?? [])
        if (e.key !== 'os' && e.key !== 'arch') errors.push(`${at}.selector may only use os and arch (found ${e.key})`);
      const supported = Object.entries(KREW_PLATFORMS).some(([os, arches]) =>
        arches.some((arch) => selectorMatches(sel, os, arch)),
      );
      if (!supported) errors.push(`${at}.selector matches no platform krew supports`);
    }
    if (p.files !== undefined) {
      if (!Array.isArray(p.files) || p.files.length === 0) errors.push(`${at}.files, when given, must not be empty`);
      else
        p.files.forEach((f, j) => {
          if (!f || typeof f.from !== 'string' || f.from === '' || typeof f.to !== 'string' || f.to === '')
            errors.push(`${at}.files[${j}] needs from and to`);
        });
    }
  });
  // krew-index: no os/arch may be matched by two platforms.
  for (const [os, arches] of Object.entries(KREW_PLATFORMS)) {
    for (const arch of arches) {
      const matching = platforms.filter((p) => p.selector && selectorMatches(p.selector, os, arch));
      if (matching.length > 1) errors.push(`platforms overlap on ${os}/${arch}`);
    }
  }
  return errors;
}

/**
 * The manifest text with the platform entry for `os`/`arch` set to this archive (other
 * platforms are kept, so a release can be assembled from several builds).
 */
export function updateKrewManifest(text, { version, os, arch, uri, sha256, bin, files }) {
  const m = text ? parse(text) : undefined;
  if (!m || typeof m !== 'object') throw new Error('krew-manifest.yaml is not a YAML mapping');
  m.spec ??= {};
  m.spec.version = version;
  const entry = { selector: { matchLabels: { os, arch } }, uri, sha256, files, bin };
  const platforms = (m.spec.platforms ?? []).filter(
    (p) => !(p.selector?.matchLabels?.os === os && p.selector?.matchLabels?.arch === arch),
  );
  platforms.push(entry);
  platforms.sort((a, b) =>
    `${a.selector?.matchLabels?.os}/${a.selector?.matchLabels?.arch}`.localeCompare(
      `${b.selector?.matchLabels?.os}/${b.selector?.matchLabels?.arch}`,
    ),
  );
  m.spec.platforms = platforms;
  const header = /^(#[^\n]*\n)*/.exec(text)[0];
  return header + stringify(m, { lineWidth: 0 });
}
