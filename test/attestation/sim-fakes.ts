/** Simulated-platform reports (src/attestation/simulated.ts) built independently of the issuer. */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { SIMULATED_MEASUREMENT } from '../../src/attestation/simulated.js';

export interface SimFields {
  measurement?: Buffer;
  hostData?: Buffer;
  reportData?: Buffer;
  version?: number;
  magic?: string;
}

/** A fresh simulated root (P-384). */
export function simRootKeys(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-384' });
}

/** A 252-byte simulated report signed by `key`, laid out as the module comment of simulated.ts says. */
export function simReport(key: KeyObject, f: SimFields = {}): Buffer {
  const r = Buffer.alloc(252);
  Buffer.from(f.magic ?? 'KCSIMREP', 'latin1').copy(r, 0, 0, 8);
  r.writeUInt32BE(f.version ?? 1, 8);
  (f.measurement ?? Buffer.from(SIMULATED_MEASUREMENT, 'hex')).copy(r, 12);
  (f.hostData ?? Buffer.alloc(32, 0x11)).copy(r, 60);
  (f.reportData ?? Buffer.alloc(64, 0x22)).copy(r, 92);
  sign('sha384', r.subarray(0, 156), { key, dsaEncoding: 'ieee-p1363' }).copy(r, 156);
  return r;
}

export const SIM_REFS = [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }];
