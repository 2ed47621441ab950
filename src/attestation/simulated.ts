/**
 * The simulated platform `insecure-sim`: reports signed in software by a locally generated
 * root key. It gives NO protection (whoever can read the root key can forge reports) and
 * exists so the whole flow can run on a laptop and in tests. Verifiers accept it only when
 * the manifest's reference values explicitly list the insecure platform, and say so loudly.
 *
 * Report (252 bytes, big-endian):
 *   0   magic "KCSIMREP"         8
 *   8   version = 1              4
 *   12  measurement             48   (SIMULATED_MEASUREMENT, below)
 *   60  host data               32   (the policy hash, like SNP HOSTDATA)
 *   92  report data             64   (the aTLS binding)
 *   156 signature               96   ECDSA P-384 / SHA-384, IEEE P1363 r‖s, over bytes 0..155
 *
 * Root: `<dir>/root.pub.pem` (SPKI) and `<dir>/root-key.pem` (PKCS#8, mode 0600), where dir is
 * $CONTRAST_INSECURE_SIM_DIR, else the device mount of a pod on the simulated runtime when the
 * node put its public root there, else ~/.config/kubectl-contrast/insecure-sim.
 *
 * On the simulated runtime the root key stays on the node (src/runtime/sim-device.ts): every
 * pod's containers see SIM_DEVICE_MOUNT with the pod's device socket and the public root only.
 */
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AttestationError, ensure } from './errors.js';
import type { SimReferenceValues } from './reference-values.js';

export const SIM_MAGIC = Buffer.from('KCSIMREP');
export const SIM_REPORT_SIZE = 252;
export const SIM_SIGNED_SIZE = 156;
/** The platform name reference values give the simulation (upstream spelling of `insecure-sim`). */
export const SIM_PLATFORM_NAME = 'Insecure-Sim';
/** The measurement the simulated TEE reports; fixed so manifests stay reproducible. */
export const SIMULATED_MEASUREMENT = createHash('sha384')
  .update('kubectl-contrast insecure-sim launch measurement v1')
  .digest('hex');

export const SIM_WARNING =
  'WARNING: the insecure-sim platform is SIMULATED: its attestation is signed by a local software key and proves NOTHING about the workload. Never use it for real data.';

export interface SimReport {
  version: number;
  measurement: Buffer;
  hostData: Buffer;
  reportData: Buffer;
  signature: Buffer;
  raw: Buffer;
}

/** Where the simulated runtime mounts a pod's attestation device in each of its containers. */
export const SIM_DEVICE_MOUNT = '/run/kubectl-contrast/insecure-sim';
/** The device's socket in that directory: 64 bytes of report data in, one report out. */
export const SIM_DEVICE_SOCKET = 'tsm.sock';

export function simDir(): string {
  if (process.env.CONTRAST_INSECURE_SIM_DIR) return process.env.CONTRAST_INSECURE_SIM_DIR;
  // A pod on the simulated runtime checks its peers' evidence with the node's public root.
  if (existsSync(simRootPublicPath(SIM_DEVICE_MOUNT))) return SIM_DEVICE_MOUNT;
  return join(homedir(), '.config', 'kubectl-contrast', 'insecure-sim');
}

export function simRootPublicPath(dir = simDir()): string {
  return join(dir, 'root.pub.pem');
}

export function simRootKeyPath(dir = simDir()): string {
  return join(dir, 'root-key.pem');
}

/** The last root read, by the exact text of its file: read again every time, imported once. */
let lastRoot: { text: string; key: KeyObject } | undefined;

/** The pinned public key of the local simulated platform. */
export function loadSimRootPublicKey(dir = simDir()): KeyObject {
  const path = simRootPublicPath(dir);
  try {
    const text = readFileSync(path, 'utf8');
    if (lastRoot?.text !== text) lastRoot = { text, key: createPublicKey(text) };
    return lastRoot.key;
  } catch (err) {
    throw new AttestationError(
      'sim.root',
      `cannot read the simulated platform's root key ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); simulated evidence can only be checked where the simulated Coordinator's root is (set CONTRAST_INSECURE_SIM_DIR)`,
    );
  }
}

export function parseSimReport(bytes: Uint8Array): SimReport {
  const raw = Buffer.from(bytes);
  ensure(
    raw.length === SIM_REPORT_SIZE,
    'sim.report.size',
    'the simulated report has the wrong size',
    String(SIM_REPORT_SIZE),
    String(raw.length),
  );
  ensure(
    raw.subarray(0, 8).equals(SIM_MAGIC),
    'sim.report.magic',
    'not a simulated report',
    SIM_MAGIC.toString('hex'),
    raw.subarray(0, 8).toString('hex'),
  );
  const version = raw.readUInt32BE(8);
  ensure(version === 1, 'sim.report.version', 'unknown simulated report version', '1', String(version));
  return {
    version,
    measurement: raw.subarray(12, 60),
    hostData: raw.subarray(60, 92),
    reportData: raw.subarray(92, 156),
    signature: raw.subarray(156, 252),
    raw,
  };
}

export interface SimExpectations {
  reportData?: Uint8Array;
  hostData?: Uint8Array;
}

export interface SimVerification {
  tee: 'insecure-sim';
  report: SimReport;
  referenceValueIndex: number;
}

/**
 * Verify a simulated report: signature by the pinned local root, the expected binding and
 * host data, then a reference-value entry naming the simulated platform with this measurement.
 */
export function verifySimulated(
  bytes: Uint8Array,
  referenceValues: readonly SimReferenceValues[],
  expectations: SimExpectations,
  root: KeyObject = loadSimRootPublicKey(),
): SimVerification {
  if (referenceValues.length === 0)
    throw new AttestationError(
      'sim.referencevalues',
      'the manifest has no reference values for the simulated platform (ReferenceValues.insecure), so simulated evidence is refused',
    );
  const report = parseSimReport(bytes);
  const ok = cryptoVerify(
    'sha384',
    report.raw.subarray(0, SIM_SIGNED_SIZE),
    { key: root, dsaEncoding: 'ieee-p1363' },
    report.signature,
  );
  ensure(
    ok,
    'sim.report.signature',
    'the simulated report is not signed by the local simulated root',
    'a signature by the key in root.pub.pem',
    'bad signature',
  );
  if (expectations.reportData) {
    ensure(
      report.reportData.equals(Buffer.from(expectations.reportData)),
      'sim.reportdata',
      'REPORT_DATA does not match the expected binding (evidence for another key or nonce)',
      Buffer.from(expectations.reportData).toString('hex'),
      report.reportData.toString('hex'),
    );
  }
  if (expectations.hostData) {
    ensure(
      report.hostData.equals(Buffer.from(expectations.hostData)),
      'sim.hostdata',
      'HOST_DATA does not match the expected policy hash',
      Buffer.from(expectations.hostData).toString('hex'),
      report.hostData.toString('hex'),
    );
  }
  const failures: string[] = [];
  for (const [i, ref] of referenceValues.entries()) {
    if (ref.Platform !== undefined && ref.Platform.toLowerCase() !== SIM_PLATFORM_NAME.toLowerCase()) {
      failures.push(`[${i}] Platform is ${JSON.stringify(ref.Platform)}, not ${SIM_PLATFORM_NAME}`);
      continue;
    }
    if ((ref.TrustedMeasurement ?? '').toLowerCase() !== report.measurement.toString('hex')) {
      failures.push(
        `[${i}] ReferenceValues.insecure[${i}].TrustedMeasurement is ${ref.TrustedMeasurement || '(empty)'}, the report measured ${report.measurement.toString('hex')}`,
      );
      continue;
    }
    return { tee: 'insecure-sim', report, referenceValueIndex: i };
  }
  throw new AttestationError('sim.referencevalues', `no reference-value entry matches: ${failures.join('; ')}`);
}
