/**
 * Issuer of the simulated platform (see src/attestation/simulated.ts for the report format).
 * It signs reports with the local root key, creating the root on first use. The host data
 * (policy hash) comes from configuration, since no hypervisor sets it.
 */
import { generateKeyPairSync, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.js';
import {
  SIMULATED_MEASUREMENT,
  SIM_MAGIC,
  SIM_REPORT_SIZE,
  SIM_SIGNED_SIZE,
  SIM_WARNING,
  simDir,
  simRootKeyPath,
  simRootPublicPath,
} from '../attestation/simulated.js';
import { OID_SIMULATED_EVIDENCE } from '../attestation/tees.js';
import type { Evidence, Issuer } from './issuer.js';
import { signOnPool } from '../util/sign-on-pool.js';

/** Load the simulated root's private key, creating the root (mode 0600) if there is none. */
export function loadOrCreateSimRoot(dir = simDir()): KeyObject {
  const keyPath = simRootKeyPath(dir);
  try {
    return createPrivateKey(readFileSync(keyPath, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  try {
    writeFileAtomic(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, {
      mode: 0o600,
      exclusive: true,
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return createPrivateKey(readFileSync(keyPath, 'utf8'));
    throw err;
  }
  writeFileAtomic(simRootPublicPath(dir), publicKey.export({ type: 'spki', format: 'pem' }) as string);
  return privateKey;
}

/** A simulated report with its signature area still zero; the part before it is what is signed. */
function unsignedSimReport(hostData: Buffer, reportData: Buffer, measurement: Buffer): Buffer {
  if (hostData.length !== 32) throw new Error(`simulated host data must be 32 bytes, got ${hostData.length}`);
  if (reportData.length !== 64) throw new Error(`report data must be 64 bytes, got ${reportData.length}`);
  const report = Buffer.alloc(SIM_REPORT_SIZE);
  SIM_MAGIC.copy(report, 0);
  report.writeUInt32BE(1, 8);
  measurement.copy(report, 12);
  hostData.copy(report, 60);
  reportData.copy(report, 92);
  return report;
}

const SIM_SIGNATURE = { dsaEncoding: 'ieee-p1363' } as const;
const SIMULATED_MEASUREMENT_BYTES = Buffer.from(SIMULATED_MEASUREMENT, 'hex');

export function buildSimReport(
  rootKey: KeyObject,
  hostData: Buffer,
  reportData: Buffer,
  measurement = SIMULATED_MEASUREMENT_BYTES,
): Buffer {
  const report = unsignedSimReport(hostData, reportData, measurement);
  sign('sha384', report.subarray(0, SIM_SIGNED_SIZE), { key: rootKey, ...SIM_SIGNATURE }).copy(report, SIM_SIGNED_SIZE);
  return report;
}

/** buildSimReport with the P-384 signature made on libuv's pool, for the servers that issue reports. */
export async function issueSimReport(rootKey: KeyObject, hostData: Buffer, reportData: Buffer): Promise<Buffer> {
  const report = unsignedSimReport(hostData, reportData, SIMULATED_MEASUREMENT_BYTES);
  const signature = await signOnPool('sha384', report.subarray(0, SIM_SIGNED_SIZE), { key: rootKey, ...SIM_SIGNATURE });
  signature.copy(report, SIM_SIGNED_SIZE);
  return report;
}

export class SimulatedIssuer implements Issuer {
  readonly name = 'insecure-sim';
  private warned = false;

  constructor(
    private readonly rootKey: KeyObject,
    readonly hostData: Buffer,
  ) {}

  static fromEnvironment(policyHashHex: string, dir = simDir()): SimulatedIssuer {
    if (!/^[0-9a-f]{64}$/.test(policyHashHex))
      throw new Error(
        `the simulated policy hash must be 64 lower-case hex characters, got ${JSON.stringify(policyHashHex)}`,
      );
    return new SimulatedIssuer(loadOrCreateSimRoot(dir), Buffer.from(policyHashHex, 'hex'));
  }

  issue(reportData: Buffer): Promise<Evidence> {
    if (!this.warned) {
      process.stderr.write(`${SIM_WARNING}\n`);
      this.warned = true;
    }
    return issueSimReport(this.rootKey, this.hostData, reportData).then((value) => ({
      oid: OID_SIMULATED_EVIDENCE,
      value,
    }));
  }
}
