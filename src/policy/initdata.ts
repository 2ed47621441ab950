/**
 * Kata initdata: the TOML document that carries the agent policy into the VM.
 *
 *   annotation value = base64(gzip(TOML))      policy hash = sha256(TOML bytes)
 *
 * The hash is what the hardware reports as SNP HOSTDATA / TDX MRCONFIGID, so the TOML bytes
 * must be produced deterministically: fixed key order, fixed string style, fixed gzip level.
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzip, gzipSync } from 'node:zlib';
import { parse as parseToml } from 'smol-toml';
import { UserError } from '../util/errors.js';

export const INITDATA_ANNOTATION = 'io.katacontainers.config.hypervisor.cc_init_data';
export const INITDATA_VERSION = '0.1.0';
export const POLICY_KEY = 'policy.rego';

export interface InitData {
  version: string;
  algorithm: 'sha256' | 'sha384' | 'sha512';
  /** Ordered: serialised in insertion order. */
  data: Record<string, string>;
}

/** Upper bound for a decompressed initdata document; protects against gzip bombs. */
const MAX_INITDATA_BYTES = 16 * 1024 * 1024;

export function initDataForPolicy(policyText: string): InitData {
  return { version: INITDATA_VERSION, algorithm: 'sha256', data: { [POLICY_KEY]: policyText } };
}

/** Serialise as TOML. Keys and values are written in a fixed, documented style. */
export function initDataToToml(init: InitData): string {
  let out = `version = ${tomlString(init.version)}\nalgorithm = ${tomlString(init.algorithm)}\n\n[data]\n`;
  for (const [key, value] of Object.entries(init.data)) {
    out += `${tomlString(key)} = ${tomlString(value)}\n`;
  }
  return out;
}

/**
 * A multi-line literal string ('''…''') when the value allows it (no ''' and no control
 * characters other than tab and newline), otherwise a basic string with escapes.
 */
function tomlString(value: string): string {
  const literalSafe =
    !value.includes("'''") && !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(value) && !value.endsWith("'");
  if (value.includes('\n') && literalSafe) {
    // A newline directly after the opening delimiter is trimmed by TOML readers.
    return `'''\n${value}'''`;
  }
  return JSON.stringify(value).replace(/[\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface EncodedInitData {
  toml: string;
  /** base64(gzip(toml)): the annotation value. */
  annotation: string;
  /** hex sha256 of the TOML bytes: the manifest's policy key. */
  hash: string;
}

export function encodeInitData(init: InitData): EncodedInitData {
  const toml = initDataToToml(init);
  const bytes = Buffer.from(toml, 'utf8');
  // Fixed level and mtime 0 (zlib default) keep the annotation deterministic.
  const annotation = gzipSync(bytes, { level: 6 }).toString('base64');
  return { toml, annotation, hash: digestHex(init.algorithm, bytes) };
}

export function encodePolicy(policyText: string): EncodedInitData {
  return encodeInitData(initDataForPolicy(policyText));
}

/**
 * encodePolicy with the gzip on libuv's thread pool: the same bytes (same zlib, same level), on
 * another core while the caller computes the next pod's policy. The TOML and its hash are ready
 * at once.
 */
export function encodePolicyInBackground(policyText: string): Omit<EncodedInitData, 'annotation'> & {
  annotation: Promise<string>;
} {
  const toml = initDataToToml(initDataForPolicy(policyText));
  const bytes = Buffer.from(toml, 'utf8');
  // One output chunk larger than any result: the whole gzip is one job in the pool, with no
  // step that waits for the (busy) main thread between chunks. Chunking does not change the bytes.
  const chunkSize = Math.max(64 * 1024, bytes.length + 4096);
  const annotation = new Promise<string>((resolve, reject) =>
    gzip(bytes, { level: 6, chunkSize }, (err, out) => (err ? reject(err) : resolve(out.toString('base64')))),
  );
  return { toml, annotation, hash: digestHex('sha256', bytes) };
}

function digestHex(algorithm: InitData['algorithm'], bytes: Uint8Array): string {
  return createHash(algorithm).update(bytes).digest('hex');
}

/** Parse an initdata TOML document and check its version and algorithm. */
export function parseInitDataToml(toml: string): InitData {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(toml) as Record<string, unknown>;
  } catch (err) {
    throw new UserError(`initdata is not valid TOML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc.version !== INITDATA_VERSION) {
    throw new UserError(`initdata version is ${JSON.stringify(doc.version)}, expected "${INITDATA_VERSION}"`);
  }
  const algorithm = normaliseAlgorithm(doc.algorithm);
  const data = doc.data;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new UserError('initdata has no [data] table');
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) {
    if (typeof v !== 'string') throw new UserError(`initdata data.${k} is not a string`);
    out[k] = v;
  }
  return { version: INITDATA_VERSION, algorithm, data: out };
}

function normaliseAlgorithm(value: unknown): InitData['algorithm'] {
  const v = typeof value === 'string' ? value.toLowerCase().replace('-', '') : value;
  if (v === 'sha256' || v === 'sha384' || v === 'sha512') return v;
  throw new UserError(`initdata algorithm ${JSON.stringify(value)} is not one of sha256, sha384, sha512`);
}

export interface DecodedInitData {
  init: InitData;
  toml: string;
  hash: string;
}

/** Decode an annotation value (base64 of gzip of TOML) and compute its policy hash. */
export function decodeInitDataAnnotation(annotation: string): DecodedInitData {
  const compact = annotation.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length === 0) {
    throw new UserError('initdata annotation is not base64');
  }
  let bytes: Buffer;
  try {
    bytes = gunzipSync(Buffer.from(compact, 'base64'), { maxOutputLength: MAX_INITDATA_BYTES });
  } catch (err) {
    throw new UserError(`initdata annotation is not gzip data (${(err as Error).message})`);
  }
  const toml = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  const init = parseInitDataToml(toml);
  return { init, toml, hash: digestHex(init.algorithm, bytes) };
}
