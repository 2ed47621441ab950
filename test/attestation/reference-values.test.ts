import assert from 'node:assert/strict';
import { UserError } from '../../src/util/errors.js';
import { parseReferenceValues } from '../../src/attestation/index.js';

const snp = { ProductName: 'Milan', TrustedMeasurement: 'ab'.repeat(48), MinimumTCB: { BootloaderVersion: 3, TEEVersion: 0, SNPVersion: 8, MicrocodeVersion: 115 }, GuestPolicy: { SMT: true } };
const tdx = { MrTd: 'cd'.repeat(48), Rtmrs: ['', '', '', ''], Xfam: 'e702060000000000' };

describe('reference values (upstream manifest schema)', () => {
  it('reads ReferenceValues on its own or inside a manifest', () => {
    assert.deepEqual(parseReferenceValues({ snp: [snp], tdx: [tdx] }, 'rv.json'), { snp: [snp], tdx: [tdx] });
    assert.deepEqual(parseReferenceValues({ Policies: {}, ReferenceValues: { snp: [snp] } }, 'manifest.json'), { snp: [snp] });
  });

  it('reads upstream\'s older "Rtrms" spelling without changing the input', () => {
    const old = { MrTd: 'cd'.repeat(48), Rtrms: ['11'.repeat(48), '', '', ''] };
    const rv = parseReferenceValues({ tdx: [old] }, 'rv.json');
    assert.deepEqual(rv.tdx?.[0]?.Rtmrs, old.Rtrms);
    assert.ok(!('Rtmrs' in old));
  });

  it('names the file and field of malformed values', () => {
    const cases: [unknown, RegExp][] = [
      [{ snp: [{ ...snp, TrustedMeasurement: 'abc' }] }, /rv\.json, field snp\[0\]\.TrustedMeasurement: must be 48 bytes as hex/],
      [{ snp: [{ ...snp, MinimumTCB: { BootloaderVersion: 256 } }] }, /snp\[0\]\.MinimumTCB\.BootloaderVersion: must be an integer 0\.\.255/],
      [{ snp: [{ ...snp, GuestPolicy: { Debug: true } }] }, /snp\[0\]\.GuestPolicy\.Debug: debug guests are never trusted/],
      [{ snp: [{ ...snp, AllowedChipIDs: ['00'] }] }, /AllowedChipIDs\[0\]: must be 64 bytes/],
      [{ tdx: [{ ...tdx, Rtmrs: ['', ''] }] }, /tdx\[0\]\.Rtmrs: must be a list of four/],
      [{ tdx: [{ ...tdx, MrTd: undefined }] }, /tdx\[0\]\.MrTd: is required/],
      [{ snp: {} }, /field snp: must be a list/],
      [[], /must be an object/],
    ];
    for (const [json, message] of cases) {
      assert.throws(() => parseReferenceValues(json, 'rv.json'), (err: unknown) => err instanceof UserError && message.test(err.message));
    }
  });
});
