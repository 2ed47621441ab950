import type { X509Certificate } from 'node:crypto';
import { AttestationError, ensure } from '../errors.js';
import { TAG, expectTag, readSingle, readSmallUint } from '../der.js';
import { commonName, extensions, publicKeyOf } from '../x509.js';

/**
 * AMD's X.509 extensions on VCEK and VLEK certificates (OID arc 1.3.6.1.4.1.3704.1). They
 * bind the signing key to one chip (hwID) and one firmware TCB (the SPLs), which is what makes
 * the key's signature mean anything about the platform.
 */
const ARC = '1.3.6.1.4.1.3704.1';
export const AMD_OID = {
  structVersion: `${ARC}.1`,
  productName: `${ARC}.2`,
  blSpl: `${ARC}.3.1`,
  teeSpl: `${ARC}.3.2`,
  snpSpl: `${ARC}.3.3`,
  ucodeSpl: `${ARC}.3.8`,
  fmcSpl: `${ARC}.3.9`,
  hwId: `${ARC}.4`,
  cspId: `${ARC}.5`,
} as const;

export interface AmdKeyCertificate {
  readonly cert: X509Certificate;
  readonly kind: 'vcek' | 'vlek';
  readonly productName: string;
  readonly spl: {
    readonly fmc?: number;
    readonly bootloader: number;
    readonly tee: number;
    readonly snp: number;
    readonly microcode: number;
  };
  /** VCEK only: 64 bytes (Milan, Genoa) or 8 bytes (Turin). */
  readonly hwId?: Buffer;
  /** VLEK only: the cloud provider the key was issued to. */
  readonly cspId?: string;
}

const CHECK = 'snp.vcek.extensions';

function integerExtension(cert: X509Certificate, oid: string, name: string): number | undefined {
  const ext = extensions(cert).get(oid);
  if (!ext) return undefined;
  const v = readSmallUint(readSingle(ext.value), name);
  ensure(v <= 255, CHECK, `${name} is out of range`, '0..255', String(v));
  return v;
}

function requiredInteger(cert: X509Certificate, oid: string, name: string): number {
  const v = integerExtension(cert, oid, name);
  if (v === undefined) throw new AttestationError(CHECK, `certificate lacks the ${name} extension (${oid})`);
  return v;
}

function stringExtension(cert: X509Certificate, oid: string, name: string): string | undefined {
  const ext = extensions(cert).get(oid);
  if (!ext) return undefined;
  const node = readSingle(ext.value);
  ensure(
    node.tag === TAG.IA5_STRING || node.tag === TAG.UTF8_STRING || node.tag === TAG.PRINTABLE_STRING,
    CHECK,
    `${name} is not a string`,
    'IA5String',
    `tag 0x${node.tag.toString(16)}`,
  );
  return node.content.toString('latin1');
}

/**
 * hwID is stored as raw bytes (no DER tag) by AMD KDS; some tools wrap it in an OCTET STRING.
 * The two are told apart by length alone, since a raw id is exactly 8 or 64 bytes.
 */
function hwIdExtension(cert: X509Certificate): Buffer | undefined {
  const ext = extensions(cert).get(AMD_OID.hwId);
  if (!ext) return undefined;
  const v = ext.value;
  if (v.length === 64 || v.length === 8) return v;
  if (v.length === 66 || v.length === 10) return expectTag(readSingle(v), TAG.OCTET_STRING, 'hwID').content;
  throw new AttestationError(CHECK, 'hwID has an unexpected length', '8 or 64 bytes', `${v.length} bytes`);
}

/** Reads and shape-checks a VCEK or VLEK certificate. */
export function readAmdKeyCertificate(cert: X509Certificate): AmdKeyCertificate {
  const cn = commonName(cert.subject);
  const kind = cn === 'SEV-VCEK' ? 'vcek' : cn === 'SEV-VLEK' ? 'vlek' : undefined;
  if (!kind)
    throw new AttestationError(
      'snp.vcek.subject',
      'signing certificate has the wrong subject',
      'CN=SEV-VCEK or CN=SEV-VLEK',
      `CN=${cn ?? '<none>'}`,
    );
  const key = publicKeyOf(cert, 'snp.vcek.key', 'the signing certificate');
  const curve = key.asymmetricKeyDetails?.namedCurve;
  ensure(
    key.asymmetricKeyType === 'ec' && curve === 'secp384r1',
    'snp.vcek.key',
    'signing certificate key is not ECDSA P-384',
    'ec secp384r1',
    `${key.asymmetricKeyType} ${curve ?? ''}`.trim(),
  );
  const productName = stringExtension(cert, AMD_OID.productName, 'productName');
  if (productName === undefined)
    throw new AttestationError(CHECK, `certificate lacks the productName extension (${AMD_OID.productName})`);
  const fmc = integerExtension(cert, AMD_OID.fmcSpl, 'fmcSPL');
  const spl = {
    ...(fmc !== undefined ? { fmc } : {}),
    bootloader: requiredInteger(cert, AMD_OID.blSpl, 'blSPL'),
    tee: requiredInteger(cert, AMD_OID.teeSpl, 'teeSPL'),
    snp: requiredInteger(cert, AMD_OID.snpSpl, 'snpSPL'),
    microcode: requiredInteger(cert, AMD_OID.ucodeSpl, 'ucodeSPL'),
  };
  const hwId = hwIdExtension(cert);
  const cspId = stringExtension(cert, AMD_OID.cspId, 'CSP_ID');
  if (kind === 'vcek' && !hwId) throw new AttestationError(CHECK, `VCEK lacks the hwID extension (${AMD_OID.hwId})`);
  if (kind === 'vlek' && !cspId)
    throw new AttestationError(CHECK, `VLEK lacks the CSP_ID extension (${AMD_OID.cspId})`);
  return { cert, kind, productName, spl, ...(hwId ? { hwId } : {}), ...(cspId !== undefined ? { cspId } : {}) };
}
