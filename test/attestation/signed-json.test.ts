import assert from 'node:assert/strict';
import { splitSignedJson } from '../../src/attestation/tdx/signed-json.js';
import { checkIs } from './assertions.js';

describe('signed PCS collateral JSON', () => {
  const sig = 'ab'.repeat(64);

  it('returns the exact bytes of the body and the parsed value', () => {
    const s = splitSignedJson(Buffer.from(`{"tcbInfo":{"v":1},"signature":"${sig}"}`), 'tcbInfo', 'tdx.tcbinfo.parse');
    assert.equal(s.signed.toString(), '{"v":1}');
    assert.deepEqual(s.value, { v: 1 });
  });

  it('refuses a duplicated body key, so the signed span and the parsed value cannot differ', () => {
    const doc = `{"tcbInfo":{"v":1},"tcbInfo":{"v":2},"signature":"${sig}"}`;
    assert.throws(() => splitSignedJson(Buffer.from(doc), 'tcbInfo', 'tdx.tcbinfo.parse'), (e: Error) => checkIs('tdx.tcbinfo.parse')(e) && /duplicate key "tcbInfo"/.test(e.message));
    assert.throws(() => splitSignedJson(Buffer.from(`{"tcbInfo":{},"signature":"${sig}","signature":"${sig}"}`), 'tcbInfo', 'c'), /duplicate key "signature"/);
  });

  it('refuses trailing data and other keys', () => {
    assert.throws(() => splitSignedJson(Buffer.from(`{"tcbInfo":{},"signature":"${sig}"} {}`), 'tcbInfo', 'c'), /not JSON/);
    assert.throws(() => splitSignedJson(Buffer.from(`{"tcbInfo":{},"signature":"${sig}","x":1}`), 'tcbInfo', 'c'), /expected exactly the keys/);
  });
});
