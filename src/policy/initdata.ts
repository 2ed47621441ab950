/**
 * Kata initdata: the TOML document that carries the agent policy into the VM.
 *
 *   annotation value = base64(gzip(TOML))      policy hash = sha256(TOML bytes)
 *
 * The hash is what the hardware reports as SNP HOSTDATA / TDX MRCONFIGID, so the TOML bytes
 * must be produced deterministically: fixed key order, fixed string style, fixed gzip level.
 */
import { createHash, type Hash } from 'node:crypto';
import { constants, crc32, deflateRaw, deflateRawSync, gunzipSync } from 'node:zlib';
import { parse as parseToml } from 'smol-toml';
import { UserError } from '../util/errors.js';
import { POLICY_DATA_SEPARATOR } from './text.js';

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

const LITERAL_DELIMITER = "'''";
/** Control characters other than tab and newline: a literal string cannot hold them. */
const NOT_IN_LITERAL = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/**
 * A multi-line literal string ('''…''') when the value allows it (no ''' and no control
 * characters other than tab and newline), otherwise a basic string with escapes.
 */
function tomlString(value: string): string {
  if (value.includes('\n') && literalAllows(value)) {
    // A newline directly after the opening delimiter is trimmed by TOML readers.
    return `'''\n${value}'''`;
  }
  return JSON.stringify(value).replace(/[\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function literalAllows(value: string): boolean {
  return !value.includes(LITERAL_DELIMITER) && !NOT_IN_LITERAL.test(value) && !value.endsWith("'");
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
  const { shared, rest } = splitShared(toml, bytes);
  const annotation = gzipMember(shared, rest, deflateRawSync(rest, { level: GZIP_LEVEL })).toString('base64');
  return { toml, annotation, hash: digestHex(init.algorithm, bytes) };
}

export function encodePolicy(policyText: string): EncodedInitData {
  return encodeInitData(initDataForPolicy(policyText));
}

/**
 * encodePolicy with the deflate on libuv's thread pool: the same bytes (same zlib, same level),
 * on another core while the caller computes the next pod's policy. The TOML and its hash are
 * ready at once. The TOML's start (the header and the rules, the same for every pod of a run) is
 * written, converted, hashed and deflated once (tomlStart); each pod adds only its policy data.
 */
export function encodePolicyInBackground(policyText: string): Omit<EncodedInitData, 'annotation'> & {
  annotation: Promise<string>;
} {
  const split = splitPolicyToml(policyText);
  let toml: string;
  let rest: Buffer;
  let shared: SharedDeflate | undefined;
  let hash: string;
  if (split) {
    toml = split.start.toml + split.tail;
    rest = Buffer.from(split.tail, 'utf8');
    shared = split.start.shared;
    hash = split.start.hash.copy().update(rest).digest('hex');
  } else {
    toml = initDataToToml(initDataForPolicy(policyText));
    const bytes = Buffer.from(toml, 'utf8');
    ({ shared, rest } = splitShared(toml, bytes));
    hash = digestHex('sha256', bytes);
  }
  // One output chunk larger than any result: the whole deflate is one job in the pool, with no
  // step that waits for the (busy) main thread between chunks. Chunking does not change the bytes.
  const chunkSize = Math.max(64 * 1024, rest.length + 4096);
  const annotation = new Promise<string>((resolve, reject) =>
    deflateRaw(rest, { level: GZIP_LEVEL, chunkSize }, (err, out) =>
      err ? reject(err) : resolve(gzipMember(shared, rest, out).toString('base64')),
    ),
  );
  return { toml, annotation, hash };
}

/** The TOML of a policy text up to its last POLICY_DATA_SEPARATOR, with its hash state and deflate. */
interface TomlStart {
  /** The part of the policy text it is the TOML of. */
  rules: string;
  toml: string;
  /** SHA-256 of the start's bytes, to be copied and continued. */
  hash: Hash;
  shared: SharedDeflate;
}
/** The start of the last policy text's TOML (a run has one rules text). */
let lastStart: TomlStart | undefined;

/**
 * A policy text's TOML as its start and the rest (from the separator on, with the literal's end),
 * when tomlString writes the whole text as one literal string, which then splits there;
 * otherwise undefined (the caller writes the TOML whole).
 */
function splitPolicyToml(policyText: string): { start: TomlStart; tail: string } | undefined {
  const at = policyText.lastIndexOf(POLICY_DATA_SEPARATOR);
  if (at <= 0) return undefined;
  const known = lastStart;
  const start =
    known && known.rules.length === at && policyText.startsWith(known.rules)
      ? known
      : tomlStart(policyText.slice(0, at));
  if (!start) return undefined;
  const rest = policyText.slice(at);
  // What tomlString asks of the whole text, asked of the rest (tomlStart asked it of the start;
  // the rest starts with the separator's newline, so no delimiter spans the cut).
  return literalAllows(rest) ? { start, tail: `${rest}${LITERAL_DELIMITER}\n` } : undefined;
}

function tomlStart(rules: string): TomlStart | undefined {
  // The TOML of the rules with a stand-in for the data, cut at the separator: initDataToToml
  // itself writes the start. Where tomlString escapes the text (a delimiter or a control
  // character in the rules), the separator's newline is escaped too and there is no cut.
  const whole = initDataToToml(initDataForPolicy(`${rules}${POLICY_DATA_SEPARATOR}x`));
  const cut = whole.lastIndexOf(POLICY_DATA_SEPARATOR);
  if (cut < 0) return undefined;
  const toml = whole.slice(0, cut);
  const bytes = Buffer.from(toml, 'utf8');
  lastStart = { rules, toml, hash: createHash('sha256').update(bytes), shared: deflateShared(bytes) };
  return lastStart;
}

/**
 * The gzip encoding of the annotation is one standard gzip member (RFC 1952) of level-6 DEFLATE
 * (RFC 1951), fixed so the annotation is deterministic, with one twist for speed: the TOML up to
 * the policy's `policy_data := ` (the header and the rules, the same in every pod) is deflated
 * once per rules text and ends with a sync flush (an empty stored block, byte aligned); the rest,
 * deflated on its own, follows it in the same member. Any inflater reads the two as one stream
 * (the rest only refers back into itself); only the compressed bytes differ from one deflate of
 * the whole (about 2% larger), never the TOML or its hash. A TOML without that part is one
 * deflate, byte for byte what gzip -6 writes.
 */
const GZIP_LEVEL = 6;
/** The member header zlib writes at level 6: no file name, mtime 0, OS Unix. */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);

/** The deflated shared start of a TOML: the DEFLATE blocks, the CRC-32 and the length of its bytes. */
interface SharedDeflate {
  blocks: Buffer;
  crc: number;
  length: number;
}
/** By the text of the shared start; a few rules texts at most (ours, and foreign rules of `policy check`). */
const sharedDeflates = new Map<string, SharedDeflate>();
const MAX_SHARED_DEFLATES = 4;

function splitShared(toml: string, bytes: Buffer): { shared: SharedDeflate | undefined; rest: Buffer } {
  const at = toml.lastIndexOf(POLICY_DATA_SEPARATOR);
  if (at <= 0) return { shared: undefined, rest: bytes };
  const start = toml.slice(0, at);
  let shared = sharedDeflates.get(start);
  if (!shared) {
    shared = deflateShared(bytes.subarray(0, Buffer.byteLength(start, 'utf8')));
    if (sharedDeflates.size >= MAX_SHARED_DEFLATES) sharedDeflates.delete(sharedDeflates.keys().next().value!);
    sharedDeflates.set(start, shared);
  }
  return { shared, rest: bytes.subarray(shared.length) };
}

/** A shared start deflated, ending with a sync flush (byte aligned, so another deflate can follow). */
function deflateShared(head: Buffer): SharedDeflate {
  const blocks = deflateRawSync(head, { level: GZIP_LEVEL, finishFlush: constants.Z_SYNC_FLUSH });
  return { blocks, crc: crc32(head), length: head.length };
}

/** Header, the shared blocks, the rest's final blocks, then CRC-32 and length of all the bytes. */
function gzipMember(shared: SharedDeflate | undefined, rest: Buffer, restBlocks: Buffer): Buffer {
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(rest, shared?.crc ?? 0), 0);
  trailer.writeUInt32LE(((shared?.length ?? 0) + rest.length) >>> 0, 4);
  return Buffer.concat(shared ? [GZIP_HEADER, shared.blocks, restBlocks, trailer] : [GZIP_HEADER, restBlocks, trailer]);
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
