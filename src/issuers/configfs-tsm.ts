/**
 * Evidence from real hardware through the Linux configfs-tsm report interface
 * (/sys/kernel/config/tsm/report, Linux ≥ 6.7): write 64 bytes to `inblob`, read the report
 * from `outblob` (SNP: the 1184-byte report; TDX: the quote) and, on SNP, the certificate
 * table from `auxblob`. Writes reach the driver only on close and errors there are invisible,
 * so the `generation` counter is checked after every step: a concurrent writer on the same
 * entry makes the request fail instead of returning someone else's report.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { encodeSnpEvidence } from '../attestation/snp/evidence.js';
import { OID_SNP_EVIDENCE, OID_TDX_EVIDENCE } from '../attestation/tees.js';
import type { Evidence, Issuer } from './issuer.js';

export const TSM_REPORT_DIR = '/sys/kernel/config/tsm/report';

/** The file operations used, replaceable for tests (configfs semantics cannot be emulated by a plain directory). */
export interface TsmFs {
  mkdtemp(prefix: string): Promise<string>;
  readFile(path: string): Promise<Buffer>;
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  rmdir(path: string): Promise<void>;
  /** Synchronous: asked once, when the issuer is chosen at start-up. */
  exists(path: string): boolean;
}

// Asynchronous on purpose: reading `outblob` waits for the guest's request to the firmware (a
// TDX quote can take seconds), which must not stall the event loop inside a TLS handshake.
const nodeTsmFs: TsmFs = {
  mkdtemp: (prefix) => fs.promises.mkdtemp(prefix),
  readFile: (path) => fs.promises.readFile(path),
  writeFile: (path, data) => fs.promises.writeFile(path, data),
  rmdir: (path) => fs.promises.rmdir(path),
  exists: (path) => fs.existsSync(path),
};

/** How long a report may take, waiting for earlier ones included, before the request fails. */
export const TSM_REPORT_TIMEOUT_MS = 30_000;

class TsmError extends Error {
  constructor(message: string) {
    super(`configfs-tsm: ${message}`);
    this.name = 'TsmError';
  }
}

export interface RawTsmReport {
  provider: 'sev_guest' | 'tdx_guest';
  outblob: Buffer;
  auxblob?: Buffer;
}

export function tsmAvailable(base = TSM_REPORT_DIR, fsx: TsmFs = nodeTsmFs): boolean {
  return fsx.exists(base);
}

/** One report request on a fresh configfs entry. */
export async function requestTsmReport(
  reportData: Buffer,
  base = TSM_REPORT_DIR,
  fsx: TsmFs = nodeTsmFs,
): Promise<RawTsmReport> {
  if (reportData.length !== 64) throw new TsmError(`report data must be exactly 64 bytes, got ${reportData.length}`);
  let dir: string;
  try {
    dir = await fsx.mkdtemp(join(base, 'contrast-'));
  } catch (err) {
    throw new TsmError(
      `cannot create a report entry under ${base} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); is this a confidential VM with Linux ≥ 6.7 and configfs mounted, and are we root?`,
    );
  }
  try {
    const generation = async (): Promise<number> =>
      Number((await fsx.readFile(join(dir, 'generation'))).toString('utf8').trim());
    const provider = (await fsx.readFile(join(dir, 'provider'))).toString('utf8').trim();
    if (provider !== 'sev_guest' && provider !== 'tdx_guest')
      throw new TsmError(`unsupported provider ${JSON.stringify(provider)} (expected sev_guest or tdx_guest)`);
    let expected = await generation();
    await fsx.writeFile(join(dir, 'inblob'), reportData);
    expected += 1;
    const outblob = await fsx.readFile(join(dir, 'outblob'));
    if ((await generation()) !== expected)
      throw new TsmError('the report entry was modified concurrently (generation changed); retry');
    let auxblob: Buffer | undefined;
    if (provider === 'sev_guest') {
      auxblob = await fsx.readFile(join(dir, 'auxblob'));
      if ((await generation()) !== expected)
        throw new TsmError('the report entry was modified concurrently (generation changed); retry');
    }
    if (outblob.length === 0) throw new TsmError('the driver returned an empty report');
    return { provider, outblob, ...(auxblob ? { auxblob } : {}) };
  } finally {
    try {
      await fsx.rmdir(dir);
    } catch {
      /* best effort: configfs entries are removed with rmdir */
    }
  }
}

export class ConfigfsTsmIssuer implements Issuer {
  readonly name = 'configfs-tsm';
  /**
   * Requests run one at a time: the driver serves one at a time anyway, and a request that
   * hangs in the driver then holds one thread of libuv's pool, not all of them.
   */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly base = TSM_REPORT_DIR,
    private readonly fsx: TsmFs = nodeTsmFs,
    private readonly timeoutMs = TSM_REPORT_TIMEOUT_MS,
  ) {}

  async issue(reportData: Buffer): Promise<Evidence> {
    const request = this.queue.then(() => requestTsmReport(reportData, this.base, this.fsx));
    this.queue = request.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TsmError(`no report from the driver within ${this.timeoutMs / 1000} s`)),
        this.timeoutMs,
      );
    });
    let r: RawTsmReport;
    try {
      r = await Promise.race([request, timeout]);
    } finally {
      clearTimeout(timer);
    }
    if (r.provider === 'sev_guest') {
      return {
        oid: OID_SNP_EVIDENCE,
        value: encodeSnpEvidence({ report: r.outblob, ...(r.auxblob ? { certTable: r.auxblob } : {}) }),
      };
    }
    return { oid: OID_TDX_EVIDENCE, value: r.outblob };
  }
}
