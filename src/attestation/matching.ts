import { AttestationError, ensure } from './errors.js';
import { bytesEqual, fromHex, toHex } from './bytes.js';

/** Fails `check` unless `actual` equals the hex reference value. */
export function expectHexEqual(check: string, what: string, expectedHex: string, actual: Uint8Array): void {
  const want = fromHex(expectedHex);
  ensure(
    want !== null && bytesEqual(want, actual),
    check,
    `${what} does not match`,
    expectedHex.toLowerCase(),
    toHex(actual),
  );
}

/**
 * Index of the first reference-value entry that `validate` accepts. Upstream accepts evidence
 * matching any entry; when none does, every entry's failure is reported, since the user needs
 * to see which entry was meant to match and why it did not. An empty list is an error, never
 * an acceptance.
 */
export function firstMatchingEntry<R>(tee: 'snp' | 'tdx', refs: readonly R[], validate: (ref: R) => void): number {
  const check = `${tee}.referencevalues`;
  if (refs.length === 0)
    throw new AttestationError(check, `no ${tee.toUpperCase()} reference values to validate against`);
  const failures: AttestationError[] = [];
  for (const [i, ref] of refs.entries()) {
    try {
      validate(ref);
      return i;
    } catch (err) {
      if (!(err instanceof AttestationError)) throw err;
      failures.push(err);
    }
  }
  if (failures.length === 1) throw failures[0]!;
  throw new AttestationError(
    check,
    `no reference-value entry matches: ${failures.map((e, i) => `[${i}] ${e.message}`).join('; ')}`,
  );
}
