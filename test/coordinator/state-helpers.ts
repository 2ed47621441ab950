/** Keys, manifests and readers shared by the Coordinator state tests (state*.test.ts). */
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { sha256 } from '../../src/coordinator/crypto.js';
import { parsePemCertificates } from '../../src/attestation/certificate.js';
import { SIMULATED_MEASUREMENT } from '../../src/attestation/simulated.js';

export const rsa2048 = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
export const wo = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
export const pkcs1 = (k: KeyObject) => createPublicKey(k).export({ type: 'pkcs1', format: 'der' }).toString('hex');
export const pkix = (k: KeyObject) => createPublicKey(k).export({ type: 'spki', format: 'der' }).toString('hex');
export const SO_HEX = pkcs1(rsa2048);
export const WO_HEX = pkix(wo);
export const COORD = Buffer.from('coordinator policy');

export interface ManifestParts {
  policies?: Buffer[];
  Policies?: Record<string, unknown>;
  ReferenceValues?: unknown;
  WorkloadOwnerPubKeys?: unknown[];
  SeedshareOwnerPubKeys?: unknown[];
  DisableRecovery?: unknown;
}

export function manifest(parts: ManifestParts = {}): Buffer {
  const policies = parts.policies ?? [Buffer.from('web policy')];
  const Policies: Record<string, unknown> = parts.Policies ?? {
    [sha256(COORD).toString('hex')]: { SANs: ['coordinator'], Role: 'coordinator' },
    ...Object.fromEntries(
      policies.map((p, i) => [sha256(p).toString('hex'), { SANs: [`w${i}`, '*'], WorkloadSecretID: `id-${i}` }]),
    ),
  };
  const m: Record<string, unknown> = {
    Policies,
    ReferenceValues: parts.ReferenceValues ?? {
      insecure: [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }],
    },
    WorkloadOwnerPubKeys: parts.WorkloadOwnerPubKeys ?? [WO_HEX],
    SeedshareOwnerPubKeys: parts.SeedshareOwnerPubKeys ?? [SO_HEX],
  };
  if (parts.DisableRecovery !== undefined) m.DisableRecovery = parts.DisableRecovery;
  return Buffer.from(`${JSON.stringify(m, null, 2)}\n`);
}

export const quiet = { log: () => undefined };

export function rootKeyDer(pem: string): Buffer {
  const certs = parsePemCertificates(Buffer.from(pem), 'served root', { count: 1 });
  return Buffer.from(certs[0]!.publicKey.export({ type: 'spki', format: 'der' }));
}
