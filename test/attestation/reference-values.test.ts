import assert from 'node:assert/strict';
import { UserError } from '../../src/util/errors.js';
import { parseReferenceValues } from '../../src/attestation/index.js';

const snp = {
  ProductName: 'Milan',
  TrustedMeasurement: 'ab'.repeat(48),
  MinimumTCB: { BootloaderVersion: 3, TEEVersion: 0, SNPVersion: 8, MicrocodeVersion: 115 },
  GuestPolicy: { SMT: true },
};
const tdx = { MrTd: 'cd'.repeat(48), Rtmrs: ['', '', '', ''], Xfam: 'e702060000000000' };

describe('reference values (upstream manifest schema)', () => {
  it('reads ReferenceValues on its own or inside a manifest', () => {
    assert.deepEqual(parseReferenceValues({ snp: [snp], tdx: [tdx] }, 'rv.json'), { snp: [snp], tdx: [tdx] });
    assert.deepEqual(parseReferenceValues({ Policies: {}, ReferenceValues: { snp: [snp] } }, 'manifest.json'), {
      snp: [snp],
    });
  });

  it('reads upstream\'s older "Rtrms" spelling without changing the input', () => {
    const old = { MrTd: 'cd'.repeat(48), Rtrms: ['11'.repeat(48), '', '', ''] };
    const rv = parseReferenceValues({ tdx: [old] }, 'rv.json');
    assert.deepEqual(rv.tdx?.[0]?.Rtmrs, old.Rtrms);
    assert.ok(!('Rtmrs' in old));
  });

  it('names the file and field of malformed values', () => {
    const cases: [unknown, RegExp][] = [
      [
        { snp: [{ ...snp, TrustedMeasurement: 'abc' }] },
        /rv\.json, field snp\[0\]\.TrustedMeasurement: must be 48 bytes as hex/,
      ],
      [
        { snp: [{ ...snp, MinimumTCB: { BootloaderVersion: 256 } }] },
        /snp\[0\]\.MinimumTCB\.BootloaderVersion: must be an integer 0\.\.255/,
      ],
      [
        { snp: [{ ...snp, GuestPolicy: { Debug: true } }] },
        /snp\[0\]\.GuestPolicy\.Debug: debug guests are never trusted/,
      ],
      [{ snp: [{ ...snp, AllowedChipIDs: ['00'] }] }, /AllowedChipIDs\[0\]: must be 64 bytes/],
      [{ tdx: [{ ...tdx, Rtmrs: ['', ''] }] }, /tdx\[0\]\.Rtmrs: must be a list of four/],
      [{ tdx: [{ ...tdx, MrTd: undefined }] }, /tdx\[0\]\.MrTd: is required/],
      [{ snp: {} }, /field snp: must be a list/],
      [[], /must be an object/],
    ];
    for (const [json, message] of cases) {
      assert.throws(
        () => parseReferenceValues(json, 'rv.json'),
        (err: unknown) => err instanceof UserError && message.test(err.message),
      );
    }
  });
});

describe('reference values: every field check, with the exact message', () => {
  const m48 = 'ab'.repeat(48);
  const base = {
    TrustedMeasurement: m48,
    MinimumTCB: { BootloaderVersion: 1, TEEVersion: 1, SNPVersion: 1, MicrocodeVersion: 1 },
  };
  const refused = (json: unknown, message: string) => {
    assert.throws(
      () => parseReferenceValues(json, 'rv.json'),
      (err: unknown) => {
        assert.ok(err instanceof UserError, String(err));
        assert.equal(err.message, message);
        return true;
      },
    );
  };
  const accepted = (json: unknown) => assert.doesNotThrow(() => parseReferenceValues(json, 'rv.json'));

  it('checks SNP measurement, TCB, policy, platform info, mitigations, chip ids and product', () => {
    refused(
      { snp: [{ ...base, TrustedMeasurement: undefined }] },
      'rv.json, field snp[0].TrustedMeasurement: is required (48 bytes as hex)',
    );
    refused(
      { snp: [{ ...base, TrustedMeasurement: '' }] },
      'rv.json, field snp[0].TrustedMeasurement: must be 48 bytes as hex (96 hex digits)',
    );
    refused(
      { snp: [{ ...base, TrustedMeasurement: null }] },
      'rv.json, field snp[0].TrustedMeasurement: must be 48 bytes as hex (96 hex digits)',
    );
    refused(
      { snp: [{ ...base, TrustedMeasurement: 5 }] },
      'rv.json, field snp[0].TrustedMeasurement: must be 48 bytes as hex (96 hex digits)',
    );
    refused(
      { snp: [base, { ...base, TrustedMeasurement: 'zz'.repeat(48) }] },
      'rv.json, field snp[1].TrustedMeasurement: must be 48 bytes as hex (96 hex digits)',
    );
    accepted({ snp: [{ ...base, MinimumTCB: undefined }] });
    refused({ snp: [{ ...base, MinimumTCB: [] }] }, 'rv.json, field snp[0].MinimumTCB: must be an object');
    for (const k of ['BootloaderVersion', 'TEEVersion', 'SNPVersion', 'MicrocodeVersion', 'FMCVersion']) {
      for (const bad of [256, -1, 1.5, '1'])
        refused(
          { snp: [{ ...base, MinimumTCB: { ...base.MinimumTCB, [k]: bad } }] },
          `rv.json, field snp[0].MinimumTCB.${k}: must be an integer 0..255`,
        );
      accepted({ snp: [{ ...base, MinimumTCB: { ...base.MinimumTCB, [k]: 255 } }] });
      accepted({ snp: [{ ...base, MinimumTCB: { ...base.MinimumTCB, [k]: null } }] });
      accepted({ snp: [{ ...base, MinimumTCB: { ...base.MinimumTCB, [k]: 0 } }] });
    }
    refused({ snp: [{ ...base, GuestPolicy: 'x' }] }, 'rv.json, field snp[0].GuestPolicy: must be an object');
    refused(
      { snp: [{ ...base, GuestPolicy: { ABIMinor: 256 } }] },
      'rv.json, field snp[0].GuestPolicy.ABIMinor: must be an integer 0..255',
    );
    refused(
      { snp: [{ ...base, GuestPolicy: { ABIMajor: -1 } }] },
      'rv.json, field snp[0].GuestPolicy.ABIMajor: must be an integer 0..255',
    );
    for (const k of [
      'SMT',
      'MigrateMA',
      'Debug',
      'SingleSocket',
      'CXLAllowed',
      'MemAES256XTS',
      'RAPLDis',
      'CipherTextHidingDRAM',
      'PageSwapDisable',
    ]) {
      refused(
        { snp: [{ ...base, GuestPolicy: { [k]: 'yes' } }] },
        `rv.json, field snp[0].GuestPolicy.${k}: must be true or false`,
      );
      if (k !== 'Debug') accepted({ snp: [{ ...base, GuestPolicy: { [k]: true } }] });
    }
    accepted({ snp: [{ ...base, GuestPolicy: { Debug: false } }] });
    refused(
      { snp: [{ ...base, GuestPolicy: { Debug: true } }] },
      'rv.json, field snp[0].GuestPolicy.Debug: debug guests are never trusted; set Debug to false',
    );
    refused({ snp: [{ ...base, PlatformInfo: [] }] }, 'rv.json, field snp[0].PlatformInfo: must be an object');
    for (const k of [
      'SMTEnabled',
      'TSMEEnabled',
      'ECCEnabled',
      'RAPLDisabled',
      'CiphertextHidingDRAMEnabled',
      'AliasCheckComplete',
      'TIOEnabled',
    ]) {
      refused(
        { snp: [{ ...base, PlatformInfo: { [k]: 1 } }] },
        `rv.json, field snp[0].PlatformInfo.${k}: must be true or false`,
      );
      accepted({ snp: [{ ...base, PlatformInfo: { [k]: false } }] });
    }
    refused(
      { snp: [{ ...base, MinimumMitigationVector: -1 }] },
      `rv.json, field snp[0].MinimumMitigationVector: must be an integer 0..${Number.MAX_SAFE_INTEGER}`,
    );
    accepted({ snp: [{ ...base, MinimumMitigationVector: Number.MAX_SAFE_INTEGER }] });
    refused({ snp: [{ ...base, AllowedChipIDs: 'ab' }] }, 'rv.json, field snp[0].AllowedChipIDs: must be a list');
    refused(
      { snp: [{ ...base, AllowedChipIDs: ['cd'.repeat(64), ''] }] },
      'rv.json, field snp[0].AllowedChipIDs[1]: must be 64 bytes as hex (128 hex digits)',
    );
    refused(
      { snp: [{ ...base, AllowedChipIDs: [undefined] }] },
      'rv.json, field snp[0].AllowedChipIDs[0]: is required (64 bytes as hex)',
    );
    accepted({ snp: [{ ...base, AllowedChipIDs: null }] });
    accepted({ snp: [{ ...base, AllowedChipIDs: [] }] });
    refused({ snp: [{ ...base, ProductName: 3 }] }, 'rv.json, field snp[0].ProductName: must be a string');
    accepted({ snp: [{ ...base, ProductName: 'Milan' }] });
    refused({ snp: ['x'] }, 'rv.json, field snp[0]: must be an object');
  });

  it('checks TDX measurements, with optional fields empty or null', () => {
    const t = { MrTd: 'cd'.repeat(48) };
    for (const [k, bytes] of [
      ['MrSeam', 48],
      ['Xfam', 8],
      ['TdAttributes', 8],
      ['MinimumTeeTcbSvn', 16],
    ] as const) {
      refused(
        { tdx: [{ ...t, [k]: 'ab' }] },
        `rv.json, field tdx[0].${k}: must be ${bytes} bytes as hex (${bytes * 2} hex digits)`,
      );
      refused(
        { tdx: [{ ...t, [k]: 7 }] },
        `rv.json, field tdx[0].${k}: must be ${bytes} bytes as hex (${bytes * 2} hex digits)`,
      );
      accepted({ tdx: [{ ...t, [k]: '' }] });
      accepted({ tdx: [{ ...t, [k]: null }] });
      accepted({ tdx: [{ ...t, [k]: '00'.repeat(bytes) }] });
    }
    refused({ tdx: [{ MrTd: '' }] }, 'rv.json, field tdx[0].MrTd: must be 48 bytes as hex (96 hex digits)');
    refused(
      { tdx: [{ ...t, MinTCBEvaluationDataNumber: 2 ** 31 + 1 }] },
      `rv.json, field tdx[0].MinTCBEvaluationDataNumber: must be an integer 0..${2 ** 31}`,
    );
    accepted({ tdx: [{ ...t, MinTCBEvaluationDataNumber: 2 ** 31 }] });
    refused({ tdx: [{ ...t, Rtmrs: 'x' }] }, 'rv.json, field tdx[0].Rtmrs: must be a list of four measurements');
    refused(
      { tdx: [{ ...t, Rtmrs: ['', '', '', 'ab'] }] },
      'rv.json, field tdx[0].Rtmrs[3]: must be 48 bytes as hex (96 hex digits)',
    );
    refused(
      { tdx: [{ ...t, Rtrms: ['', 'ab', '', ''] }] },
      'rv.json, field tdx[0].Rtmrs[1]: must be 48 bytes as hex (96 hex digits)',
    );
    accepted({ tdx: [{ ...t, Rtmrs: null }] });
    accepted({ tdx: [{ ...t, Rtmrs: ['', null, '', '00'.repeat(48)] }] });
    refused({ tdx: {} }, 'rv.json, field tdx: must be a list');
  });

  it('skips missing lists, keeps both spellings apart and reads ReferenceValues only when it is an object', () => {
    assert.deepEqual(parseReferenceValues({ snp: null, tdx: undefined }, 'rv.json'), {});
    assert.deepEqual(parseReferenceValues({ ReferenceValues: 'x', snp: [base] }, 'rv.json'), { snp: [base] });
    const both = parseReferenceValues(
      { tdx: [{ MrTd: 'cd'.repeat(48), Rtmrs: ['', '', '', ''], Rtrms: ['11'.repeat(48), '', '', ''] }] },
      'rv.json',
    );
    assert.deepEqual(both.tdx?.[0]?.Rtmrs, ['', '', '', ''], 'Rtmrs wins over the old spelling');
    assert.ok(!('Rtrms' in both.tdx![0]!));
  });
});
