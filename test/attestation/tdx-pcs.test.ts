/**
 * TDX collateral from Intel PCS, a cache directory and an offline directory: genuine quotes
 * verified with the genuine collateral a local PCS serves (no outside network), dates given as
 * the verification time and queue time from an injected clock.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CollateralUnavailableError } from '../../src/attestation/errors.js';
import {
  PCS_DEFAULTS,
  PcsClient,
  TdxCollateralDirectory,
  pckCrlPath,
  tcbInfoPath,
  QE_IDENTITY_PATH,
} from '../../src/attestation/tdx/pcs.js';
import { parseTdxQuote } from '../../src/attestation/tdx/quote.js';
import { verifyTdx, verifyTdxWithCollateral, type TdxFetchingOptions } from '../../src/attestation/tdx/verify.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { rejects } from './assertions.js';
import { FakeClock, settle } from './kds-fakes.js';
import { RENEWED_TCB_CHAIN, genuineAnswers, startLocalPcs, type LocalPcs, type PcsAnswer } from './pcs-server.js';
import { TDX, TDX_COLLATERAL_TIME } from './vectors.js';

const spr = TDX.sprQuote();
const sprBody = parseTdxQuote(spr).body;
const v5 = TDX.v5Quote();
const sprRef = { MrTd: sprBody.mrTd.toString('hex') };
// The SPR platform's SGX components are below every level Intel still lists (research/attestation.md).
const sprStatuses = ['UpToDate', 'NotSupported'] as const;
const V5_TIME = new Date('2026-02-15T00:00:00Z');
const TCB_PATH = tcbInfoPath('50806f000000');
const GENUINE = genuineAnswers();
const ALL_SPR_PATHS = [TCB_PATH, QE_IDENTITY_PATH, '/IntelSGXRootCA.der', pckCrlPath('platform')].sort();

describe('Intel PCS collateral for TDX', () => {
  let pcs: LocalPcs;
  let dir: string;
  let clock: FakeClock;
  const client = (over: Partial<ConstructorParameters<typeof PcsClient>[0]> = {}) =>
    new PcsClient({
      baseUrl: pcs.baseUrl,
      rootCrlUrl: pcs.rootCrlUrl,
      cache: new TdxCollateralDirectory(dir),
      minIntervalMs: 0,
      clock,
      ...over,
    });
  const opts = (source: TdxFetchingOptions['source'], over: TdxFetchingOptions = {}): TdxFetchingOptions => ({
    now: TDX_COLLATERAL_TIME,
    crlPolicy: 'require',
    acceptedTcbStatuses: sprStatuses,
    ...(source ? { source } : {}),
    ...over,
  });

  beforeEach(async () => {
    pcs = await startLocalPcs();
    dir = tempDir('kc-pcs-');
    clock = new FakeClock();
  });
  afterEach(async () => {
    await pcs.close();
    removeDir(dir);
  });

  it('fetches TCB info, QE identity and both CRLs once, keeps them, and verifies a genuine quote with them', async () => {
    const source = client();
    const r = await verifyTdxWithCollateral({ quote: spr }, [sprRef], { reportData: sprBody.reportData }, opts(source));
    assert.equal(r.tcbStatus, 'NotSupported');
    assert.equal(r.tcb?.qe?.status, 'UpToDate');
    assert.equal(r.qeIdentityChecked, true);
    assert.deepEqual(r.crlChecked, { root: true, pck: true });
    assert.equal(r.referenceValueIndex, 0);
    assert.deepEqual([...pcs.requests].sort(), ALL_SPR_PATHS);
    // Kept: the same client and a new one over the same directory ask PCS nothing more.
    await verifyTdxWithCollateral({ quote: spr }, [sprRef], {}, opts(source));
    await verifyTdxWithCollateral({ quote: spr }, [sprRef], {}, opts(client()));
    assert.equal(pcs.requests.length, 4);
    // The directory holds exactly what PCS sent, in the documented layout.
    assert.ok(readFileSync(join(dir, 'tcb-info', '50806f000000.json')).equals(TDX.tcbInfo()));
    assert.equal(
      readFileSync(join(dir, 'tcb-info', '50806f000000.issuer-chain.pem'), 'latin1'),
      TDX.tcbChain().toString('latin1'),
    );
    assert.ok(readFileSync(join(dir, 'qe-identity.json')).equals(TDX.qeIdentity()));
    assert.ok(readFileSync(join(dir, 'pck-crl-platform.der')).equals(TDX.pckCrl()));
    assert.ok(readFileSync(join(dir, 'root-crl.der')).equals(TDX.rootCrl()));
  });

  it('verifies offline from a collateral directory filled by hand, and names what is missing', async () => {
    const fill = (rel: string, data: Buffer) => {
      mkdirSync(join(dir, rel, '..'), { recursive: true });
      writeFileSync(join(dir, rel), data);
    };
    const offline = new TdxCollateralDirectory(dir);
    let err = await rejects(() => verifyTdxWithCollateral({ quote: spr }, null, {}, opts(offline)), 'tdx.crl.missing');
    assert.match(err.detail, /root CA CRL/);
    fill('root-crl.der', TDX.rootCrl());
    err = await rejects(() => verifyTdxWithCollateral({ quote: spr }, null, {}, opts(offline)), 'tdx.crl.missing');
    assert.match(err.detail, /PCK CA/);
    // A CRL in PEM (what PCS sends without encoding=der) is read as well.
    fill(
      'pck-crl-platform.der',
      Buffer.from(
        `-----BEGIN X509 CRL-----\n${TDX.pckCrl()
          .toString('base64')
          .replace(/(.{64})/g, '$1\n')}\n-----END X509 CRL-----\n`,
      ),
    );
    err = await rejects(() => verifyTdxWithCollateral({ quote: spr }, null, {}, opts(offline)), 'tdx.tcbinfo.missing');
    assert.match(err.detail, /FMSPC 50806f000000.*--tcb-info.*--allow-missing-collateral/);
    fill('tcb-info/50806f000000.json', TDX.tcbInfo());
    err = await rejects(() => verifyTdxWithCollateral({ quote: spr }, null, {}, opts(offline)), 'tdx.pcs');
    assert.match(err.detail, /has no issuer chain next to it/);
    fill('tcb-info/50806f000000.issuer-chain.pem', TDX.tcbChain());
    err = await rejects(
      () => verifyTdxWithCollateral({ quote: spr }, null, {}, opts(offline)),
      'tdx.qeidentity.missing',
    );
    assert.match(err.detail, /--qe-identity.*--allow-missing-collateral/);
    fill('qe-identity.json', TDX.qeIdentity());
    fill('qe-identity.issuer-chain.pem', TDX.qeChain());
    const r = await verifyTdxWithCollateral({ quote: spr }, null, {}, opts(offline));
    assert.deepEqual(r.crlChecked, { root: true, pck: true });
    assert.equal(pcs.requests.length, 0);
  });

  it('asks for nothing when the quote fails a check that needs no collateral', async () => {
    const source = client();
    await rejects(
      () => verifyTdxWithCollateral({ quote: spr }, [sprRef], { reportData: Buffer.alloc(64, 1) }, opts(source)),
      'tdx.reportdata',
    );
    await rejects(
      () => verifyTdxWithCollateral({ quote: spr }, [sprRef], { mrConfigId: Buffer.alloc(32, 1) }, opts(source)),
      'tdx.mrconfigid',
    );
    const bad = Buffer.from(spr);
    bad[0x36 + 0x88]! ^= 1; // MR_TD
    await rejects(() => verifyTdxWithCollateral({ quote: bad }, [sprRef], {}, opts(source)), 'tdx.quote.signature');
    assert.deepEqual(pcs.requests, []);
  });

  it('refuses every one-byte flip of a genuine quote, with all collateral at hand and without asking PCS', async function () {
    this.timeout(120_000);
    const source = client();
    await verifyTdxWithCollateral({ quote: spr }, [sprRef], {}, opts(source)); // control, and fills the cache
    const asked = pcs.requests.length;
    const used = spr.length - parseTdxQuote(spr).trailingBytes;
    for (let off = 0; off < used; off++) {
      const bad = Buffer.from(spr);
      bad[off]! ^= 0x01;
      await rejects(() => verifyTdxWithCollateral({ quote: bad }, [sprRef], {}, opts(source)));
    }
    assert.equal(pcs.requests.length, asked);
  });

  it('refreshes collateral whose nextUpdate is near, at most hourly, and keeps a current copy when PCS fails', async () => {
    const source = client();
    await verifyTdxWithCollateral({ quote: spr }, null, {}, opts(source));
    assert.equal(pcs.requests.length, 4);
    // 2023-07-07T12:00: the QE identity (nextUpdate 07-08 07:24) and the PCK CRL (07-08 07:27)
    // are within PCS_DEFAULTS.refreshBeforeMs of it; the TCB info (07-18) and root CRL (2024) are not.
    const near = new Date('2023-07-07T12:00:00Z');
    assert.ok(PCS_DEFAULTS.refreshBeforeMs === 24 * 3600_000);
    // Right after a fetch there is no refresh, however near nextUpdate is.
    await verifyTdxWithCollateral({ quote: spr }, null, {}, opts(source, { now: near }));
    assert.equal(pcs.requests.length, 4);
    await clock.advance(PCS_DEFAULTS.minRefreshIntervalMs);
    await verifyTdxWithCollateral({ quote: spr }, null, {}, opts(source, { now: near }));
    assert.deepEqual(pcs.requests.slice(4).sort(), [QE_IDENTITY_PATH, pckCrlPath('platform')].sort());
    await verifyTdxWithCollateral({ quote: spr }, null, {}, opts(source, { now: near }));
    assert.equal(pcs.requests.length, 6, 'no second refresh within minRefreshIntervalMs');
    // An hour later PCS is down: the refresh fails, the kept copies are still current and used.
    await clock.advance(PCS_DEFAULTS.minRefreshIntervalMs);
    pcs.answers.set(QE_IDENTITY_PATH, { status: 503 });
    const r = await verifyTdxWithCollateral({ quote: spr }, null, {}, opts(source, { now: near }));
    assert.equal(r.qeIdentityChecked, true);
    assert.equal(pcs.requests.length, 8);
  });

  it('reports PCS trouble past nextUpdate as "retry later", and expired collateral PCS still serves as expired', async () => {
    const source = client();
    await verifyTdxWithCollateral({ quote: spr }, null, {}, opts(source));
    const late = new Date('2023-07-08T07:26:00Z'); // past the QE identity's nextUpdate (07:24:59), not yet the PCK CRL's (07:27:52)
    await clock.advance(PCS_DEFAULTS.minRefreshIntervalMs);
    // PCS serves the same (genuine, now expired) answers: a verdict on the dates.
    await rejects(
      () => verifyTdxWithCollateral({ quote: spr }, null, {}, opts(source, { now: late })),
      'tdx.qeidentity.validity',
    );
    await clock.advance(PCS_DEFAULTS.minRefreshIntervalMs);
    pcs.answers.set(QE_IDENTITY_PATH, { status: 503 });
    const err = await rejects(
      () => verifyTdxWithCollateral({ quote: spr }, null, {}, opts(source, { now: late })),
      'tdx.pcs',
    );
    assert.ok(err instanceof CollateralUnavailableError);
    assert.match(err.detail, /^Intel PCS answered 503 for the QE identity http/);
    // The same request is not sent again during the backoff.
    const again = await rejects(
      () => verifyTdxWithCollateral({ quote: spr }, null, {}, opts(source, { now: late })),
      'tdx.pcs.backoff',
    );
    assert.ok(again instanceof CollateralUnavailableError);
  });

  it('checks every answer before keeping it', async () => {
    const tampered = Buffer.from(
      TDX.tcbInfo().toString('latin1').replace('"tcbEvaluationDataNumber":15', '"tcbEvaluationDataNumber":16'),
      'latin1',
    );
    const cases: [string, PcsAnswer, string, RegExp][] = [
      [
        TCB_PATH,
        { body: tampered, headers: { 'TCB-Info-Issuer-Chain': encodeURIComponent(TDX.tcbChain().toString()) } },
        'tdx.pcs.invalid',
        /the tcbInfo signature does not verify/,
      ],
      [TCB_PATH, { body: TDX.tcbInfo() }, 'tdx.pcs.invalid', /has no TCB-Info-Issuer-Chain header/],
      [
        TCB_PATH,
        {
          body: TDX.tcbInfoV5(),
          headers: { 'TCB-Info-Issuer-Chain': encodeURIComponent(RENEWED_TCB_CHAIN().toString()) },
        },
        'tdx.pcs.invalid',
        /for FMSPC 90c06f000000, not 50806f000000/,
      ],
      [
        TCB_PATH,
        {
          body: TDX.tcbInfo(),
          headers: { 'TCB-Info-Issuer-Chain': encodeURIComponent(TDX.read('pckCrlIssuerChain.pem').toString()) },
        },
        'tdx.pcs.invalid',
        /not Intel's TCB signing certificate/,
      ],
      [
        pckCrlPath('platform'),
        {
          body: TDX.rootCrl(),
          headers: { 'SGX-PCK-CRL-Issuer-Chain': encodeURIComponent(TDX.read('pckCrlIssuerChain.pem').toString()) },
        },
        'tdx.pcs.invalid',
        /CRL issuer does not match/,
      ],
      ['/IntelSGXRootCA.der', { body: TDX.pckCrl() }, 'tdx.pcs.invalid', /CRL issuer does not match/],
      [TCB_PATH, { body: Buffer.alloc(PCS_DEFAULTS.maxJsonBytes + 1, 0x20) }, 'tdx.pcs.size', /at most 262144 bytes/],
    ];
    for (const [path, answer, check, detail] of cases) {
      const before = GENUINE.get(path)!;
      pcs.answers.set(path, answer);
      const err = await rejects(() => verifyTdxWithCollateral({ quote: spr }, null, {}, opts(client())), check);
      assert.match(err.detail, detail);
      assert.ok(err instanceof CollateralUnavailableError, path);
      pcs.answers.set(path, before);
      removeDir(dir);
    }
    // A 404 is no collateral: the verdict names what is missing.
    pcs.answers.delete(TCB_PATH);
    await rejects(() => verifyTdxWithCollateral({ quote: spr }, null, {}, opts(client())), 'tdx.tcbinfo.missing');
    assert.ok(!existsSync(join(dir, 'tcb-info', '50806f000000.json')));
  });

  it('goes on without a CRL PCS cannot deliver only under crlPolicy if-available', async () => {
    pcs.answers.set('/IntelSGXRootCA.der', { status: 503 });
    const open = await verifyTdxWithCollateral({ quote: spr }, null, {}, opts(client(), { crlPolicy: 'if-available' }));
    assert.deepEqual(open.crlChecked, { root: false, pck: true });
    const err = await rejects(
      () => verifyTdxWithCollateral({ quote: spr }, null, {}, opts(client({ failureBackoffMs: 0 }))),
      'tdx.pcs',
    );
    assert.ok(err instanceof CollateralUnavailableError);
    await rejects(
      () => verifyTdx({ quote: spr }, null, {}, { ...opts(undefined), crlPolicy: 'require' }),
      'tdx.crl.missing',
    );
  });

  it('verifies the 2026 TCB info with the TCB signing certificate Intel renewed in 2025, and not with the expired one', async () => {
    // No CRLs of 2026 in the vectors: PCS has none to serve here, and the policy lets that pass.
    pcs.answers.delete('/IntelSGXRootCA.der');
    pcs.answers.delete(pckCrlPath('platform'));
    // Nor a QE identity of 2026 (the 2023 one's signing certificate expired in May 2025).
    pcs.answers.delete(QE_IDENTITY_PATH);
    const source = client();
    const r = await verifyTdxWithCollateral(
      { quote: v5 },
      null,
      {},
      { now: V5_TIME, source, allowMissingCollateral: true, crlPolicy: 'if-available' },
    );
    assert.deepEqual(r.crlChecked, { root: false, pck: false });
    assert.equal(r.tcbStatus, 'UpToDate');
    assert.equal(r.tcb?.module?.status, 'UpToDate');
    // The QE identity is required unless inspecting.
    await rejects(
      () => verifyTdxWithCollateral({ quote: v5 }, null, {}, { now: V5_TIME, source, crlPolicy: 'if-available' }),
      'tdx.qeidentity.missing',
    );
    await rejects(
      () =>
        verifyTdx(
          { quote: v5 },
          null,
          {},
          {
            now: V5_TIME,
            allowMissingCollateral: true,
            collateral: {
              tcbInfo: TDX.tcbInfoV5(),
              tcbInfoIssuerChain: RENEWED_TCB_CHAIN(),
              qeIdentity: TDX.qeIdentity(),
              qeIdentityIssuerChain: TDX.qeChain(),
            },
          },
        ),
      'tdx.qeidentity.signer',
    );
    const col = { tcbInfo: TDX.tcbInfoV5(), tcbInfoIssuerChain: TDX.tcbChain() };
    const expired = await rejects(
      () => verifyTdx({ quote: v5 }, null, {}, { now: V5_TIME, collateral: col, allowMissingCollateral: true }),
      'tdx.tcbinfo.signer',
    );
    assert.match(expired.detail, /the TCB signing certificate is not valid at 2026-02-15/);
    // The renewed certificate is not valid before May 2025.
    await rejects(
      () =>
        verifyTdx(
          { quote: spr },
          null,
          {},
          {
            now: TDX_COLLATERAL_TIME,
            acceptedTcbStatuses: sprStatuses,
            allowMissingCollateral: true,
            collateral: { tcbInfo: TDX.tcbInfo(), tcbInfoIssuerChain: RENEWED_TCB_CHAIN() },
          },
        ),
      'tdx.tcbinfo.signer',
    );
  });
});

describe('Intel PCS client queues', () => {
  it('keeps at most maxQueued distinct requests waiting per queue, shares identical ones, and spaces them', async () => {
    const clock = new FakeClock();
    const started: { url: string; at: number }[] = [];
    const release: (() => void)[] = [];
    const fetch = async (url: string | URL | Request) => {
      started.push({ url: String(url), at: clock.now() });
      await new Promise<void>((r) => release.push(r));
      return new Response(null, { status: 404 });
    };
    const c = new PcsClient({ baseUrl: 'http://pcs.test', fetch: fetch as typeof globalThis.fetch, clock });
    const fmspc = (i: number) => i.toString(16).padStart(12, '0');
    const now = TDX_COLLATERAL_TIME;
    const waits = Array.from({ length: 1 + PCS_DEFAULTS.maxQueued }, (_, i) => c.tcbInfo(fmspc(i), now));
    const shared = c.tcbInfo(fmspc(1), now);
    await settle();
    const busy = await rejects(() => c.tcbInfo(fmspc(99), now), 'tdx.pcs.busy');
    assert.ok(busy instanceof CollateralUnavailableError);
    // Other queues are not blocked by the TCB info queue.
    const qe = c.qeIdentity(now);
    await settle();
    assert.deepEqual(
      started.map((s) => s.url),
      [`http://pcs.test${tcbInfoPath(fmspc(0))}`, `http://pcs.test${QE_IDENTITY_PATH}`],
    );
    for (let i = 0; i < 20; i++) {
      release.splice(0).forEach((r) => r());
      await clock.run();
    }
    assert.deepEqual(await Promise.all([...waits, shared, qe]), Array(waits.length + 2).fill(undefined));
    const tcbStarts = started.filter((s) => s.url.includes('/tcb?')).map((s) => s.at);
    assert.equal(tcbStarts.length, 1 + PCS_DEFAULTS.maxQueued, 'the shared request was sent once');
    for (let i = 1; i < tcbStarts.length; i++)
      assert.ok(tcbStarts[i]! - tcbStarts[i - 1]! >= PCS_DEFAULTS.minIntervalMs);
  });

  it('refuses something that is not an FMSPC before building a URL', async () => {
    await rejects(
      () =>
        new PcsClient({ fetch: (() => assert.fail('no request')) as never }).tcbInfo(
          '../qe/identity',
          TDX_COLLATERAL_TIME,
        ),
      'tdx.pcs',
    );
    assert.throws(() => new TdxCollateralDirectory('/x').tcbInfoFiles('50806F000000/..'), /not an FMSPC/);
  });
});
