/**
 * SEV-SNP reference values and TCB consistency, judged directly on parsed reports (the parser
 * does not check signatures, so any field can be set): every check with its exact reason and
 * the expected and actual values it reports.
 */
import assert from 'node:assert/strict';
import type { SnpReferenceValues } from '../../src/attestation/reference-values.js';
import { parseSnpReport, type SnpReport } from '../../src/attestation/snp/report.js';
import { decodeTcb, type SnpTcb } from '../../src/attestation/snp/tcb.js';
import { validateSnpReference, validateSnpTcbConsistency, type SnpTcbs } from '../../src/attestation/snp/validate.js';
import { rejects } from './assertions.js';
import { SNP_VECTORS } from './vectors.js';

const base = SNP_VECTORS[2]!.report; // v3 Milan: policy 0x3001f (SMT), platform info 0x25 (SMT, ECC, alias check)
const TCB = { bootloader: 4, tee: 0, snp: 24, microcode: 219 };
const tcbs = (over: Partial<SnpTcbs> = {}): SnpTcbs => ({
  current: TCB,
  committed: TCB,
  launch: TCB,
  reported: TCB,
  ...over,
});

function report(edit: (b: Buffer) => void = () => undefined): SnpReport {
  const b = Buffer.from(base);
  edit(b);
  return parseSnpReport(b);
}
const withPolicy = (bits: bigint) => report((b) => b.writeBigUInt64LE(0x3001fn | bits, 0x08));
const withPlatform = (bits: bigint) => report((b) => b.writeBigUInt64LE(bits, 0x40));

const ref = (over: Partial<SnpReferenceValues> = {}): SnpReferenceValues => ({
  TrustedMeasurement: base.subarray(0x90, 0xc0).toString('hex'),
  MinimumTCB: { BootloaderVersion: 4, TEEVersion: 0, SNPVersion: 24, MicrocodeVersion: 219 },
  GuestPolicy: { SMT: true },
  ...over,
});

const ok = (r: SnpReport, rv: SnpReferenceValues, t = tcbs()) =>
  assert.doesNotThrow(() => validateSnpReference(r, 'Milan', t, rv));

async function refused(
  r: SnpReport,
  rv: SnpReferenceValues,
  check: string,
  detail: string,
  expected?: string,
  actual?: string,
  t = tcbs(),
) {
  const err = await rejects(() => validateSnpReference(r, 'Milan', t, rv), check);
  assert.equal(err.detail, detail);
  assert.equal(err.expected, expected);
  assert.equal(err.actual, actual);
}

describe('SEV-SNP TCB consistency', () => {
  it('accepts equal TCBs and older committed or reported ones', () => {
    validateSnpTcbConsistency(tcbs());
    validateSnpTcbConsistency(tcbs({ committed: { ...TCB, snp: 23 }, reported: { ...TCB, microcode: 1 } }));
  });

  it('refuses a committed TCB newer than the current one', async () => {
    const err = await rejects(
      () => validateSnpTcbConsistency(tcbs({ committed: { ...TCB, snp: 25 } })),
      'snp.tcb.committed',
    );
    assert.equal(err.detail, 'COMMITTED_TCB snp is newer than CURRENT_TCB');
    assert.equal(err.expected, 'committed <= current (bootloader=4 tee=0 snp=24 microcode=219)');
    assert.equal(err.actual, 'bootloader=4 tee=0 snp=25 microcode=219');
  });

  it('refuses a reported TCB newer than the current one', async () => {
    const err = await rejects(
      () => validateSnpTcbConsistency(tcbs({ reported: { ...TCB, bootloader: 5 } })),
      'snp.tcb.reported',
    );
    assert.equal(err.detail, 'REPORTED_TCB bootloader is newer than CURRENT_TCB');
    assert.equal(err.expected, 'reported <= current (bootloader=4 tee=0 snp=24 microcode=219)');
    assert.equal(err.actual, 'bootloader=5 tee=0 snp=24 microcode=219');
    // The committed check comes first.
    await rejects(
      () => validateSnpTcbConsistency(tcbs({ reported: { ...TCB, bootloader: 5 }, committed: { ...TCB, tee: 1 } })),
      'snp.tcb.committed',
    );
  });

  it('compares the FMC component of Turin TCBs too', async () => {
    const turin: SnpTcb = decodeTcb(Buffer.from('0101010400000051', 'hex'), 'Turin');
    await rejects(
      () =>
        validateSnpTcbConsistency({ current: turin, committed: { ...turin, fmc: 2 }, launch: turin, reported: turin }),
      'snp.tcb.committed',
    );
  });
});

describe('SEV-SNP reference values: measurement, product, debug', () => {
  it('accepts the genuine report against its own values', () => ok(report(), ref()));

  it('refuses a debug guest whatever the reference values say, before anything else', async () => {
    await refused(
      withPolicy(1n << 19n),
      ref({ ProductName: 'Genoa', TrustedMeasurement: '' }),
      'snp.policy.debug',
      'the guest policy allows debugging (the host can decrypt guest memory)',
      'DEBUG=0',
      'DEBUG=1',
    );
  });

  it('checks the product name only when it is set', async () => {
    ok(report(), ref({ ProductName: 'Milan' }));
    ok(report(), ref({ ProductName: '' }));
    await refused(
      report(),
      ref({ ProductName: 'Genoa' }),
      'snp.product',
      'the reference values are for another product line',
      'Genoa',
      'Milan',
    );
    await refused(
      report(),
      ref({ ProductName: 'milan' }),
      'snp.product',
      'the reference values are for another product line',
      'milan',
      'Milan',
    );
  });

  it('requires a trusted measurement and compares it as hex in any case', async () => {
    await refused(
      report(),
      ref({ TrustedMeasurement: '' }),
      'snp.measurement',
      'the reference values name no TrustedMeasurement',
    );
    const m = base.subarray(0x90, 0xc0).toString('hex');
    ok(report(), ref({ TrustedMeasurement: m.toUpperCase() }));
    await refused(
      report(),
      ref({ TrustedMeasurement: 'AB'.repeat(48) }),
      'snp.measurement',
      'MEASUREMENT does not match',
      'ab'.repeat(48),
      m,
    );
    await refused(
      report(),
      ref({ TrustedMeasurement: m.slice(2) }),
      'snp.measurement',
      'MEASUREMENT does not match',
      m.slice(2),
      m,
    );
  });
});

describe('SEV-SNP reference values: minimum TCB', () => {
  it('requires all four Milan/Genoa components', async () => {
    const full = { BootloaderVersion: 0, TEEVersion: 0, SNPVersion: 0, MicrocodeVersion: 0 };
    for (const [key, name] of [
      ['BootloaderVersion', 'bootloader'],
      ['TEEVersion', 'tee'],
      ['SNPVersion', 'snp'],
      ['MicrocodeVersion', 'microcode'],
    ] as const) {
      await refused(
        report(),
        ref({ MinimumTCB: { ...full, [key]: undefined } }),
        'snp.tcb.minimum',
        `the reference values do not set a minimum ${name} version (MinimumTCB)`,
      );
      await refused(
        report(),
        ref({ MinimumTCB: { ...full, [key]: null } }),
        'snp.tcb.minimum',
        `the reference values do not set a minimum ${name} version (MinimumTCB)`,
      );
    }
    await refused(
      report(),
      ref({ MinimumTCB: undefined as never }),
      'snp.tcb.minimum',
      'the reference values do not set a minimum bootloader version (MinimumTCB)',
    );
  });

  it('applies the minimum to the reported, committed, current and launch TCB, naming the register', async () => {
    const min = ref().MinimumTCB;
    const older = { ...TCB, tee: 0, snp: 23 };
    for (const which of ['reported', 'committed', 'current', 'launch'] as const) {
      await refused(
        report(),
        ref({ MinimumTCB: min }),
        'snp.tcb.minimum',
        `${which.toUpperCase()}_TCB snp is below the minimum`,
        'bootloader=4 tee=0 snp=24 microcode=219',
        'bootloader=4 tee=0 snp=23 microcode=219',
        tcbs({ [which]: older }),
      );
    }
    ok(report(), ref({ MinimumTCB: { BootloaderVersion: 4, TEEVersion: 0, SNPVersion: 24, MicrocodeVersion: 219 } }));
    ok(report(), ref({ MinimumTCB: { BootloaderVersion: 0, TEEVersion: 0, SNPVersion: 0, MicrocodeVersion: 0 } }));
  });

  it('applies an FMC minimum when one is set (a TCB without FMC counts as FMC 0)', async () => {
    const min = { BootloaderVersion: 0, TEEVersion: 0, SNPVersion: 0, MicrocodeVersion: 0 };
    ok(report(), ref({ MinimumTCB: { ...min, FMCVersion: 0 } }));
    ok(report(), ref({ MinimumTCB: { ...min, FMCVersion: null } }));
    await refused(
      report(),
      ref({ MinimumTCB: { ...min, FMCVersion: 1 } }),
      'snp.tcb.minimum',
      'REPORTED_TCB fmc is below the minimum',
      'fmc=1 bootloader=0 tee=0 snp=0 microcode=0',
      'bootloader=4 tee=0 snp=24 microcode=219',
    );
    const turin = { fmc: 3, ...TCB };
    ok(report(), ref({ MinimumTCB: { ...min, FMCVersion: 3 } }), {
      current: turin,
      committed: turin,
      launch: turin,
      reported: turin,
    });
  });
});

describe('SEV-SNP reference values: guest policy', () => {
  it('skips the guest policy when the reference values do not set one', () =>
    ok(withPolicy((1n << 18n) | (1n << 21n)), ref({ GuestPolicy: undefined })));

  it("requires the policy's ABI to be at least ABIMajor.ABIMinor", async () => {
    // The report's policy allows ABI 0.31 and later.
    ok(report(), ref({ GuestPolicy: { SMT: true, ABIMajor: 0, ABIMinor: 31 } }));
    ok(report(), ref({ GuestPolicy: { SMT: true, ABIMinor: 31 } }));
    await refused(
      report(),
      ref({ GuestPolicy: { SMT: true, ABIMinor: 32 } }),
      'snp.policy.abi',
      'the guest policy permits an older firmware ABI than required',
      'ABI >= 0.32',
      '0.31',
    );
    await refused(
      report(),
      ref({ GuestPolicy: { SMT: true, ABIMajor: 1 } }),
      'snp.policy.abi',
      'the guest policy permits an older firmware ABI than required',
      'ABI >= 1.0',
      '0.31',
    );
    ok(withPolicy(0x0100n), ref({ GuestPolicy: { SMT: true, ABIMajor: 1, ABIMinor: 31 } })); // 1.31
    await refused(
      withPolicy(0x0100n),
      ref({ GuestPolicy: { SMT: true, ABIMajor: 1, ABIMinor: 32 } }),
      'snp.policy.abi',
      'the guest policy permits an older firmware ABI than required',
      'ABI >= 1.32',
      '1.31',
    );
  });

  it('refuses SMT, MIGRATE_MA and CXL unless the reference values allow them', async () => {
    for (const [bit, key, name] of [
      [16n, 'SMT', 'SMT'],
      [18n, 'MigrateMA', 'MIGRATE_MA'],
      [21n, 'CXLAllowed', 'CXL_ALLOW'],
    ] as const) {
      const r = withPolicy(1n << bit);
      const allowAllButThis = { SMT: true, MigrateMA: true, CXLAllowed: true, [key]: false };
      await refused(
        r,
        ref({ GuestPolicy: allowAllButThis }),
        `snp.policy.${name.toLowerCase()}`,
        `the guest policy has ${name} set, the reference values do not allow it`,
        `${name}=0`,
        `${name}=1`,
      );
      await refused(
        r,
        ref({ GuestPolicy: { ...allowAllButThis, [key]: undefined } }),
        `snp.policy.${name.toLowerCase()}`,
        `the guest policy has ${name} set, the reference values do not allow it`,
        `${name}=0`,
        `${name}=1`,
      );
      ok(r, ref({ GuestPolicy: { SMT: true, MigrateMA: true, CXLAllowed: true } }));
    }
  });

  it('requires SINGLE_SOCKET, MEM_AES_256_XTS, RAPL_DIS, ciphertext hiding and page-swap disable when the reference values do', async () => {
    const reqs = [
      [20n, 'SingleSocket', 'SINGLE_SOCKET'],
      [22n, 'MemAES256XTS', 'MEM_AES_256_XTS'],
      [23n, 'RAPLDis', 'RAPL_DIS'],
      [24n, 'CipherTextHidingDRAM', 'CIPHERTEXT_HIDING_DRAM'],
      [25n, 'PageSwapDisable', 'PAGE_SWAP_DISABLE'],
    ] as const;
    const all = reqs.reduce((acc, [bit]) => acc | (1n << bit), 0n);
    for (const [bit, key, name] of reqs) {
      await refused(
        withPolicy(all & ~(1n << bit)),
        ref({ GuestPolicy: { SMT: true, [key]: true } }),
        `snp.policy.${name.toLowerCase()}`,
        `the reference values require ${name} in the guest policy`,
        `${name}=1`,
        `${name}=0`,
      );
      ok(withPolicy(1n << bit), ref({ GuestPolicy: { SMT: true, [key]: true } }));
      ok(withPolicy(0n), ref({ GuestPolicy: { SMT: true, [key]: false } }));
    }
  });
});

describe('SEV-SNP reference values: platform info', () => {
  it('skips platform info when the reference values do not set it', () => ok(withPlatform(0xffn), ref()));

  it('refuses SMT, TSME and TIO unless allowed', async () => {
    for (const [bit, key] of [
      [0n, 'SMTEnabled'],
      [1n, 'TSMEEnabled'],
      [7n, 'TIOEnabled'],
    ] as const) {
      await refused(
        withPlatform(1n << bit),
        ref({ PlatformInfo: {} }),
        'snp.platforminfo',
        `the platform has ${key} set, the reference values do not allow it`,
        `${key}=0`,
        `${key}=1`,
      );
      ok(withPlatform(1n << bit), ref({ PlatformInfo: { [key]: true } }));
    }
  });

  it('requires ECC, RAPL disabled, ciphertext hiding and alias check when the reference values do', async () => {
    for (const [bit, key] of [
      [2n, 'ECCEnabled'],
      [3n, 'RAPLDisabled'],
      [4n, 'CiphertextHidingDRAMEnabled'],
      [5n, 'AliasCheckComplete'],
    ] as const) {
      await refused(
        withPlatform(0x3cn & ~(1n << bit)),
        ref({ PlatformInfo: { [key]: true } }),
        'snp.platforminfo',
        `the reference values require ${key} in the platform info`,
        `${key}=1`,
        `${key}=0`,
      );
      ok(withPlatform(1n << bit), ref({ PlatformInfo: { [key]: true } }));
    }
  });
});

describe('SEV-SNP reference values: mitigations and chip ids', () => {
  const v5 = (launch: bigint, current: bigint) =>
    report((b) => {
      b.writeUInt32LE(5, 0);
      b.writeBigUInt64LE(launch, 0x1f8);
      b.writeBigUInt64LE(current, 0x200);
    });

  it('requires mitigation vectors only when a minimum is set, and then a v5 report', async () => {
    ok(report(), ref({ MinimumMitigationVector: 0 }));
    ok(report(), ref());
    await refused(
      report(),
      ref({ MinimumMitigationVector: 1 }),
      'snp.mitigations',
      'the reference values require mitigations, but this report version carries no mitigation vector',
      'report version >= 5',
      '3',
    );
    // Both vectors must be there.
    const half = { ...v5(3n, 3n), currentMitVector: undefined };
    await refused(
      half,
      ref({ MinimumMitigationVector: 1 }),
      'snp.mitigations',
      'the reference values require mitigations, but this report version carries no mitigation vector',
      'report version >= 5',
      '5',
    );
    await refused(
      { ...v5(3n, 3n), launchMitVector: undefined },
      ref({ MinimumMitigationVector: 1 }),
      'snp.mitigations',
      'the reference values require mitigations, but this report version carries no mitigation vector',
      'report version >= 5',
      '5',
    );
  });

  it('requires every minimum bit in both the launch and the current vector', async () => {
    ok(v5(0x3n, 0x7n), ref({ MinimumMitigationVector: 3 }));
    await refused(
      v5(0x1n, 0x3n),
      ref({ MinimumMitigationVector: 3 }),
      'snp.mitigations',
      'LAUNCH_MIT_VECTOR lacks required mitigation bits',
      '0x3 set',
      '0x1',
    );
    await refused(
      v5(0x3n, 0x2n),
      ref({ MinimumMitigationVector: 3 }),
      'snp.mitigations',
      'CURRENT_MIT_VECTOR lacks required mitigation bits',
      '0x3 set',
      '0x2',
    );
  });

  it('restricts chip ids only when the list is non-empty', async () => {
    const chip = base.subarray(0x1a0, 0x1e0).toString('hex');
    ok(report(), ref({ AllowedChipIDs: [] }));
    ok(report(), ref({ AllowedChipIDs: [chip.toUpperCase()] }));
    ok(report(), ref({ AllowedChipIDs: ['zz', chip] }));
    await refused(
      report(),
      ref({ AllowedChipIDs: ['zz'] }),
      'snp.chipid',
      'CHIP_ID is not in AllowedChipIDs',
      'zz',
      chip,
    );
    await refused(
      report(),
      ref({ AllowedChipIDs: ['00'.repeat(64), '11'.repeat(64)] }),
      'snp.chipid',
      'CHIP_ID is not in AllowedChipIDs',
      `${'00'.repeat(64)} | ${'11'.repeat(64)}`,
      chip,
    );
    const masked = report((b) => b.fill(0, 0x1a0, 0x1e0));
    await refused(
      masked,
      ref({ AllowedChipIDs: ['00'.repeat(64)] }),
      'snp.chipid',
      'the report masks its CHIP_ID, but the reference values restrict chips',
      'a listed chip id',
      'masked (all zero)',
    );
  });
});
