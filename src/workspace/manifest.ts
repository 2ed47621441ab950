/**
 * `manifest.json`: the deployment's policy hashes, reference values and owner keys, in the
 * upstream Contrast schema (JSON keys are the upstream Go field names).
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import { isPlainObject } from '../manifests/patch.js';
import type { ReferenceValues } from '../platforms/reference-values.js';

export const MANIFEST_FILE = 'manifest.json';

export interface PolicyEntry {
  SANs: string[];
  WorkloadSecretID?: string;
  Role?: 'coordinator';
}

export interface Manifest {
  Policies: Record<string, PolicyEntry>;
  ReferenceValues: ReferenceValues;
  WorkloadOwnerPubKeys: string[];
  SeedshareOwnerPubKeys: string[];
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX = /^([0-9a-f]{2})*$/;

export function emptyManifest(): Manifest {
  return { Policies: {}, ReferenceValues: {}, WorkloadOwnerPubKeys: [], SeedshareOwnerPubKeys: [] };
}

/** Serialise like upstream: two-space indent and a trailing newline. */
export function manifestToJson(m: Manifest): string {
  const ordered: Manifest = {
    Policies: Object.fromEntries(Object.keys(m.Policies).sort().map((k) => [k, m.Policies[k]!])),
    ReferenceValues: m.ReferenceValues,
    WorkloadOwnerPubKeys: m.WorkloadOwnerPubKeys,
    SeedshareOwnerPubKeys: m.SeedshareOwnerPubKeys,
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

export function writeManifest(path: string, m: Manifest): void {
  writeFileAtomic(path, manifestToJson(m));
}

/** Load and validate a manifest; undefined when the file does not exist. */
export function readManifest(path: string): Manifest | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`cannot read manifest: ${(err as Error).message}`, { file: path });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UserError(`manifest is not valid JSON: ${(err as Error).message}`, { file: path });
  }
  return validateManifest(value, path);
}

export function validateManifest(value: unknown, file: string): Manifest {
  const fail = (field: string, what: string): never => { throw new UserError(what, { file, field }); };
  if (!isPlainObject(value)) fail('(top level)', 'manifest must be a JSON object');
  const v = value as Record<string, unknown>;
  const known = new Set(['Policies', 'ReferenceValues', 'WorkloadOwnerPubKeys', 'SeedshareOwnerPubKeys']);
  for (const k of Object.keys(v)) if (!known.has(k)) fail(k, `unknown field "${k}" (expected ${[...known].join(', ')})`);

  const policies = v.Policies ?? {};
  if (!isPlainObject(policies)) fail('Policies', 'must be an object keyed by policy hash');
  for (const [hash, entry] of Object.entries(policies as Record<string, unknown>)) {
    if (!HEX64.test(hash)) fail(`Policies["${hash}"]`, 'policy hash must be 64 lower-case hex characters');
    if (!isPlainObject(entry)) fail(`Policies["${hash}"]`, 'must be an object with SANs, WorkloadSecretID, Role');
    const e = entry as Record<string, unknown>;
    if (!Array.isArray(e.SANs) || e.SANs.some((s) => typeof s !== 'string')) fail(`Policies["${hash}"].SANs`, 'must be a list of strings');
    if (e.WorkloadSecretID !== undefined && typeof e.WorkloadSecretID !== 'string') fail(`Policies["${hash}"].WorkloadSecretID`, 'must be a string');
    if (e.Role !== undefined && e.Role !== '' && e.Role !== 'coordinator') fail(`Policies["${hash}"].Role`, `unknown role ${JSON.stringify(e.Role)}`);
  }
  const refs = v.ReferenceValues ?? {};
  if (!isPlainObject(refs)) fail('ReferenceValues', 'must be an object with snp/tdx lists');
  for (const [tee, list] of Object.entries(refs as Record<string, unknown>)) {
    if (!['snp', 'tdx', 'insecure'].includes(tee)) fail(`ReferenceValues.${tee}`, 'unknown platform type (expected snp, tdx or insecure)');
    if (list !== null && (!Array.isArray(list) || list.some((x) => !isPlainObject(x)))) fail(`ReferenceValues.${tee}`, 'must be a list of objects');
  }
  for (const field of ['WorkloadOwnerPubKeys', 'SeedshareOwnerPubKeys'] as const) {
    const keys = v[field] ?? [];
    if (!Array.isArray(keys)) fail(field, 'must be a list of hex strings');
    (keys as unknown[]).forEach((k, i) => {
      if (typeof k !== 'string' || !HEX.test(k) || k.length === 0) fail(`${field}[${i}]`, 'must be a hex-encoded public key');
    });
  }
  const m = v as Partial<Manifest>;
  return {
    Policies: (m.Policies ?? {}) as Record<string, PolicyEntry>,
    ReferenceValues: (m.ReferenceValues ?? {}) as ReferenceValues,
    WorkloadOwnerPubKeys: m.WorkloadOwnerPubKeys ?? [],
    SeedshareOwnerPubKeys: m.SeedshareOwnerPubKeys ?? [],
  };
}

/** A manifest mixing simulated and real hardware would let simulated evidence vouch for real pods. */
export function checkNoInsecureMix(m: Manifest, file: string): void {
  const refs = m.ReferenceValues;
  const secure = (refs.snp?.length ?? 0) + (refs.tdx?.length ?? 0);
  if ((refs.insecure?.length ?? 0) > 0 && secure > 0) {
    throw new UserError('the manifest mixes the insecure simulated platform with SNP/TDX reference values; generate them separately', { file, field: 'ReferenceValues' });
  }
}
