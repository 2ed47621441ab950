import { AttestationError } from '../errors.js';

/**
 * Intel PCS collateral is `{"<name>": <body>, "signature": "<hex>"}` where the signature covers
 * the body's bytes exactly as served. Re-serialising the parsed body would change the bytes, so
 * this finds the value's span in the original text with a small scanner.
 */
export interface SignedJson {
  /** The exact bytes of the signed value. */
  readonly signed: Buffer;
  readonly signature: Buffer;
  readonly value: unknown;
}

function fail(check: string, detail: string): never {
  throw new AttestationError(check, detail);
}

/** Index just past the JSON value starting at `i` (strings, nesting; content checked by JSON.parse later). */
function skipValue(s: string, i: number, check: string): number {
  let depth = 0;
  for (let pos = i; pos < s.length; pos++) {
    const ch = s[pos];
    if (ch === '"') {
      for (pos++; pos < s.length && s[pos] !== '"'; pos++) if (s[pos] === '\\') pos++;
      if (pos >= s.length) fail(check, 'unterminated string');
      if (depth === 0) return pos + 1;
    } else if (ch === '{' || ch === '[') {
      depth++;
    } else if (ch === '}' || ch === ']') {
      depth--;
      if (depth < 0) return pos;
      if (depth === 0) return pos + 1;
    } else if (depth === 0 && (ch === ',' || /\s/.test(ch!))) {
      return pos;
    }
  }
  if (depth !== 0) fail(check, 'unbalanced brackets');
  return s.length;
}

export function splitSignedJson(data: Uint8Array, bodyKey: string, check: string): SignedJson {
  const text = Buffer.from(data).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    fail(check, `not JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) fail(check, 'not a JSON object');
  const keys = Object.keys(parsed);
  if (keys.length !== 2 || !keys.includes(bodyKey) || !keys.includes('signature')) {
    fail(check, `expected exactly the keys "${bodyKey}" and "signature", found ${JSON.stringify(keys)}`);
  }
  // Walk the top-level object: { "key" : value , ... }
  const spans = new Map<string, [number, number]>();
  let i = text.indexOf('{') + 1;
  while (i < text.length) {
    while (/[\s,]/.test(text[i] ?? '')) i++;
    if (text[i] === '}') break;
    const keyEnd = skipValue(text, i, check);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = keyEnd;
    while (/\s/.test(text[i] ?? '')) i++;
    if (text[i] !== ':') fail(check, 'malformed object');
    i++;
    while (/\s/.test(text[i] ?? '')) i++;
    const end = skipValue(text, i, check);
    // JSON.parse keeps the last of duplicate keys; refuse them so no two readings exist.
    if (spans.has(key)) fail(check, `duplicate key ${JSON.stringify(key)}`);
    spans.set(key, [i, end]);
    i = end;
  }
  const [start, end] = spans.get(bodyKey)!;
  const sigHex = (parsed as Record<string, unknown>).signature;
  if (typeof sigHex !== 'string' || !/^[0-9a-fA-F]{128}$/.test(sigHex))
    fail(check, 'signature must be 64 bytes as hex');
  // Byte offsets: slice the UTF-8 encoding, not the JS string, in case the body has non-ASCII.
  const prefix = Buffer.byteLength(text.slice(0, start));
  const length = Buffer.byteLength(text.slice(start, end));
  const raw = Buffer.from(data);
  return {
    signed: raw.subarray(prefix, prefix + length),
    signature: Buffer.from(sigHex, 'hex'),
    value: (parsed as Record<string, unknown>)[bodyKey],
  };
}
