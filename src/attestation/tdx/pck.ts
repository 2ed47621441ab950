import type { X509Certificate } from 'node:crypto';
import { AttestationError, ensure } from '../errors.js';
import { TAG, children, expectTag, readOid, readSingle, readSmallUint, type DerNode } from '../der.js';
import { INTEL_SGX_ROOT_CA } from '../roots/intel.js';
import { pinnedCertificate } from '../roots/pinned.js';
import {
  checkCrl,
  checkIssuedBy,
  checkValidity,
  commonName,
  extensions,
  fingerprint256,
  parsePemCertificates,
  publicKeyOf,
  type Crl,
} from '../x509.js';

/**
 * Intel certificate chains: the PCK chain inside a quote and the signing chains of PCS
 * collateral. Every chain must end in the pinned Intel SGX Root CA by bytes; Intel's test
 * roots carry the same name, so a name match is worthless.
 */

const SGX_EXT = '1.2.840.113741.1.13.1';

export interface PckExtension {
  readonly ppid: Buffer;
  /** The 16 SGX TCB components (CPUSVN bytes as Intel's PCS lists them). */
  readonly sgxTcbComponents: readonly number[];
  readonly pceSvn: number;
  readonly cpuSvn: Buffer;
  readonly pceId: Buffer;
  readonly fmspc: Buffer;
  /** Multi-package platforms only. */
  readonly platformInstanceId?: Buffer;
}

export interface PckChain {
  readonly leaf: X509Certificate;
  readonly intermediate: X509Certificate;
  readonly root: X509Certificate;
  /** `platform` or `processor`, from the intermediate's name; selects the PCK CRL. */
  readonly ca: 'platform' | 'processor';
  readonly extension: PckExtension;
}

function entries(seq: DerNode): Map<string, DerNode> {
  const out = new Map<string, DerNode>();
  for (const item of children(seq)) {
    const [oid, value] = children(item);
    if (!oid || !value) throw new AttestationError('tdx.pck.extension', 'malformed SGX extension entry');
    out.set(readOid(oid), value);
  }
  return out;
}

function octets(m: Map<string, DerNode>, oid: string, size: number, what: string): Buffer {
  const node = m.get(oid);
  if (!node) throw new AttestationError('tdx.pck.extension', `the PCK certificate lacks ${what} (${oid})`);
  const v = expectTag(node, TAG.OCTET_STRING, what).content;
  ensure(v.length === size, 'tdx.pck.extension', `${what} has the wrong size`, `${size} bytes`, `${v.length} bytes`);
  return v;
}

export function readPckExtension(cert: X509Certificate): PckExtension {
  const ext = extensions(cert).get(SGX_EXT);
  if (!ext) throw new AttestationError('tdx.pck.extension', `the PCK certificate lacks the SGX extension (${SGX_EXT})`);
  const m = entries(readSingle(ext.value));
  const tcbNode = m.get(`${SGX_EXT}.2`);
  if (!tcbNode) throw new AttestationError('tdx.pck.extension', 'the SGX extension lacks the TCB entry');
  const tcb = entries(expectTag(tcbNode, TAG.SEQUENCE, 'SGX TCB'));
  const sgxTcbComponents: number[] = [];
  for (let i = 1; i <= 16; i++) {
    const node = tcb.get(`${SGX_EXT}.2.${i}`);
    if (!node) throw new AttestationError('tdx.pck.extension', `the SGX TCB lacks component ${i}`);
    sgxTcbComponents.push(readSmallUint(node, `SGX TCB component ${i}`));
  }
  const pceNode = tcb.get(`${SGX_EXT}.2.17`);
  if (!pceNode) throw new AttestationError('tdx.pck.extension', 'the SGX TCB lacks PCESVN');
  const pid = m.get(`${SGX_EXT}.6`);
  return {
    ppid: octets(m, `${SGX_EXT}.1`, 16, 'PPID'),
    sgxTcbComponents,
    pceSvn: readSmallUint(pceNode, 'PCESVN'),
    cpuSvn: octets(tcb, `${SGX_EXT}.2.18`, 16, 'CPUSVN'),
    pceId: octets(m, `${SGX_EXT}.3`, 2, 'PCEID'),
    fmspc: octets(m, `${SGX_EXT}.4`, 6, 'FMSPC'),
    ...(pid ? { platformInstanceId: expectTag(pid, TAG.OCTET_STRING, 'platform instance id').content } : {}),
  };
}

function checkP256(cert: X509Certificate, check: string, what: string): void {
  const k = publicKeyOf(cert, check, what);
  const curve = k.asymmetricKeyDetails?.namedCurve;
  ensure(
    k.asymmetricKeyType === 'ec' && curve === 'prime256v1',
    check,
    `${what} key is not ECDSA P-256`,
    'ec prime256v1',
    `${k.asymmetricKeyType} ${curve ?? ''}`.trim(),
  );
}

/** Checks that a chain's last certificate is the pinned root and returns the pinned object. */
export function requirePinnedIntelRoot(candidate: X509Certificate | undefined, check: string): X509Certificate {
  const root = pinnedCertificate(INTEL_SGX_ROOT_CA);
  if (!candidate) throw new AttestationError(check, 'the certificate chain does not include the Intel SGX Root CA');
  ensure(
    candidate.raw.equals(root.raw),
    check,
    'the chain ends in a root that is not the pinned Intel SGX Root CA',
    `sha256 ${INTEL_SGX_ROOT_CA.sha256}`,
    `sha256 ${fingerprint256(candidate)} (${commonName(candidate.subject) ?? 'no CN'})`,
  );
  return root;
}

/**
 * A PEM chain of exactly `count` certificates (Intel's formats: the quote's certification data,
 * PCS issuer-chain headers). The quoting enclave terminates the chain with NUL bytes.
 */
export function parsePemChain(
  pem: Uint8Array,
  count: number,
  check: string,
  what: string,
  exactLayout = false,
): X509Certificate[] {
  const certs = parsePemCertificates(pem, 'the certificate chain', {
    count: { min: 0, max: 8 },
    trailingNul: true,
    exactLayout,
  });
  ensure(certs.length === count, check, what, `${count} certificates`, `${certs.length}`);
  return certs;
}

/** Verifies the PCK chain from a quote; `crls` are the root CRL and the PCK CRL when available. */
export function verifyPckChain(pem: Uint8Array, now: Date, crls: { root?: Crl; pck?: Crl } = {}): PckChain {
  // The quote's chain is evidence: one spelling only (PCS issuer chains arrive in other layouts).
  const certs = parsePemChain(pem, 3, 'tdx.pck.chain', 'the PCK chain must hold leaf, intermediate CA and root', true);
  const [leaf, intermediate, candidateRoot] = certs as [X509Certificate, X509Certificate, X509Certificate];
  const root = requirePinnedIntelRoot(candidateRoot, 'tdx.pck.root');
  ensure(
    commonName(leaf.subject) === 'Intel SGX PCK Certificate',
    'tdx.pck.chain',
    'the first certificate is not a PCK certificate',
    'CN=Intel SGX PCK Certificate',
    `CN=${commonName(leaf.subject) ?? '<none>'}`,
  );
  const caName = commonName(intermediate.subject);
  const ca =
    caName === 'Intel SGX PCK Platform CA'
      ? 'platform'
      : caName === 'Intel SGX PCK Processor CA'
        ? 'processor'
        : undefined;
  if (!ca) {
    throw new AttestationError(
      'tdx.pck.chain',
      'the intermediate is not an Intel PCK CA',
      'CN=Intel SGX PCK Platform CA or Processor CA',
      `CN=${caName ?? '<none>'}`,
    );
  }
  checkP256(leaf, 'tdx.pck.chain', 'PCK certificate');
  checkP256(intermediate, 'tdx.pck.chain', 'PCK CA');
  checkIssuedBy(intermediate, root, 'tdx.pck.chain', 'the PCK CA must be signed by the Intel SGX Root CA');
  checkIssuedBy(leaf, intermediate, 'tdx.pck.chain', 'the PCK certificate must be signed by the PCK CA');
  checkValidity(root, now, 'tdx.pck.validity', 'the Intel SGX Root CA');
  checkValidity(intermediate, now, 'tdx.pck.validity', `the ${caName}`);
  checkValidity(leaf, now, 'tdx.pck.validity', 'the PCK certificate');
  if (crls.root) checkCrl(crls.root, root, now, [intermediate], 'tdx.crl.root');
  if (crls.pck) checkCrl(crls.pck, intermediate, now, [leaf], 'tdx.crl.pck');
  return { leaf, intermediate, root, ca, extension: readPckExtension(leaf) };
}
