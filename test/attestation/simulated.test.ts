/**
 * The simulated platform: it proves nothing, but its verifier must still refuse everything that
 * is not a report by the pinned local root with the expected binding and measurement.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import {
  SIMULATED_MEASUREMENT,
  SIM_PLATFORM_NAME,
  loadSimRootPublicKey,
  parseSimReport,
  simDir,
  simRootKeyPath,
  simRootPublicPath,
  verifySimulated,
} from '../../src/attestation/simulated.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { checkIs, rejects } from './assertions.js';
import { SIM_REFS, simReport, simRootKeys } from './sim-fakes.js';

describe('simulated platform: root key location', () => {
  let saved: string | undefined;
  let dir: string;
  beforeEach(() => {
    saved = process.env.CONTRAST_INSECURE_SIM_DIR;
    dir = tempDir('kc-simtest-');
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.CONTRAST_INSECURE_SIM_DIR;
    else process.env.CONTRAST_INSECURE_SIM_DIR = saved;
    removeDir(dir);
  });

  it('lives in $CONTRAST_INSECURE_SIM_DIR, else under ~/.config', () => {
    process.env.CONTRAST_INSECURE_SIM_DIR = dir;
    assert.equal(simDir(), dir);
    assert.equal(simRootPublicPath(), join(dir, 'root.pub.pem'));
    assert.equal(simRootKeyPath(), join(dir, 'root-key.pem'));
    assert.equal(simRootPublicPath('/x'), '/x/root.pub.pem');
    delete process.env.CONTRAST_INSECURE_SIM_DIR;
    assert.equal(simDir(), join(homedir(), '.config', 'kubectl-contrast', 'insecure-sim'));
    process.env.CONTRAST_INSECURE_SIM_DIR = '';
    assert.equal(simDir(), join(homedir(), '.config', 'kubectl-contrast', 'insecure-sim'));
  });

  it('loads the pinned public key and verifies with it by default', () => {
    const root = simRootKeys();
    writeFileSync(join(dir, 'root.pub.pem'), root.publicKey.export({ type: 'spki', format: 'pem' }));
    assert.ok(loadSimRootPublicKey(dir).equals(root.publicKey));
    process.env.CONTRAST_INSECURE_SIM_DIR = dir;
    assert.equal(verifySimulated(simReport(root.privateKey), SIM_REFS, {}).referenceValueIndex, 0);
    // A report by another root fails against the one in the directory.
    assert.throws(
      () => verifySimulated(simReport(simRootKeys().privateKey), SIM_REFS, {}),
      checkIs('sim.report.signature'),
    );
  });

  it('reads the root file at every verification: a root replaced on disk is the one used next', () => {
    const first = simRootKeys();
    const second = simRootKeys();
    writeFileSync(join(dir, 'root.pub.pem'), first.publicKey.export({ type: 'spki', format: 'pem' }));
    process.env.CONTRAST_INSECURE_SIM_DIR = dir;
    assert.equal(verifySimulated(simReport(first.privateKey), SIM_REFS, {}).referenceValueIndex, 0);
    assert.ok(loadSimRootPublicKey(dir).equals(first.publicKey));
    writeFileSync(join(dir, 'root.pub.pem'), second.publicKey.export({ type: 'spki', format: 'pem' }));
    assert.ok(loadSimRootPublicKey(dir).equals(second.publicKey));
    assert.throws(() => verifySimulated(simReport(first.privateKey), SIM_REFS, {}), checkIs('sim.report.signature'));
    assert.equal(verifySimulated(simReport(second.privateKey), SIM_REFS, {}).referenceValueIndex, 0);
    // A file that no longer holds a key is refused, not answered from the last good one.
    writeFileSync(join(dir, 'root.pub.pem'), 'not a key');
    assert.throws(() => loadSimRootPublicKey(dir), checkIs('sim.root'));
  });

  it('refuses with sim.root when the root is missing or unreadable, naming the file', async () => {
    const missing = join(dir, 'nothing-here');
    let err = await rejects(() => loadSimRootPublicKey(missing), 'sim.root');
    assert.match(
      err.detail,
      new RegExp(
        `^cannot read the simulated platform's root key ${join(missing, 'root.pub.pem').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(ENOENT\\); .*CONTRAST_INSECURE_SIM_DIR`,
      ),
    );
    mkdirSync(join(dir, 'bad'));
    writeFileSync(join(dir, 'bad', 'root.pub.pem'), 'not a key');
    err = await rejects(() => loadSimRootPublicKey(join(dir, 'bad')), 'sim.root');
    assert.doesNotMatch(err.detail, /\(undefined\)/);
    assert.match(err.detail, /root\.pub\.pem \(.+\)/);
    // Without a root, evidence verification reports the missing root, not a verdict on the report.
    process.env.CONTRAST_INSECURE_SIM_DIR = missing;
    await rejects(() => verifySimulated(simReport(simRootKeys().privateKey), SIM_REFS, {}), 'sim.root');
  });
});

describe('simulated platform: report parsing', () => {
  const root = simRootKeys();

  it('reads the fields at their offsets', () => {
    const measurement = Buffer.alloc(48, 0xaa);
    const hostData = Buffer.alloc(32, 0xbb);
    const reportData = Buffer.alloc(64, 0xcc);
    const raw = simReport(root.privateKey, { measurement, hostData, reportData });
    const r = parseSimReport(raw);
    assert.equal(r.version, 1);
    assert.deepEqual(r.measurement, measurement);
    assert.deepEqual(r.hostData, hostData);
    assert.deepEqual(r.reportData, reportData);
    assert.deepEqual(r.signature, raw.subarray(156));
    assert.equal(r.signature.length, 96);
    assert.deepEqual(r.raw, raw);
  });

  it('refuses a report of the wrong size', async () => {
    const raw = simReport(root.privateKey);
    let err = await rejects(() => parseSimReport(raw.subarray(0, 251)), 'sim.report.size');
    assert.deepEqual([err.detail, err.expected, err.actual], ['the simulated report has the wrong size', '252', '251']);
    err = await rejects(() => parseSimReport(Buffer.concat([raw, Buffer.alloc(1)])), 'sim.report.size');
    assert.equal(err.actual, '253');
    await rejects(() => parseSimReport(Buffer.alloc(0)), 'sim.report.size');
  });

  it('refuses another magic and another version', async () => {
    const err = await rejects(
      () => parseSimReport(simReport(root.privateKey, { magic: 'KCSIMREQ' })),
      'sim.report.magic',
    );
    assert.equal(err.detail, 'not a simulated report');
    assert.equal(err.expected, Buffer.from('KCSIMREP').toString('hex'));
    assert.equal(err.actual, Buffer.from('KCSIMREQ').toString('hex'));
    for (const version of [0, 2, 0x01000000]) {
      const e = await rejects(() => parseSimReport(simReport(root.privateKey, { version })), 'sim.report.version');
      assert.deepEqual([e.detail, e.expected, e.actual], ['unknown simulated report version', '1', String(version)]);
    }
  });
});

describe('simulated platform: verification', () => {
  const root = simRootKeys();
  const reportData = Buffer.alloc(64, 0x5a);
  const hostData = Buffer.alloc(32, 0x6b);
  const report = simReport(root.privateKey, { reportData, hostData });
  const verify = (
    bytes: Buffer,
    refs: { Platform?: string; TrustedMeasurement: string }[] = SIM_REFS,
    exp: { reportData?: Buffer; hostData?: Buffer } = { reportData, hostData },
  ) => verifySimulated(bytes, refs, exp, root.publicKey);

  it('accepts a report by the root with the expected binding, host data and measurement', () => {
    const r = verify(report);
    assert.equal(r.tee, 'insecure-sim');
    assert.equal(r.referenceValueIndex, 0);
    assert.deepEqual(r.report.hostData, hostData);
  });

  it('refuses everything when the manifest lists no simulated reference values, before reading the report', async () => {
    const err = await rejects(() => verifySimulated(Buffer.alloc(3), [], {}, root.publicKey), 'sim.referencevalues');
    assert.match(err.detail, /ReferenceValues\.insecure/);
  });

  it('refuses a report signed by another key, or changed after signing', async () => {
    const sig = await rejects(
      () => verify(simReport(simRootKeys().privateKey, { reportData, hostData })),
      'sim.report.signature',
    );
    assert.deepEqual(
      [sig.detail, sig.expected, sig.actual],
      [
        'the simulated report is not signed by the local simulated root',
        'a signature by the key in root.pub.pem',
        'bad signature',
      ],
    );
    for (const offset of [8 + 3, 12, 59, 60, 91, 92, 155, 156, 251]) {
      const bad = Buffer.from(report);
      bad[offset]! ^= 1;
      await rejects(() => verify(bad), offset === 11 ? 'sim.report.version' : 'sim.report.signature');
    }
  });

  it('refuses evidence for another binding or policy, naming expected and actual', async () => {
    let err = await rejects(
      () => verify(report, SIM_REFS, { reportData: Buffer.alloc(64, 1), hostData }),
      'sim.reportdata',
    );
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      [
        'REPORT_DATA does not match the expected binding (evidence for another key or nonce)',
        '01'.repeat(64),
        '5a'.repeat(64),
      ],
    );
    err = await rejects(() => verify(report, SIM_REFS, { reportData, hostData: Buffer.alloc(32, 2) }), 'sim.hostdata');
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['HOST_DATA does not match the expected policy hash', '02'.repeat(32), '6b'.repeat(32)],
    );
    assert.equal(verify(report, SIM_REFS, {}).referenceValueIndex, 0, 'no expectations, nothing to compare');
  });

  it('matches entries by platform (case-insensitive, or unnamed) and measurement (hex in any case)', async () => {
    assert.equal(SIM_PLATFORM_NAME, 'Insecure-Sim');
    assert.equal(verify(report, [{ TrustedMeasurement: SIMULATED_MEASUREMENT }]).referenceValueIndex, 0);
    assert.equal(
      verify(report, [{ Platform: 'INSECURE-SIM', TrustedMeasurement: SIMULATED_MEASUREMENT.toUpperCase() }])
        .referenceValueIndex,
      0,
    );
    const r = verify(report, [
      { Platform: 'AKS-CLH-SNP', TrustedMeasurement: SIMULATED_MEASUREMENT },
      { Platform: 'Insecure-Sim', TrustedMeasurement: '00'.repeat(48) },
      ...SIM_REFS,
    ]);
    assert.equal(r.referenceValueIndex, 2);
  });

  it('lists why each entry failed when none matches', async () => {
    const err = await rejects(
      () =>
        verify(report, [
          { Platform: 'AKS-CLH-SNP', TrustedMeasurement: SIMULATED_MEASUREMENT },
          { Platform: 'insecure-sim', TrustedMeasurement: '' },
        ]),
      'sim.referencevalues',
    );
    assert.equal(
      err.detail,
      `no reference-value entry matches: [0] Platform is "AKS-CLH-SNP", not Insecure-Sim; [1] ReferenceValues.insecure[1].TrustedMeasurement is (empty), the report measured ${SIMULATED_MEASUREMENT}`,
    );
    const e2 = await rejects(() => verify(report, [{ TrustedMeasurement: 'ab'.repeat(48) }]), 'sim.referencevalues');
    assert.match(e2.detail, new RegExp(`TrustedMeasurement is ${'ab'.repeat(48)}, the report measured`));
    // An entry without a measurement never matches.
    await rejects(() => verify(report, [{ Platform: 'Insecure-Sim' } as never]), 'sim.referencevalues');
  });
});
