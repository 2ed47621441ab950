/**
 * Reference-value fields for firmware and quoting-enclave versions and for the TD's owner and
 * module signer, and the baselines `evidence verify` judges without reference values: each
 * through the genuine vectors, with its own check id and a message that names the value.
 */
import assert from 'node:assert/strict';
import { UserError } from '../../src/util/errors.js';
import {
  parseReferenceValues,
  type SnpReferenceValues,
  type TdxReferenceValues,
} from '../../src/attestation/reference-values.js';
import { parseSnpReport } from '../../src/attestation/snp/report.js';
import { decodeTcb } from '../../src/attestation/snp/tcb.js';
import { validateSnpBaseline, validateSnpReference } from '../../src/attestation/snp/validate.js';
import { verifySnp } from '../../src/attestation/snp/verify.js';
import { parseTdxQuote } from '../../src/attestation/tdx/quote.js';
import { validateTdxBaseline } from '../../src/attestation/tdx/validate.js';
import { verifyTdx } from '../../src/attestation/tdx/verify.js';
import { rejects } from './assertions.js';
import { SNP_NOW, SNP_VECTORS, TDX, TDX_COLLATERAL_TIME } from './vectors.js';

const milan = SNP_VECTORS[2]!; // v3 Milan, firmware 1.55 build 29, committed = current
const snpRef = (over: Partial<SnpReferenceValues> = {}): SnpReferenceValues => ({
  TrustedMeasurement: milan.report.subarray(0x90, 0xc0).toString('hex'),
  MinimumTCB: { BootloaderVersion: 0, TEEVersion: 0, SNPVersion: 0, MicrocodeVersion: 0 },
  GuestPolicy: { SMT: true },
  ...over,
});
const snpOpts = { vcek: milan.vcek, certChain: milan.chain, now: SNP_NOW };
const verifyMilan = (ref: SnpReferenceValues) => verifySnp({ report: milan.report }, [ref], {}, snpOpts);

const spr = TDX.sprQuote();
const sprQuote = parseTdxQuote(spr);
const hex = (b: Buffer) => b.toString('hex');
const tdxRef = (over: Partial<TdxReferenceValues> = {}): TdxReferenceValues => ({
  MrTd: hex(sprQuote.body.mrTd),
  ...over,
});
const tdxOpts = {
  now: TDX_COLLATERAL_TIME,
  acceptedTcbStatuses: ['NotSupported'] as const,
  collateral: {
    tcbInfo: TDX.tcbInfo(),
    tcbInfoIssuerChain: TDX.tcbChain(),
    qeIdentity: TDX.qeIdentity(),
    qeIdentityIssuerChain: TDX.qeChain(),
  },
};
const verifySpr = (ref: TdxReferenceValues) => verifyTdx({ quote: spr }, [ref], {}, tdxOpts);

describe('reference values: firmware, QE/PCE SVN, MR_OWNER, MR_OWNER_CONFIG, MR_SIGNER_SEAM', () => {
  it('reads the fields and names the file and field of a malformed one', () => {
    const ok = parseReferenceValues(
      {
        snp: [snpRef({ MinimumBuild: 29, MinimumVersion: '1.55', PermitProvisionalFirmware: false })],
        tdx: [
          tdxRef({
            MrOwner: '00'.repeat(48),
            MrOwnerConfig: '',
            MrSignerSeam: '00'.repeat(48),
            MinimumQeSvn: 8,
            MinimumPceSvn: 13,
          }),
        ],
      },
      'rv.json',
    );
    assert.equal(ok.snp?.[0]?.MinimumVersion, '1.55');
    assert.equal(ok.tdx?.[0]?.MinimumPceSvn, 13);
    const cases: [unknown, string][] = [
      [{ snp: [snpRef({ MinimumBuild: 256 })] }, 'rv.json, field snp[0].MinimumBuild: must be an integer 0..255'],
      [
        { snp: [snpRef({ MinimumVersion: '1' })] },
        'rv.json, field snp[0].MinimumVersion: must be a firmware version "major.minor", e.g. "1.55"',
      ],
      [
        { snp: [snpRef({ MinimumVersion: '1.256' })] },
        'rv.json, field snp[0].MinimumVersion: must be a firmware version "major.minor", e.g. "1.55"',
      ],
      [
        { snp: [snpRef({ PermitProvisionalFirmware: 'yes' as never })] },
        'rv.json, field snp[0].PermitProvisionalFirmware: must be true or false',
      ],
      [{ tdx: [tdxRef({ MrOwner: 'ab' })] }, 'rv.json, field tdx[0].MrOwner: must be 48 bytes as hex (96 hex digits)'],
      [
        { tdx: [tdxRef({ MrOwnerConfig: 'zz'.repeat(48) })] },
        'rv.json, field tdx[0].MrOwnerConfig: must be 48 bytes as hex (96 hex digits)',
      ],
      [
        { tdx: [tdxRef({ MrSignerSeam: 'ab'.repeat(32) })] },
        'rv.json, field tdx[0].MrSignerSeam: must be 48 bytes as hex (96 hex digits)',
      ],
      [{ tdx: [tdxRef({ MinimumQeSvn: 65536 })] }, 'rv.json, field tdx[0].MinimumQeSvn: must be an integer 0..65535'],
      [{ tdx: [tdxRef({ MinimumPceSvn: -1 })] }, 'rv.json, field tdx[0].MinimumPceSvn: must be an integer 0..65535'],
    ];
    for (const [json, message] of cases) {
      assert.throws(
        () => parseReferenceValues(json, 'rv.json'),
        (err: unknown) => err instanceof UserError && err.message === message,
        message,
      );
    }
  });

  it('checks the SNP firmware build and version minimums against current and committed firmware', async () => {
    await verifyMilan(snpRef({ MinimumBuild: 29, MinimumVersion: '1.55' }));
    await verifyMilan(snpRef({ MinimumVersion: '0.99' }));
    let err = await rejects(() => verifyMilan(snpRef({ MinimumBuild: 30 })), 'snp.firmware.build');
    assert.equal(
      err.message,
      'attestation check snp.firmware.build failed: the CURRENT firmware build is below the minimum; expected build >= 30; actual 1.55 build 29',
    );
    err = await rejects(() => verifyMilan(snpRef({ MinimumVersion: '1.56' })), 'snp.firmware.version');
    assert.equal(
      err.message,
      'attestation check snp.firmware.version failed: the CURRENT firmware version is below the minimum; expected >= 1.56; actual 1.55 build 29',
    );
    await rejects(() => verifyMilan(snpRef({ MinimumVersion: '2.0' })), 'snp.firmware.version');
  });

  it('refuses provisional SNP firmware unless PermitProvisionalFirmware is set', async () => {
    const report = parseSnpReport(milan.report);
    const tcbs = (r = report) => ({
      current: decodeTcb(r.currentTcb, 'Milan'),
      committed: decodeTcb(r.committedTcb, 'Milan'),
      launch: decodeTcb(r.launchTcb, 'Milan'),
      reported: decodeTcb(r.reportedTcb, 'Milan'),
    });
    validateSnpReference(report, 'Milan', tcbs(), snpRef()); // the genuine report runs committed firmware
    // A host that installed newer firmware without committing it: CURRENT ahead of COMMITTED.
    const older = { ...report, committedVersion: { ...report.currentVersion, build: report.currentVersion.build - 1 } };
    const err = await rejects(
      () => validateSnpReference(older, 'Milan', tcbs(older), snpRef()),
      'snp.firmware.provisional',
    );
    assert.equal(err.expected, 'committed 1.55 build 28, TCB bootloader=4 tee=0 snp=24 microcode=219');
    assert.match(err.detail, /set PermitProvisionalFirmware to accept it/);
    validateSnpReference(older, 'Milan', tcbs(older), snpRef({ PermitProvisionalFirmware: true }));
    const olderTcb = Buffer.from(report.committedTcb);
    olderTcb[7]! -= 1; // microcode
    const tcbOnly = { ...report, committedTcb: olderTcb };
    await rejects(() => validateSnpReference(tcbOnly, 'Milan', tcbs(tcbOnly), snpRef()), 'snp.firmware.provisional');
  });

  it('checks MR_OWNER, MR_OWNER_CONFIG and MR_SIGNER_SEAM of a genuine TD', async () => {
    const b = sprQuote.body;
    verifySpr(
      tdxRef({ MrOwner: hex(b.mrOwner), MrOwnerConfig: hex(b.mrOwnerConfig), MrSignerSeam: hex(b.mrSignerSeam) }),
    );
    for (const [field, check, name, actual] of [
      ['MrOwner', 'tdx.mrowner', 'MR_OWNER', b.mrOwner],
      ['MrOwnerConfig', 'tdx.mrownerconfig', 'MR_OWNER_CONFIG', b.mrOwnerConfig],
      ['MrSignerSeam', 'tdx.mrsignerseam', 'MR_SIGNER_SEAM', b.mrSignerSeam],
    ] as const) {
      const err = await rejects(() => verifySpr(tdxRef({ [field]: '11'.repeat(48) })), check);
      assert.equal(
        err.message,
        `attestation check ${check} failed: ${name} does not match; expected ${'11'.repeat(48)}; actual ${hex(actual)}`,
      );
    }
  });

  it('checks the QE SVN from the signed QE report and the PCE SVN from the PCK certificate', async () => {
    const r = verifySpr(tdxRef());
    const qeSvn = sprQuote.qeReport.isvSvn;
    const pceSvn = r.pck.extension.pceSvn;
    verifySpr(tdxRef({ MinimumQeSvn: qeSvn, MinimumPceSvn: pceSvn }));
    let err = await rejects(() => verifySpr(tdxRef({ MinimumQeSvn: qeSvn + 1 })), 'tdx.qesvn');
    assert.equal(
      err.message,
      `attestation check tdx.qesvn failed: the quoting enclave is older than the minimum QE SVN; expected >= ${qeSvn + 1}; actual ${qeSvn}`,
    );
    err = await rejects(() => verifySpr(tdxRef({ MinimumPceSvn: pceSvn + 1 })), 'tdx.pcesvn');
    assert.equal(
      err.message,
      `attestation check tdx.pcesvn failed: the PCE SVN in the PCK certificate is below the minimum; expected >= ${pceSvn + 1}; actual ${pceSvn}`,
    );
  });
});

describe('the baseline judgement without reference values', () => {
  it('SNP: refuses a debug guest, a report from VMPL above 0 and a guest a migration agent may move', async () => {
    for (const v of SNP_VECTORS.filter((x) => !x.debug)) validateSnpBaseline(parseSnpReport(v.report));
    await rejects(() => validateSnpBaseline(parseSnpReport(SNP_VECTORS[0]!.report)), 'snp.policy.debug');
    const report = parseSnpReport(milan.report);
    await rejects(() => validateSnpBaseline({ ...report, vmpl: 1 }), 'snp.vmpl');
    const err = await rejects(
      () => validateSnpBaseline({ ...report, policy: { ...report.policy, migrateMa: true } }),
      'snp.policy.migrate_ma',
    );
    assert.equal(
      err.message,
      'attestation check snp.policy.migrate_ma failed: the guest policy allows a migration agent; expected MIGRATE_MA=0; actual MIGRATE_MA=1',
    );
  });

  it('TDX: refuses a debug TD', async () => {
    for (const q of [TDX.sprQuote(), TDX.v5Quote(), TDX.cosQuote()]) validateTdxBaseline(parseTdxQuote(q).body);
    const body = sprQuote.body;
    const tdAttributes = Buffer.from(body.tdAttributes);
    tdAttributes[0]! |= 1;
    await rejects(() => validateTdxBaseline({ ...body, tdAttributes }), 'tdx.tdattributes.debug');
  });
});
