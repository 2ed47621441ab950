/**
 * Every refusal of the SEV-SNP report parser, with the exact reason, expected and actual values,
 * and the field boundaries on both sides (what is accepted next to what is refused).
 */
import assert from 'node:assert/strict';
import { parseSnpReport } from '../../src/attestation/snp/report.js';
import { rejects } from './assertions.js';
import { SNP_VECTORS } from './vectors.js';

const milanV3 = SNP_VECTORS[2]!.report;

function mutate(f: (b: Buffer) => void, base = milanV3): Buffer {
  const b = Buffer.from(base);
  f(b);
  return b;
}

describe('SEV-SNP report parser: refusals', () => {
  const cases: [string, Buffer, string, string | undefined, string | undefined][] = [
    ['one byte short', milanV3.subarray(0, 1183), 'report has the wrong size', '1184 bytes', '1183 bytes'],
    [
      'one byte long',
      Buffer.concat([milanV3, Buffer.alloc(1)]),
      'report has the wrong size',
      '1184 bytes',
      '1185 bytes',
    ],
    ['version 1', mutate((b) => b.writeUInt32LE(1, 0)), 'unsupported report version', '2, 3, 4, 5', '1'],
    ['version 6', mutate((b) => b.writeUInt32LE(6, 0)), 'unsupported report version', '2, 3, 4, 5', '6'],
    [
      'signature algorithm 2',
      mutate((b) => b.writeUInt32LE(2, 0x34)),
      'unsupported signature algorithm',
      '1 (ECDSA P-384 with SHA-384)',
      '2',
    ],
    ['VMPL 4', mutate((b) => b.writeUInt32LE(4, 0x30)), 'VMPL out of range', '0..3', '4'],
    [
      'policy bit 17 clear',
      mutate((b) => b.writeBigUInt64LE(0x1001fn, 0x08)),
      'guest policy bit 17 (reserved, must be one) is zero',
      '1',
      '0',
    ],
    [
      'policy bit 26 set',
      mutate((b) => b.writeBigUInt64LE(0x3001fn | (1n << 26n), 0x08)),
      'guest policy bits 63:26 are reserved and must be zero',
      '0',
      '0x1',
    ],
    [
      'policy bit 63 set',
      mutate((b) => b.writeBigUInt64LE(0x3001fn | (1n << 63n), 0x08)),
      'guest policy bits 63:26 are reserved and must be zero',
      '0',
      '0x2000000000',
    ],
    [
      'signer info bit 5',
      mutate((b) => b.writeUInt32LE(1 << 5, 0x48)),
      'signer info bits 31:5 are reserved and must be zero',
      '0',
      '0x1',
    ],
    [
      'signing key 2',
      mutate((b) => b.writeUInt32LE(2 << 2, 0x48)),
      'signer info names a reserved signing key',
      '0 (VCEK), 1 (VLEK) or 7 (none)',
      '2',
    ],
    [
      'signing key 6',
      mutate((b) => b.writeUInt32LE(6 << 2, 0x48)),
      'signer info names a reserved signing key',
      '0 (VCEK), 1 (VLEK) or 7 (none)',
      '6',
    ],
    [
      'reserved 0x4C',
      mutate((b) => {
        b[0x4c] = 1;
      }),
      'reserved field after signer info (bytes 0x4c..0x4f) must be zero',
      'zero',
      '01000000',
    ],
    [
      'reserved 0x4F',
      mutate((b) => {
        b[0x4f] = 2;
      }),
      'reserved field after signer info (bytes 0x4c..0x4f) must be zero',
      'zero',
      '00000002',
    ],
    [
      'reserved 0x18B',
      mutate((b) => {
        b[0x18b] = 1;
      }),
      'reserved field after REPORTED_TCB (bytes 0x18b..0x19f) must be zero',
      'zero',
      `01${'00'.repeat(20)}`,
    ],
    [
      'reserved 0x19F',
      mutate((b) => {
        b[0x19f] = 1;
      }),
      'reserved field after REPORTED_TCB (bytes 0x18b..0x19f) must be zero',
      'zero',
      `${'00'.repeat(20)}01`,
    ],
    [
      'reserved 0x1EB',
      mutate((b) => {
        b[0x1eb] = 1;
      }),
      'reserved byte after CURRENT_MAJOR (bytes 0x1eb..0x1eb) must be zero',
      'zero',
      '01',
    ],
    [
      'reserved 0x1EF',
      mutate((b) => {
        b[0x1ef] = 3;
      }),
      'reserved byte after COMMITTED_MAJOR (bytes 0x1ef..0x1ef) must be zero',
      'zero',
      '03',
    ],
    [
      'reserved 0x1F8 before v5',
      mutate((b) => {
        b[0x1f8] = 1;
      }),
      'reserved field before the signature (bytes 0x1f8..0x29f) must be zero',
      'zero',
      `01${'00'.repeat(167)}`,
    ],
    [
      'reserved 0x29F',
      mutate((b) => {
        b[0x29f] = 1;
      }),
      'reserved field before the signature (bytes 0x1f8..0x29f) must be zero',
      'zero',
      `${'00'.repeat(167)}01`,
    ],
    [
      'reserved 0x330',
      mutate((b) => {
        b[0x330] = 1;
      }),
      'reserved field after the signature (bytes 0x330..0x49f) must be zero',
      'zero',
      `01${'00'.repeat(367)}`,
    ],
    [
      'reserved 0x49F',
      mutate((b) => {
        b[0x49f] = 1;
      }),
      'reserved field after the signature (bytes 0x330..0x49f) must be zero',
      'zero',
      `${'00'.repeat(367)}01`,
    ],
    [
      'R padding',
      mutate((b) => {
        b[0x2a0 + 48] = 1;
      }),
      'signature R does not fit P-384 (padding is not zero)',
      undefined,
      undefined,
    ],
    [
      'R padding (top byte)',
      mutate((b) => {
        b[0x2a0 + 71] = 1;
      }),
      'signature R does not fit P-384 (padding is not zero)',
      undefined,
      undefined,
    ],
    [
      'S padding',
      mutate((b) => {
        b[0x2e8 + 71] = 1;
      }),
      'signature S does not fit P-384 (padding is not zero)',
      undefined,
      undefined,
    ],
  ];
  for (const [what, report, detail, expected, actual] of cases) {
    it(`refuses ${what}`, async () => {
      const err = await rejects(() => parseSnpReport(report), 'snp.report.parse');
      assert.equal(err.detail, detail);
      assert.equal(err.expected, expected);
      assert.equal(err.actual, actual);
    });
  }

  it('refuses CPUID bytes in a version 2 report and mitigation vectors before version 5', async () => {
    const v2 = mutate((b) => b.writeUInt32LE(2, 0));
    const err = await rejects(() => parseSnpReport(v2), 'snp.report.parse');
    assert.equal(err.detail, 'reserved field after REPORTED_TCB (bytes 0x188..0x19f) must be zero');
    const v4 = mutate((b) => {
      b.writeUInt32LE(4, 0);
      b[0x200] = 1;
    });
    assert.match((await rejects(() => parseSnpReport(v4), 'snp.report.parse')).detail, /bytes 0x1f8\.\.0x29f/);
    const v5 = mutate((b) => {
      b.writeUInt32LE(5, 0);
      b[0x208] = 1;
    });
    assert.equal(
      (await rejects(() => parseSnpReport(v5), 'snp.report.parse')).detail,
      'reserved field before the signature (bytes 0x208..0x29f) must be zero',
    );
  });
});

describe('SEV-SNP report parser: accepted values next to refused ones', () => {
  it('accepts VMPL 3, versions 2 to 5, and the top byte of the signature halves', () => {
    assert.equal(parseSnpReport(mutate((b) => b.writeUInt32LE(3, 0x30))).vmpl, 3);
    assert.equal(parseSnpReport(mutate((b) => b.writeUInt32LE(4, 0))).version, 4);
    assert.equal(parseSnpReport(mutate((b) => b.writeUInt32LE(5, 0))).version, 5);
    const v2 = parseSnpReport(
      mutate((b) => {
        b.writeUInt32LE(2, 0);
        b.fill(0, 0x188, 0x18b);
      }),
    );
    assert.equal(v2.version, 2);
    assert.equal(v2.cpuid, undefined);
    assert.ok(!('cpuid' in v2));
    const r = parseSnpReport(
      mutate((b) => {
        b[0x2a0 + 47] = 0xab;
        b[0x2e8 + 47] = 0xcd;
      }),
    );
    assert.equal(r.signatureR[0], 0xab);
    assert.equal(r.signatureS[0], 0xcd);
    assert.equal(r.signatureS.length, 48);
  });

  it('reads the signer info bits', () => {
    const info = (v: number) => parseSnpReport(mutate((b) => b.writeUInt32LE(v, 0x48)));
    assert.deepEqual([info(0).authorKeyEn, info(0).maskChipKey, info(0).signingKey], [false, false, 'vcek']);
    assert.deepEqual([info(1).authorKeyEn, info(1).maskChipKey], [true, false]);
    assert.deepEqual([info(2).authorKeyEn, info(2).maskChipKey], [false, true]);
    assert.deepEqual([info(3).authorKeyEn, info(3).maskChipKey], [true, true]);
    assert.equal(info(1 << 2).signingKey, 'vlek');
    assert.equal(info(7 << 2).signingKey, 'none');
  });

  it('reads every guest policy bit', () => {
    const policy = (bits: bigint) => parseSnpReport(mutate((b) => b.writeBigUInt64LE((1n << 17n) | bits, 0x08))).policy;
    assert.deepEqual(policy(0n), {
      abiMinor: 0,
      abiMajor: 0,
      smt: false,
      migrateMa: false,
      debug: false,
      singleSocket: false,
      cxlAllowed: false,
      memAes256Xts: false,
      raplDis: false,
      ciphertextHidingDram: false,
      pageSwapDisable: false,
    });
    assert.deepEqual(policy(0x0a05n), { ...policy(0n), abiMinor: 5, abiMajor: 10 });
    const names = [
      'smt',
      '',
      'migrateMa',
      'debug',
      'singleSocket',
      'cxlAllowed',
      'memAes256Xts',
      'raplDis',
      'ciphertextHidingDram',
      'pageSwapDisable',
    ] as const;
    names.forEach((name, i) => {
      if (!name) return;
      const p = policy(1n << BigInt(16 + i));
      assert.equal(p[name], true, name);
      assert.equal(Object.values(p).filter((v) => v === true).length, 1, name);
    });
  });

  it('reads every named platform info bit', () => {
    const info = (bits: bigint) => parseSnpReport(mutate((b) => b.writeBigUInt64LE(bits, 0x40))).platformInfo;
    const names = [
      'smtEnabled',
      'tsmeEnabled',
      'eccEnabled',
      'raplDisabled',
      'ciphertextHidingDramEnabled',
      'aliasCheckComplete',
      '',
      'tioEnabled',
    ] as const;
    assert.ok(Object.values(info(0n)).every((v) => v === false));
    names.forEach((name, i) => {
      const p = info(1n << BigInt(i));
      if (!name) {
        assert.ok(
          Object.values(p).every((v) => v === false),
          'bit 6 has no name',
        );
        return;
      }
      assert.equal(p[name], true, name);
      assert.equal(Object.values(p).filter((v) => v === true).length, 1, name);
    });
  });

  it('reads the TCB, version and mitigation fields at their offsets', () => {
    const b = mutate((x) => {
      x.writeUInt32LE(5, 0);
      Buffer.from('0102030405060708', 'hex').copy(x, 0x38); // CURRENT_TCB
      Buffer.from('1112131415161718', 'hex').copy(x, 0x1e0); // COMMITTED_TCB
      Buffer.from('2122232425262728', 'hex').copy(x, 0x1f0); // LAUNCH_TCB
      x[0x1e8] = 7;
      x[0x1e9] = 8;
      x[0x1ea] = 9; // CURRENT build, minor, major
      x[0x1ec] = 4;
      x[0x1ed] = 5;
      x[0x1ee] = 6; // COMMITTED build, minor, major
      x.writeBigUInt64LE(0x11n, 0x1f8);
      x.writeBigUInt64LE(0x22n, 0x200);
    });
    const r = parseSnpReport(b);
    assert.equal(r.currentTcb.toString('hex'), '0102030405060708');
    assert.equal(r.committedTcb.toString('hex'), '1112131415161718');
    assert.equal(r.launchTcb.toString('hex'), '2122232425262728');
    assert.deepEqual(r.currentVersion, { build: 7, minor: 8, major: 9 });
    assert.deepEqual(r.committedVersion, { build: 4, minor: 5, major: 6 });
    assert.equal(r.launchMitVector, 0x11n);
    assert.equal(r.currentMitVector, 0x22n);
    assert.deepEqual(r.raw, b);
  });
});
