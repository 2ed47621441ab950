/**
 * node:crypto's `sign` in its callback form, which runs on libuv's thread pool. An ECDSA P-384
 * signature costs about 1.5 ms of CPU with OpenSSL 3.0 (P-256: 0.05 ms); made synchronously it
 * would hold the event loop that serves every handshake, and on the pool the signatures of
 * concurrent calls use the other cores.
 */
import { sign, type KeyObject, type SignKeyObjectInput } from 'node:crypto';

export function signOnPool(hash: string, data: Buffer, key: KeyObject | SignKeyObjectInput): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    sign(hash, data, key, (err, signature) => (err ? reject(err) : resolve(signature)));
  });
}
