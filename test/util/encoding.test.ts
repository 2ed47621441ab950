import assert from 'node:assert/strict';
import { decodeBase64Strict, readPemBlocks } from '../../src/util/encoding.js';

describe('strict base64 and PEM', () => {
  it('decodes canonical base64 only', () => {
    assert.deepEqual(decodeBase64Strict('aGk='), Buffer.from('hi'));
    assert.deepEqual(decodeBase64Strict(''), Buffer.alloc(0));
    for (const bad of ['aGk', 'aGl=', 'aG k=', 'aGk=\n', 'a*k=', 'aGk==', '===='])
      assert.equal(decodeBase64Strict(bad), undefined, bad);
  });

  it('reads blocks separated by whitespace and names the offset of anything else', () => {
    const pem = (label: string, b64: string) => `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
    assert.deepEqual(
      readPemBlocks(`${pem('PUBLIC KEY', 'aGk=')}\n\r\n${pem('X', 'aGk=')}`).map((b) => [b.label, b.der.toString()]),
      [
        ['PUBLIC KEY', 'hi'],
        ['X', 'hi'],
      ],
    );
    assert.deepEqual(readPemBlocks('  \n'), []);
    assert.throws(() => readPemBlocks(`comment\n${pem('A', 'aGk=')}`), /unexpected content at offset 0/);
    assert.throws(() => readPemBlocks(`${pem('A', 'aGk=')}x`), /unexpected content at offset \d+/);
    assert.throws(() => readPemBlocks('-----BEGIN A-----\naGk=\n-----END B-----\n'), /begins as A and ends as B/);
    assert.throws(() => readPemBlocks(pem('A', 'aGl=')), /block 1 is not canonical base64/);
    assert.throws(
      () => readPemBlocks('-----BEGIN A-----\nProc-Type: 4,ENCRYPTED\n\naGk=\n-----END A-----\n'),
      /unexpected content/,
    );
  });
});
