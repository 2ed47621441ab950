import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { parseSnpReport } from '../../src/attestation/snp/report.js';
import { decodeTcb, firstBelow } from '../../src/attestation/snp/tcb.js';
import { productFromCpuid, productLine } from '../../src/attestation/snp/product.js';
import { readAmdKeyCertificate } from '../../src/attestation/snp/vcek.js';
import { verifySnpChain } from '../../src/attestation/snp/chain.js';
import { parseCertTable } from '../../src/attestation/snp/cert-table.js';
import { splitSnpEvidence, decodeBinaryOrHex } from '../../src/attestation/evidence-file.js';
import { vcekPath } from '../../src/attestation/snp/kds.js';
import { buildCertTable, checkIs } from './assertions.js';
import { SNP_VECTORS, SNP_NOW, pemBlocks, read } from './vectors.js';

const milanV3 = SNP_VECTORS[2]!.report;

describe('SEV-SNP report parsing', () => {
  it('reads every field of a v3 report at its offset', () => {
    const r = parseSnpReport(milanV3);
    assert.equal(r.version, 3);
    assert.equal(r.guestSvn, milanV3.readUInt32LE(4));
    assert.equal(r.policyRaw, 0x3001fn);
    assert.deepEqual(
      { minor: r.policy.abiMinor, major: r.policy.abiMajor, smt: r.policy.smt, debug: r.policy.debug },
      { minor: 0x1f, major: 0, smt: true, debug: false },
    );
    assert.equal(r.vmpl, 0);
    assert.equal(r.signatureAlgo, 1);
    assert.equal(r.platformInfoRaw, 0x25n);
    assert.deepEqual(
      [
        r.platformInfo.smtEnabled,
        r.platformInfo.eccEnabled,
        r.platformInfo.aliasCheckComplete,
        r.platformInfo.tsmeEnabled,
      ],
      [true, true, true, false],
    );
    assert.equal(r.signingKey, 'vcek');
    assert.deepEqual(r.cpuid, { family: 0x19, model: 0x01, stepping: 0x01 });
    assert.equal(r.reportedTcb.toString('hex'), '04000000000018db');
    assert.equal(r.currentVersion.major, 1);
    assert.equal(r.currentVersion.minor, 55);
    assert.equal(r.launchMitVector, undefined);
    for (const [field, at, len] of [
      ['reportData', 0x50, 64],
      ['measurement', 0x90, 48],
      ['hostData', 0xc0, 32],
      ['idKeyDigest', 0xe0, 48],
      ['authorKeyDigest', 0x110, 48],
      ['reportId', 0x140, 32],
      ['reportIdMa', 0x160, 32],
      ['chipId', 0x1a0, 64],
      ['familyId', 0x10, 16],
      ['imageId', 0x20, 16],
    ] as const) {
      assert.ok(r[field].equals(milanV3.subarray(at, at + len)), field);
    }
    assert.equal(r.signatureR.length, 48);
  });

  it('keeps its own copy of the input', () => {
    const input = Buffer.from(milanV3);
    const r = parseSnpReport(input);
    input[0x90] = input[0x90]! ^ 0xff;
    assert.ok(r.measurement.equals(milanV3.subarray(0x90, 0xc0)));
  });

  it('reads v5 mitigation vectors and treats 0x1F8.. as reserved before v5', () => {
    const v5 = Buffer.from(milanV3);
    v5.writeUInt32LE(5, 0);
    v5.writeBigUInt64LE(0x3fn, 0x1f8);
    const r = parseSnpReport(v5);
    assert.equal(r.launchMitVector, 0x3fn);
    assert.equal(r.currentMitVector, 0n);
    const v3 = Buffer.from(milanV3);
    v3.writeBigUInt64LE(0x3fn, 0x1f8);
    assert.throws(() => parseSnpReport(v3), checkIs('snp.report.parse'));
  });

  it('rejects unknown versions, algorithms, reserved bits and signing keys', () => {
    const mutate = (f: (b: Buffer) => void) => {
      const b = Buffer.from(milanV3);
      f(b);
      return b;
    };
    const bad: [string, Buffer][] = [
      ['version 1', mutate((b) => b.writeUInt32LE(1, 0))],
      ['version 6', mutate((b) => b.writeUInt32LE(6, 0))],
      ['signature algorithm 2', mutate((b) => b.writeUInt32LE(2, 0x34))],
      ['VMPL 4', mutate((b) => b.writeUInt32LE(4, 0x30))],
      ['policy bit 17 clear', mutate((b) => b.writeBigUInt64LE(0x1001fn, 0x08))],
      ['policy bit 26 set', mutate((b) => b.writeBigUInt64LE(0x3001fn | (1n << 26n), 0x08))],
      ['signing key 2', mutate((b) => b.writeUInt32LE(2 << 2, 0x48))],
      ['signer info bit 5', mutate((b) => b.writeUInt32LE(1 << 5, 0x48))],
      [
        'reserved 0x4C',
        mutate((b) => {
          b[0x4c] = 1;
        }),
      ],
      [
        'reserved 0x19F',
        mutate((b) => {
          b[0x19f] = 1;
        }),
      ],
      [
        'reserved 0x1EB',
        mutate((b) => {
          b[0x1eb] = 1;
        }),
      ],
      [
        'reserved 0x29F',
        mutate((b) => {
          b[0x29f] = 1;
        }),
      ],
      [
        'reserved after signature',
        mutate((b) => {
          b[0x49f] = 1;
        }),
      ],
      [
        'R padding',
        mutate((b) => {
          b[0x2a0 + 71] = 1;
        }),
      ],
    ];
    for (const [what, report] of bad) assert.throws(() => parseSnpReport(report), checkIs('snp.report.parse'), what);
  });

  it('accepts PLATFORM_INFO bits it does not name (genuine Turin reports set bit 6)', () => {
    const b = Buffer.from(milanV3);
    b.writeBigUInt64LE(0x65n, 0x40);
    assert.equal(parseSnpReport(b).platformInfoRaw, 0x65n);
  });
});

describe('SEV-SNP TCB, products and certificates', () => {
  it('decodes TCB_VERSION for Milan/Genoa and for Turin (FMC at byte 0)', () => {
    const raw = Buffer.from('0101010400000051', 'hex'); // the genuine Turin sample's REPORTED_TCB
    assert.deepEqual(decodeTcb(raw, 'Turin'), { fmc: 1, bootloader: 1, tee: 1, snp: 4, microcode: 0x51 });
    assert.deepEqual(decodeTcb(Buffer.from('04000000000018db', 'hex'), 'Milan'), {
      bootloader: 4,
      tee: 0,
      snp: 0x18,
      microcode: 0xdb,
    });
  });

  it('compares TCBs per component, not as one number', () => {
    const actual = { bootloader: 4, tee: 0, snp: 24, microcode: 219 };
    assert.equal(firstBelow(actual, { bootloader: 3, snp: 25, microcode: 100 }), 'snp');
    assert.equal(firstBelow(actual, { bootloader: 4, tee: 0, snp: 24, microcode: 219 }), undefined);
    assert.equal(firstBelow({ ...actual, fmc: 0 }, { fmc: 1 }), 'fmc');
  });

  it('maps CPUID family/model to product lines and ignores the stepping suffix', () => {
    assert.equal(productFromCpuid(0x19, 0x01), 'Milan');
    assert.equal(productFromCpuid(0x19, 0x11), 'Genoa');
    assert.equal(productFromCpuid(0x19, 0xa0), 'Genoa');
    assert.equal(productFromCpuid(0x1a, 0x02), 'Turin');
    assert.equal(productFromCpuid(0x1a, 0x50), undefined); // Venice: no pinned root
    assert.equal(productFromCpuid(0x17, 0x31), undefined);
    assert.equal(productLine('Milan-B0'), 'Milan');
    assert.equal(productLine('Genoa'), 'Genoa');
  });

  it('reads AMD extensions from Milan, Genoa and Turin VCEKs', () => {
    const milan = readAmdKeyCertificate(new X509Certificate(SNP_VECTORS[1]!.vcek));
    assert.equal(milan.productName, 'Milan-B0');
    assert.deepEqual(milan.spl, { bootloader: 3, tee: 0, snp: 8, microcode: 115 });
    assert.equal(milan.hwId?.length, 64);
    assert.ok(milan.hwId?.equals(parseSnpReport(SNP_VECTORS[1]!.report).chipId));
    const turin = readAmdKeyCertificate(new X509Certificate(read('amd/virtee-sev/vcek_turin.der')));
    assert.equal(turin.productName, 'Turin');
    assert.equal(turin.spl.fmc, 0);
    assert.equal(turin.hwId?.length, 8);
  });

  it('verifies a Turin VCEK against the pinned Turin ARK and rejects it for Milan', () => {
    const vcek = new X509Certificate(read('amd/virtee-sev/vcek_turin.der'));
    const [askPem, arkPem] = pemBlocks('amd/virtee-sev/cert_chain_turin');
    const ask = new X509Certificate(askPem!);
    const ark = new X509Certificate(arkPem!);
    verifySnpChain({ product: 'Turin', kind: 'vcek', signer: vcek, ask, ark, now: SNP_NOW });
    assert.throws(
      () => verifySnpChain({ product: 'Milan', kind: 'vcek', signer: vcek, ask, now: SNP_NOW }),
      checkIs('snp.ask.subject'),
    );
  });

  it('builds KDS VCEK paths from REPORTED_TCB (64-byte id for Milan, 8-byte id and FMC for Turin)', () => {
    const r = parseSnpReport(SNP_VECTORS[1]!.report);
    assert.equal(
      vcekPath('Milan', r),
      `/vcek/v1/Milan/${r.chipId.toString('hex')}?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115`,
    );
    const turin = Buffer.from(milanV3);
    turin.fill(0, 0x1a0, 0x1e0);
    Buffer.from('59790fb1c39f35c1', 'hex').copy(turin, 0x1a0);
    Buffer.from('0101010400000051', 'hex').copy(turin, 0x180);
    assert.equal(
      vcekPath('Turin', parseSnpReport(turin)),
      '/vcek/v1/Turin/59790fb1c39f35c1?fmcSPL=01&blSPL=01&teeSPL=01&snpSPL=04&ucodeSPL=81',
    );
    const masked = Buffer.from(milanV3);
    masked.fill(0, 0x1a0, 0x1e0);
    assert.equal(vcekPath('Milan', parseSnpReport(masked)), undefined);
  });
});

describe('SEV-SNP certificate table and evidence files', () => {
  it('parses entries and rejects overlapping, duplicate or unterminated tables', () => {
    const der = Buffer.from([1, 2, 3]);
    const table = buildCertTable([['63da758d-e664-4564-adc5-f4b93be8accd', der]]);
    assert.ok(parseCertTable(table).get('63da758d-e664-4564-adc5-f4b93be8accd')?.equals(der));
    assert.throws(() => parseCertTable(table.subarray(0, 30)), checkIs('snp.certtable.parse'));
    const outside = Buffer.from(table);
    outside.writeUInt32LE(1000, 20);
    assert.throws(() => parseCertTable(outside), checkIs('snp.certtable.parse'));
    const dup = buildCertTable([
      ['63da758d-e664-4564-adc5-f4b93be8accd', der],
      ['63da758d-e664-4564-adc5-f4b93be8accd', der],
    ]);
    assert.throws(() => parseCertTable(dup), checkIs('snp.certtable.parse'));
  });

  it('splits a report from a trailing certificate table and decodes hex files', () => {
    const table = buildCertTable([]);
    const split = splitSnpEvidence(Buffer.concat([milanV3, table]));
    assert.ok(split.report.equals(milanV3));
    assert.ok(split.certTable?.equals(table));
    assert.ok(splitSnpEvidence(Buffer.from(`${milanV3.toString('hex')}\n`)).report.equals(milanV3));
    assert.throws(() => splitSnpEvidence(milanV3.subarray(0, 100)), checkIs('snp.report.parse'));
    // Binary that happens to be printable stays binary unless it is entirely hex.
    assert.deepEqual(decodeBinaryOrHex(Buffer.from('abz0')), Buffer.from('abz0'));
  });
});
