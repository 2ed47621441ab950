/**
 * A local Intel PCS (node:http on 127.0.0.1) serving the genuine collateral of the test vectors
 * at the PCS API v4 paths, with the issuer chains URL-encoded in the response headers as PCS
 * sends them. Tests can replace an answer (status, body, headers) and read which paths were
 * asked for.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TDX, read } from './vectors.js';

export interface PcsAnswer {
  status?: number;
  body?: Buffer;
  headers?: Record<string, string>;
}

export const RENEWED_TCB_CHAIN = () => read('intel/intel-pcs/tcb-signing-chain-2025.pem');

/** The genuine answers, keyed by path and query. */
export function genuineAnswers(): Map<string, PcsAnswer> {
  const chain = (pem: Buffer) => encodeURIComponent(pem.toString('latin1'));
  return new Map<string, PcsAnswer>([
    [
      '/tdx/certification/v4/tcb?fmspc=50806f000000',
      { body: TDX.tcbInfo(), headers: { 'TCB-Info-Issuer-Chain': chain(TDX.tcbChain()) } },
    ],
    // The 2026 TCB info of the v5 quote's platform, served (as PCS does since May 2025) with
    // the renewed TCB signing certificate.
    [
      '/tdx/certification/v4/tcb?fmspc=90c06f000000',
      { body: TDX.tcbInfoV5(), headers: { 'TCB-Info-Issuer-Chain': chain(RENEWED_TCB_CHAIN()) } },
    ],
    [
      '/tdx/certification/v4/qe/identity',
      { body: TDX.qeIdentity(), headers: { 'SGX-Enclave-Identity-Issuer-Chain': chain(TDX.qeChain()) } },
    ],
    [
      '/sgx/certification/v4/pckcrl?ca=platform&encoding=der',
      { body: TDX.pckCrl(), headers: { 'SGX-PCK-CRL-Issuer-Chain': chain(TDX.read('pckCrlIssuerChain.pem')) } },
    ],
    ['/IntelSGXRootCA.der', { body: TDX.rootCrl() }],
  ]);
}

export interface LocalPcs {
  readonly baseUrl: string;
  readonly rootCrlUrl: string;
  readonly answers: Map<string, PcsAnswer>;
  /** Every path asked for, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

export async function startLocalPcs(): Promise<LocalPcs> {
  const answers = genuineAnswers();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '';
    requests.push(path);
    const a = answers.get(path);
    if (!a) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(a.status ?? 200, { 'content-type': 'application/octet-stream', ...(a.headers ?? {}) });
    res.end(a.body ?? Buffer.alloc(0));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    baseUrl: base,
    rootCrlUrl: `${base}/IntelSGXRootCA.der`,
    answers,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
