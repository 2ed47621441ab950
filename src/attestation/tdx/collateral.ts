import { createHash, verify as cryptoVerify, type X509Certificate } from 'node:crypto';
import { BoundedCache } from '../bounded-cache.js';
import { AttestationError, ensure } from '../errors.js';
import { checkCrl, checkIssuedBy, checkValidity, commonName, publicKeyOf, type Crl } from '../x509.js';
import { parsePemChain, requirePinnedIntelRoot } from './pck.js';
import { splitSignedJson, type SignedJson } from './signed-json.js';

/**
 * Intel PCS collateral for TDX: TCB info (per FMSPC) and the QE identity, each signed by the
 * "Intel SGX TCB Signing" certificate under the pinned root. The JSON is read only after its
 * signature has verified, and then shape-checked field by field.
 */
export interface TcbComponent {
  readonly svn: number;
}

export interface TdxTcbLevel {
  readonly tcb: {
    readonly sgxtcbcomponents: readonly TcbComponent[];
    readonly pcesvn: number;
    readonly tdxtcbcomponents: readonly TcbComponent[];
  };
  readonly tcbDate: string;
  readonly tcbStatus: string;
  readonly advisoryIDs?: readonly string[];
}

export interface TdxModuleIdentity {
  readonly id: string;
  readonly mrsigner: string;
  readonly attributes: string;
  readonly attributesMask: string;
  readonly tcbLevels: readonly {
    readonly tcb: { readonly isvsvn: number };
    readonly tcbStatus: string;
    readonly tcbDate: string;
  }[];
}

export interface TdxTcbInfo {
  readonly id: string;
  readonly version: number;
  readonly issueDate: string;
  readonly nextUpdate: string;
  readonly fmspc: string;
  readonly pceId: string;
  readonly tcbEvaluationDataNumber: number;
  readonly tdxModule: { readonly mrsigner: string; readonly attributes: string; readonly attributesMask: string };
  readonly tdxModuleIdentities?: readonly TdxModuleIdentity[];
  readonly tcbLevels: readonly TdxTcbLevel[];
}

export interface QeIdentity {
  readonly id: string;
  readonly version: number;
  readonly issueDate: string;
  readonly nextUpdate: string;
  readonly tcbEvaluationDataNumber: number;
  readonly miscselect: string;
  readonly miscselectMask: string;
  readonly attributes: string;
  readonly attributesMask: string;
  readonly mrsigner: string;
  readonly isvprodid: number;
  readonly tcbLevels: readonly {
    readonly tcb: { readonly isvsvn: number };
    readonly tcbDate: string;
    readonly tcbStatus: string;
  }[];
}

type Json = Record<string, unknown>;

class Shape {
  constructor(private readonly check: string) {}

  obj(v: unknown, path: string): Json {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw new AttestationError(this.check, `${path} must be an object`);
    return v as Json;
  }

  arr(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) throw new AttestationError(this.check, `${path} must be a list`);
    return v;
  }

  int(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
      throw new AttestationError(this.check, `${path} must be a non-negative integer`);
    return v;
  }

  str(v: unknown, path: string): string {
    if (typeof v !== 'string') throw new AttestationError(this.check, `${path} must be a string`);
    return v;
  }

  hex(v: unknown, path: string, bytes: number): string {
    const s = this.str(v, path);
    if (s.length !== bytes * 2 || !/^[0-9a-fA-F]*$/.test(s))
      throw new AttestationError(this.check, `${path} must be ${bytes} bytes as hex`);
    return s.toLowerCase();
  }

  components(v: unknown, path: string): TcbComponent[] {
    const list = this.arr(v, path);
    if (list.length !== 16) throw new AttestationError(this.check, `${path} must have 16 components`);
    return list.map((c, i) => ({ svn: this.int(this.obj(c, `${path}[${i}]`).svn, `${path}[${i}].svn`) }));
  }

  isvLevels(v: unknown, path: string) {
    return this.arr(v, path).map((l, i) => {
      const o = this.obj(l, `${path}[${i}]`);
      return {
        tcb: { isvsvn: this.int(this.obj(o.tcb, `${path}[${i}].tcb`).isvsvn, `${path}[${i}].tcb.isvsvn`) },
        tcbDate: this.str(o.tcbDate, `${path}[${i}].tcbDate`),
        tcbStatus: this.str(o.tcbStatus, `${path}[${i}].tcbStatus`),
      };
    });
  }
}

/** Shape-checks a TCB info body; only for bodies whose signature was verified. */
export function shapeTcbInfo(v: unknown): TdxTcbInfo {
  const s = new Shape('tdx.tcbinfo.parse');
  const o = s.obj(v, 'tcbInfo');
  const mod = s.obj(o.tdxModule, 'tcbInfo.tdxModule');
  const identities =
    o.tdxModuleIdentities === undefined
      ? undefined
      : s.arr(o.tdxModuleIdentities, 'tdxModuleIdentities').map((m, i) => {
          const p = `tdxModuleIdentities[${i}]`;
          const mo = s.obj(m, p);
          return {
            id: s.str(mo.id, `${p}.id`),
            mrsigner: s.hex(mo.mrsigner, `${p}.mrsigner`, 48),
            attributes: s.hex(mo.attributes, `${p}.attributes`, 8),
            attributesMask: s.hex(mo.attributesMask, `${p}.attributesMask`, 8),
            tcbLevels: s.isvLevels(mo.tcbLevels, `${p}.tcbLevels`),
          };
        });
  return {
    id: s.str(o.id, 'id'),
    version: s.int(o.version, 'version'),
    issueDate: s.str(o.issueDate, 'issueDate'),
    nextUpdate: s.str(o.nextUpdate, 'nextUpdate'),
    fmspc: s.hex(o.fmspc, 'fmspc', 6),
    pceId: s.hex(o.pceId, 'pceId', 2),
    tcbEvaluationDataNumber: s.int(o.tcbEvaluationDataNumber, 'tcbEvaluationDataNumber'),
    tdxModule: {
      mrsigner: s.hex(mod.mrsigner, 'tdxModule.mrsigner', 48),
      attributes: s.hex(mod.attributes, 'tdxModule.attributes', 8),
      attributesMask: s.hex(mod.attributesMask, 'tdxModule.attributesMask', 8),
    },
    ...(identities ? { tdxModuleIdentities: identities } : {}),
    tcbLevels: s.arr(o.tcbLevels, 'tcbLevels').map((l, i) => {
      const p = `tcbLevels[${i}]`;
      const lo = s.obj(l, p);
      const tcb = s.obj(lo.tcb, `${p}.tcb`);
      return {
        tcb: {
          sgxtcbcomponents: s.components(tcb.sgxtcbcomponents, `${p}.tcb.sgxtcbcomponents`),
          pcesvn: s.int(tcb.pcesvn, `${p}.tcb.pcesvn`),
          tdxtcbcomponents: s.components(tcb.tdxtcbcomponents, `${p}.tcb.tdxtcbcomponents`),
        },
        tcbDate: s.str(lo.tcbDate, `${p}.tcbDate`),
        tcbStatus: s.str(lo.tcbStatus, `${p}.tcbStatus`),
        ...(Array.isArray(lo.advisoryIDs)
          ? { advisoryIDs: lo.advisoryIDs.map((a, j) => s.str(a, `${p}.advisoryIDs[${j}]`)) }
          : {}),
      };
    }),
  };
}

function shapeQeIdentity(v: unknown): QeIdentity {
  const s = new Shape('tdx.qeidentity.parse');
  const o = s.obj(v, 'enclaveIdentity');
  return {
    id: s.str(o.id, 'id'),
    version: s.int(o.version, 'version'),
    issueDate: s.str(o.issueDate, 'issueDate'),
    nextUpdate: s.str(o.nextUpdate, 'nextUpdate'),
    tcbEvaluationDataNumber: s.int(o.tcbEvaluationDataNumber, 'tcbEvaluationDataNumber'),
    miscselect: s.hex(o.miscselect, 'miscselect', 4),
    miscselectMask: s.hex(o.miscselectMask, 'miscselectMask', 4),
    attributes: s.hex(o.attributes, 'attributes', 16),
    attributesMask: s.hex(o.attributesMask, 'attributesMask', 16),
    mrsigner: s.hex(o.mrsigner, 'mrsigner', 32),
    isvprodid: s.int(o.isvprodid, 'isvprodid'),
    tcbLevels: s.isvLevels(o.tcbLevels, 'tcbLevels'),
  };
}

/**
 * The TCB signing certificate from an issuer chain (signer, then root): named "Intel SGX TCB
 * Signing" and signed by the pinned root. Time-independent; the caller checks validity.
 */
function signingCertificate(chainPem: Uint8Array, check: string): { signer: X509Certificate; root: X509Certificate } {
  const certs = parsePemChain(
    chainPem,
    2,
    check,
    'the issuer chain must hold the TCB signing certificate and the root',
  );
  const [signer, candidate] = certs as [X509Certificate, X509Certificate];
  const root = requirePinnedIntelRoot(candidate, check);
  ensure(
    commonName(signer.subject) === 'Intel SGX TCB Signing',
    check,
    "the collateral signer is not Intel's TCB signing certificate",
    'CN=Intel SGX TCB Signing',
    `CN=${commonName(signer.subject) ?? '<none>'}`,
  );
  checkIssuedBy(signer, root, check, 'the TCB signing certificate must be signed by the Intel SGX Root CA');
  return { signer, root };
}

/** Verifies the TCB signing chain (signer, then root) at `now` and returns the signer. */
function verifySigningChain(chainPem: Uint8Array, now: Date, check: string, rootCrl?: Crl): X509Certificate {
  const { signer, root } = signingCertificate(chainPem, check);
  checkValidity(signer, now, check, 'the TCB signing certificate');
  if (rootCrl) checkCrl(rootCrl, root, now, [signer], 'tdx.crl.root');
  return signer;
}

function checkDates(issueDate: string, nextUpdate: string, now: Date, check: string, what: string): void {
  const issued = new Date(issueDate);
  const next = new Date(nextUpdate);
  ensure(!Number.isNaN(issued.getTime()) && !Number.isNaN(next.getTime()), check, `${what} has malformed dates`);
  ensure(now >= issued, check, `${what} is not yet valid`, `issueDate <= ${now.toISOString()}`, issueDate);
  ensure(
    now <= next,
    check,
    `${what} is out of date (past nextUpdate); fetch fresh collateral`,
    `nextUpdate >= ${now.toISOString()}`,
    nextUpdate,
  );
}

/** Bodies whose signature already verified, per signer; the signer's validity is rechecked per call. */
const verifiedBodies = new WeakMap<X509Certificate, BoundedCache<string, unknown>>();

function checkSignature(data: Uint8Array, key: string, signer: X509Certificate, check: string): SignedJson {
  const signed = splitSignedJson(data, key, `${check}.parse`);
  const ok = cryptoVerify(
    'sha256',
    signed.signed,
    { key: publicKeyOf(signer, `${check}.signer`, 'the TCB signing certificate'), dsaEncoding: 'ieee-p1363' },
    signed.signature,
  );
  ensure(
    ok,
    `${check}.signature`,
    `the ${key} signature does not verify`,
    'signed by Intel SGX TCB Signing',
    'bad signature',
  );
  return signed;
}

function verifySigned<T>(
  data: Uint8Array,
  key: string,
  chainPem: Uint8Array,
  now: Date,
  check: string,
  rootCrl: Crl | undefined,
  shape: (v: unknown) => T,
): T {
  const signer = verifySigningChain(chainPem, now, `${check}.signer`, rootCrl);
  let cache = verifiedBodies.get(signer);
  if (!cache) verifiedBodies.set(signer, (cache = new BoundedCache(64)));
  // Keyed by the kind of body too: TCB info and QE identity share their signer, and a body
  // verified as one kind must not come back from the cache as the other.
  const digest = `${key}:${createHash('sha256').update(data).digest('hex')}`;
  const hit = cache.get(digest);
  if (hit !== undefined) return hit as T;
  const body = shape(checkSignature(data, key, signer, check).value);
  cache.set(digest, body);
  return body;
}

/**
 * Time-independent check of a PCS answer before it is cached: the body is signed by Intel's TCB
 * signing certificate under the pinned root. Returns the body's value, shape not yet checked.
 */
export function checkSignedCollateral(
  data: Uint8Array,
  key: 'tcbInfo' | 'enclaveIdentity',
  chainPem: Uint8Array,
): unknown {
  const check = key === 'tcbInfo' ? 'tdx.tcbinfo' : 'tdx.qeidentity';
  return checkSignature(data, key, signingCertificate(chainPem, `${check}.signer`).signer, check).value;
}

export function verifyTcbInfo(data: Uint8Array, issuerChainPem: Uint8Array, now: Date, rootCrl?: Crl): TdxTcbInfo {
  const info = verifySigned(data, 'tcbInfo', issuerChainPem, now, 'tdx.tcbinfo', rootCrl, shapeTcbInfo);
  ensure(
    info.id === 'TDX' && info.version === 3,
    'tdx.tcbinfo.parse',
    'not TDX TCB info version 3',
    'id TDX, version 3',
    `id ${info.id}, version ${info.version}`,
  );
  checkDates(info.issueDate, info.nextUpdate, now, 'tdx.tcbinfo.validity', 'the TCB info');
  return info;
}

export function verifyQeIdentity(data: Uint8Array, issuerChainPem: Uint8Array, now: Date, rootCrl?: Crl): QeIdentity {
  const id = verifySigned(data, 'enclaveIdentity', issuerChainPem, now, 'tdx.qeidentity', rootCrl, shapeQeIdentity);
  ensure(
    id.id === 'TD_QE' && id.version === 2,
    'tdx.qeidentity.parse',
    'not a TD_QE identity version 2',
    'id TD_QE, version 2',
    `id ${id.id}, version ${id.version}`,
  );
  checkDates(id.issueDate, id.nextUpdate, now, 'tdx.qeidentity.validity', 'the QE identity');
  return id;
}
