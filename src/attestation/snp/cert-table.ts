import { AttestationError } from '../errors.js';

/**
 * The certificate table the host returns with an extended report (configfs-tsm `auxblob`):
 * entries of {GUID, u32 offset, u32 length} ending in an all-zero entry, offsets relative to
 * the table start. Host-controlled, so it only ever supplies candidates that are verified
 * against the pinned ARK later.
 */
export const CERT_TABLE_GUID = {
  vcek: '63da758d-e664-4564-adc5-f4b93be8accd',
  vlek: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
  ask: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
  ark: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
} as const;

export type CertTable = ReadonlyMap<string, Buffer>;

const ENTRY_SIZE = 24;

function guidString(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function fail(detail: string, expected?: string, actual?: string): never {
  throw new AttestationError('snp.certtable.parse', detail, expected, actual);
}

export function parseCertTable(data: Uint8Array): CertTable {
  const b = Buffer.from(data);
  const table = new Map<string, Buffer>();
  for (let pos = 0; ; pos += ENTRY_SIZE) {
    if (pos + ENTRY_SIZE > b.length) fail('certificate table has no terminating all-zero entry');
    const guid = b.subarray(pos, pos + 16);
    const offset = b.readUInt32LE(pos + 16);
    const length = b.readUInt32LE(pos + 20);
    if (guid.every((x) => x === 0) && offset === 0 && length === 0) break;
    const id = guidString(guid);
    if (table.has(id)) fail(`certificate table lists ${id} twice`);
    if (offset + length > b.length)
      fail(`certificate table entry ${id} points outside the table`, `end <= ${b.length}`, `end ${offset + length}`);
    table.set(id, b.subarray(offset, offset + length));
  }
  return table;
}
