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
    assert.throws(
      () => splitSignedJson(Buffer.from(doc), 'tcbInfo', 'tdx.tcbinfo.parse'),
      (e: Error) => checkIs('tdx.tcbinfo.parse')(e) && /duplicate key "tcbInfo"/.test(e.message),
    );
    assert.throws(
      () => splitSignedJson(Buffer.from(`{"tcbInfo":{},"signature":"${sig}","signature":"${sig}"}`), 'tcbInfo', 'c'),
      /duplicate key "signature"/,
    );
  });

  it('refuses trailing data and other keys', () => {
    assert.throws(
      () => splitSignedJson(Buffer.from(`{"tcbInfo":{},"signature":"${sig}"} {}`), 'tcbInfo', 'c'),
      /not JSON/,
    );
    assert.throws(
      () => splitSignedJson(Buffer.from(`{"tcbInfo":{},"signature":"${sig}","x":1}`), 'tcbInfo', 'c'),
      /expected exactly the keys/,
    );
  });
});

describe('signed PCS collateral JSON: scanning the served text', () => {
  const sig = 'cd'.repeat(64);
  const split = (text: string, key = 'tcbInfo') => splitSignedJson(Buffer.from(text), key, 'tdx.tcbinfo.parse');
  const refusal = (reason: RegExp) => (e: unknown) =>
    checkIs('tdx.tcbinfo.parse')(e) && reason.test((e as Error).message);

  it('finds bodies that contain brackets, escaped quotes and nested lists inside strings', () => {
    assert.equal(
      split(`{"tcbInfo":{"x":"a\\"}b","y":[1,[2],{"z":"]"}]},"signature":"${sig}"}`).signed.toString(),
      '{"x":"a\\"}b","y":[1,[2],{"z":"]"}]}',
    );
    assert.equal(split(`{"signature":"${sig}","tcbInfo":["}",{"a":"\\\\"}]}`).signed.toString(), '["}",{"a":"\\\\"}]');
  });

  it('finds primitive bodies, however they end', () => {
    assert.equal(split(`{"tcbInfo":12 ,"signature":"${sig}"}`).signed.toString(), '12');
    assert.equal(split(`{"tcbInfo":12,"signature":"${sig}"}`).signed.toString(), '12');
    assert.equal(split(`{"signature":"${sig}","tcbInfo":null}`).signed.toString(), 'null');
    assert.equal(split(`{"signature":"${sig}","tcbInfo":"s"}`).signed.toString(), '"s"');
    assert.equal(split(`{"signature":"${sig}","tcbInfo":true\n}`).signed.toString(), 'true');
  });

  it('copes with whitespace before the object and around keys and colons', () => {
    const s = split(`\n  { "tcbInfo"\t:\n {"v": 1} ,\n"signature" : "${sig}" }\n`);
    assert.equal(s.signed.toString(), '{"v": 1}');
    assert.deepEqual(s.signature, Buffer.from(sig, 'hex'));
  });

  it('slices bytes, not characters, when the body has non-ASCII text', () => {
    const s = split(`{"tcbInfo":{"n":"äöü €"},"signature":"${sig}"}`);
    assert.equal(s.signed.toString('utf8'), '{"n":"äöü €"}');
    assert.deepEqual(s.value, { n: 'äöü €' });
  });

  it('refuses documents that are not one object with the two keys', () => {
    assert.throws(() => split('[1, 2]'), refusal(/not a JSON object/));
    assert.throws(() => split('null'), refusal(/not a JSON object/));
    assert.throws(() => split('"tcbInfo"'), refusal(/not a JSON object/));
    assert.throws(() => split('{not json'), refusal(/^attestation check tdx\.tcbinfo\.parse failed: not JSON \(/));
    assert.throws(
      () => split(`{"tcbInfo":{}}`),
      refusal(/expected exactly the keys "tcbInfo" and "signature", found \["tcbInfo"\]/),
    );
    assert.throws(() => split(`{"qe":{},"signature":"${sig}"}`), refusal(/found \["qe","signature"\]/));
  });

  it('requires the signature as exactly 128 hex digits', () => {
    for (const bad of [
      `"${sig}0"`,
      `"${sig.slice(1)}"`,
      `"x${sig.slice(1)}"`,
      `"${sig.slice(1)}x"`,
      '5',
      'null',
      `["${sig}"]`,
    ]) {
      assert.throws(
        () => split(`{"tcbInfo":{},"signature":${bad}}`),
        refusal(/signature must be 64 bytes as hex$/),
        bad,
      );
    }
    assert.deepEqual(split(`{"tcbInfo":{},"signature":"${sig.toUpperCase()}"}`).signature, Buffer.from(sig, 'hex'));
  });
});
