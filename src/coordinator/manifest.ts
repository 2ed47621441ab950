/**
 * The schema of `manifest.json`, which the Coordinator enforces: the deployment's policy
 * hashes, reference values and owner keys, in the upstream Contrast schema (JSON keys are the
 * upstream Go field names). `generate` writes manifests through it and `set` checks them with
 * it, so the CLI and the Coordinator cannot disagree about a manifest.
 */
import { UserError } from '../util/errors.js';
import { isPlainObject } from '../util/values.js';
import { missingReferenceFields, parseReferenceValues, type ReferenceValues } from '../attestation/reference-values.js';
import { REFERENCE_VALUE_KEYS, TEES, type Tee } from '../attestation/tees.js';
import { OwnerKeyError, parseSeedshareOwnerKeyHex, parseWorkloadOwnerKeyHex } from './owner-keys.js';

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
  /**
   * Our extension of upstream's schema: `true` states that the deployment has no seed-share
   * owner on purpose (`generate --disable-recovery`), so a Coordinator restart can never be
   * recovered. Omitted otherwise, so ordinary manifests keep upstream's exact format.
   */
  DisableRecovery?: boolean;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** How many reference-value entries the manifest lists for the TEEs `which` selects. */
function entries(refs: ReferenceValues, which: (tee: Tee) => boolean = () => true): number {
  return TEES.filter(which).reduce((n, tee) => n + (refs[tee.referenceValues]?.length ?? 0), 0);
}

/** A manifest problem: the field (e.g. `SeedshareOwnerPubKeys[1]`) and what is wrong with it. */
export class ManifestError extends UserError {
  constructor(
    readonly field: string,
    readonly detail: string,
    file: string,
  ) {
    super(detail, { file, field });
    this.name = 'ManifestError';
  }

  /** `manifest.<field>: <detail>`, as the Coordinator reports it. */
  get fieldMessage(): string {
    return `manifest.${this.field}: ${this.detail}`;
  }
}

export function emptyManifest(): Manifest {
  return { Policies: {}, ReferenceValues: {}, WorkloadOwnerPubKeys: [], SeedshareOwnerPubKeys: [] };
}

/** Serialise like upstream: two-space indent and a trailing newline. */
export function manifestToJson(m: Manifest): string {
  const ordered: Manifest = {
    Policies: Object.fromEntries(
      Object.keys(m.Policies)
        .sort()
        .map((k) => [k, m.Policies[k]!]),
    ),
    ReferenceValues: m.ReferenceValues,
    WorkloadOwnerPubKeys: m.WorkloadOwnerPubKeys,
    SeedshareOwnerPubKeys: m.SeedshareOwnerPubKeys,
    ...(m.DisableRecovery ? { DisableRecovery: true } : {}),
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

const KNOWN_FIELDS = [
  'Policies',
  'ReferenceValues',
  'WorkloadOwnerPubKeys',
  'SeedshareOwnerPubKeys',
  'DisableRecovery',
];

/**
 * The manifest's shape and everything in it that can never become valid later: policy keys
 * (64 lower-case hex), policy entries, the owner keys (each must parse, strictly: see
 * parseWorkloadOwnerKeyHex and parseSeedshareOwnerKeyHex; no key listed twice) and the
 * recovery setting. What a manifest may still lack while it is being written (a Coordinator
 * policy, filled-in reference values) is checked by checkManifestReady before it is set.
 */
export function validateManifest(value: unknown, file: string): Manifest {
  const fail = (field: string, what: string): never => {
    throw new ManifestError(field, what, file);
  };
  if (!isPlainObject(value)) fail('(top level)', 'manifest must be a JSON object');
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v))
    if (!KNOWN_FIELDS.includes(k)) fail(k, `unknown field "${k}" (expected ${KNOWN_FIELDS.join(', ')})`);

  const policies = v.Policies ?? {};
  if (!isPlainObject(policies)) fail('Policies', 'must be an object keyed by policy hash');
  for (const [hash, entry] of Object.entries(policies as Record<string, unknown>)) {
    if (!HEX64.test(hash)) fail(`Policies["${hash}"]`, 'policy hash must be 64 lower-case hex characters');
    if (!isPlainObject(entry)) fail(`Policies["${hash}"]`, 'must be an object with SANs, WorkloadSecretID, Role');
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e))
      if (!['SANs', 'WorkloadSecretID', 'Role'].includes(k))
        fail(`Policies["${hash}"].${k}`, `unknown field "${k}" (expected SANs, WorkloadSecretID, Role)`);
    if (
      e.SANs !== undefined &&
      e.SANs !== null &&
      (!Array.isArray(e.SANs) || e.SANs.some((s) => typeof s !== 'string'))
    )
      fail(`Policies["${hash}"].SANs`, 'must be a list of strings');
    if (e.WorkloadSecretID !== undefined && typeof e.WorkloadSecretID !== 'string')
      fail(`Policies["${hash}"].WorkloadSecretID`, 'must be a string');
    if (e.Role !== undefined && e.Role !== '' && e.Role !== 'coordinator')
      fail(`Policies["${hash}"].Role`, `unknown role ${JSON.stringify(e.Role)} (expected "" or "coordinator")`);
  }
  const refs = v.ReferenceValues ?? {};
  if (!isPlainObject(refs)) fail('ReferenceValues', 'must be an object with snp/tdx lists');
  for (const [tee, list] of Object.entries(refs as Record<string, unknown>)) {
    if (!(REFERENCE_VALUE_KEYS as readonly string[]).includes(tee))
      fail(
        `ReferenceValues.${tee}`,
        `unknown platform type (expected ${REFERENCE_VALUE_KEYS.slice(0, -1).join(', ')} or ${REFERENCE_VALUE_KEYS.at(-1)})`,
      );
    if (list !== null && (!Array.isArray(list) || list.some((x) => !isPlainObject(x))))
      fail(`ReferenceValues.${tee}`, 'must be a list of objects');
  }
  const keyLists = {
    WorkloadOwnerPubKeys: parseWorkloadOwnerKeyHex,
    SeedshareOwnerPubKeys: parseSeedshareOwnerKeyHex,
  } as const;
  for (const [field, parse] of Object.entries(keyLists)) {
    const keys = v[field] ?? [];
    if (!Array.isArray(keys)) fail(field, 'must be a list of hex strings');
    const seen = new Map<string, number>();
    (keys as unknown[]).forEach((k, i) => {
      try {
        parse(k);
      } catch (err) {
        if (err instanceof OwnerKeyError) fail(`${field}[${i}]`, err.message);
        throw err;
      }
      const first = seen.get(k as string);
      if (first !== undefined) fail(`${field}[${i}]`, `the same key as ${field}[${first}]`);
      seen.set(k as string, i);
    });
  }
  if (v.DisableRecovery !== undefined && typeof v.DisableRecovery !== 'boolean')
    fail('DisableRecovery', 'must be true or false');
  const owners = (v.SeedshareOwnerPubKeys ?? []) as string[];
  if (v.DisableRecovery === true && owners.length > 0) {
    fail(
      'DisableRecovery',
      `is true, but SeedshareOwnerPubKeys lists ${owners.length} key(s); remove one or the other (generate with or without --disable-recovery)`,
    );
  }
  const m = v as Partial<Manifest>;
  const out: Manifest = {
    Policies: Object.fromEntries(
      Object.entries((m.Policies ?? {}) as Record<string, PolicyEntry>).map(([h, e]) => [
        h,
        { ...e, SANs: e.SANs ?? [] },
      ]),
    ),
    ReferenceValues: (m.ReferenceValues ?? {}) as ReferenceValues,
    WorkloadOwnerPubKeys: m.WorkloadOwnerPubKeys ?? [],
    SeedshareOwnerPubKeys: owners,
  };
  if (v.DisableRecovery === true) out.DisableRecovery = true;
  return out;
}

/**
 * What a manifest needs before a Coordinator accepts it (upstream's Manifest.Validate and
 * more), checked by `set` and by the Coordinator itself:
 *  - at least one policy with Role "coordinator", so the Coordinator can be attested;
 *  - reference values for at least one TEE, all of them filled in and well-formed;
 *  - the simulated TEE not mixed with real ones;
 *  - at least one seed-share owner, unless `DisableRecovery` is true.
 */
export function checkManifestReady(m: Manifest, file: string): void {
  const fail = (field: string, what: string): never => {
    throw new ManifestError(field, what, file);
  };
  if (!Object.values(m.Policies).some((e) => e.Role === 'coordinator')) {
    fail(
      'Policies',
      'no policy has "Role": "coordinator", so the Coordinator cannot be attested; include the Coordinator\'s resources when running `kubectl contrast generate`',
    );
  }
  const refs = m.ReferenceValues;
  if (entries(refs) === 0)
    fail(
      'ReferenceValues',
      'lists no reference values, so no evidence can ever be accepted; run `kubectl contrast generate --platform …`',
    );
  const missing = missingReferenceFields(refs);
  if (missing.length > 0)
    fail(
      missing[0]!,
      `must be filled in with the values of your hardware${missing.length > 1 ? ` (and ${missing.length - 1} more field(s): ${missing.slice(1, 4).join(', ')}${missing.length > 4 ? ', …' : ''})` : ''}`,
    );
  try {
    parseReferenceValues(refs, file);
  } catch (err) {
    if (err instanceof UserError && err.location.field !== undefined)
      fail(`ReferenceValues.${err.location.field}`, err.reason);
    throw err;
  }
  checkNoInsecureMix(m, file);
  if (m.SeedshareOwnerPubKeys.length === 0 && m.DisableRecovery !== true) {
    fail(
      'SeedshareOwnerPubKeys',
      'lists no seed-share owner, so the Coordinator could never be recovered after a restart; add one (`generate --add-seedshare-owner-key`, or keep the default seedshare-owner.pem) or disable recovery explicitly (`generate --disable-recovery`, which writes "DisableRecovery": true)',
    );
  }
}

/**
 * `generate --disable-recovery` (true): no seed-share owner, and the manifest says so. Without
 * the flag (false) a DisableRecovery taken over from the previous manifest is dropped when the
 * run listed owners again; the flag is per run, like --disable-updates.
 */
export function withRecoveryChoice(m: Manifest, disableRecovery: boolean): Manifest {
  const out: Manifest = { ...m };
  delete out.DisableRecovery;
  if (disableRecovery) {
    out.SeedshareOwnerPubKeys = [];
    out.DisableRecovery = true;
  } else if (m.DisableRecovery && m.SeedshareOwnerPubKeys.length === 0) {
    out.DisableRecovery = true;
  }
  return out;
}

/** A manifest mixing simulated and real hardware would let simulated evidence vouch for real pods. */
export function checkNoInsecureMix(m: Manifest, file: string): void {
  if (
    entries(m.ReferenceValues, (tee) => tee.simulated) > 0 &&
    entries(m.ReferenceValues, (tee) => !tee.simulated) > 0
  ) {
    throw new UserError(
      'the manifest mixes the insecure simulated platform with SNP/TDX reference values; generate them separately',
      { file, field: 'ReferenceValues' },
    );
  }
}
