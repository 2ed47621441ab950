import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { noReferenceValuesWarning } from '../../src/cli/evidence.js';
import { runCli } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { startLocalPcs } from './pcs-server.js';
import { VECTORS } from './vectors.js';

const tv = (rel: string) => join(VECTORS, rel);

/** Runs the CLI in-process, capturing stdout and stderr. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    process.exitCode = undefined;
  }
}

const snpArgs = [
  'evidence',
  'verify',
  '--platform',
  'snp',
  '--evidence',
  tv('amd/ms-tee-attestation-verification/genoa_attestation_report.bin'),
  '--vcek',
  tv('amd/ms-tee-attestation-verification/genoa_vcek.pem'),
  '--cert-chain',
  tv('amd/ms-tee-attestation-verification/genoa_ask.pem'),
  '--now',
  '2026-11-23T00:00:00Z',
];

const sprArgs = [
  'evidence',
  'verify',
  '--platform',
  'tdx',
  '--evidence',
  tv('intel/go-tdx-guest/tdx_prod_quote_SPR_E4.dat'),
  '--tcb-info',
  tv('intel/go-tdx-guest/sample_tcbInfo_response'),
  '--qe-identity',
  tv('intel/go-tdx-guest/sample_qeIdentity_response'),
  '--cert-chain',
  tv('intel/go-tdx-guest/tcbInfoIssuerChain.pem'),
  '--crl',
  tv('intel/go-tdx-guest/pckcrl'),
  tv('intel/go-tdx-guest/rootcrl.der'),
];

describe('kubectl contrast evidence verify', () => {
  let dir: string;
  before(() => {
    dir = tempDir('kc-evidence-');
  });
  after(() => removeDir(dir));

  it('prints one JSON object for a verified SNP report and exits 0', async () => {
    const r = await cli([...snpArgs, '--crl-policy', 'if-available', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.verified, true);
    assert.equal(out.platform, 'snp');
    assert.equal(out.product, 'Genoa');
    assert.equal(out.reportVersion, 3);
    assert.match(out.measurement, /^[0-9a-f]{96}$/);
    assert.match(out.reportData, /^[0-9a-f]{128}$/);
    assert.deepEqual(out.tcb.reported, { bootloader: 10, tee: 0, snp: 23, microcode: 84 });
    assert.equal(out.crlChecked, false);
    assert.equal(out.crl.checked, false);
    assert.match(out.crl.reason, /./);
    assert.equal(out.judgement, 'baseline (not debug, VMPL 0, no migration agent)');
    assert.equal(r.stderr, `${noReferenceValuesWarning('snp')}\n`);
    assert.match(
      r.stderr,
      /^Warning: no --reference-values: only the evidence's authenticity and the baseline .* were NOT compared/,
    );
  });

  it('refuses a report without a current CRL by default (--crl-policy require, as admission)', async () => {
    for (const extra of [[], ['--crl-policy', 'require']]) {
      const r = await cli([...snpArgs, ...extra, '-o', 'json']);
      assert.equal(r.code, 1);
      const out = JSON.parse(r.stdout);
      assert.equal(out.verified, false);
      assert.equal(out.error.check, 'snp.crl.missing');
    }
  });

  it('judges evidence without reference values by the baseline: a DEBUG guest is refused', async () => {
    const r = await cli([
      'evidence',
      'verify',
      '--platform',
      'snp',
      '--evidence',
      tv('amd/go-sev-guest/attestation.bin'),
      '--vcek',
      tv('amd/go-sev-guest/vcek.testcer'),
      '--cert-chain',
      tv('amd/go-sev-guest/ask_ark_milan.pem'),
      '--crl-policy',
      'if-available',
      '-o',
      'json',
    ]);
    assert.equal(r.code, 1, r.stdout);
    const out = JSON.parse(r.stdout);
    assert.equal(out.verified, false);
    assert.equal(out.error.check, 'snp.policy.debug');
  });

  it('reads the evidence as base64 or inside a JSON wrapper, and refuses an ambiguous wrapper', async () => {
    const quote = readFileSync(tv('intel/go-tdx-guest/tdx_prod_quote_SPR_E4.dat'));
    const files: Record<string, string> = {
      'quote.b64': quote.toString('base64').replace(/(.{76})/g, '$1\n'),
      'quote.json': JSON.stringify({ quote: quote.toString('base64url'), cc_eventlog: 'ignored' }),
      'quote-hex.json': JSON.stringify({ quote: quote.toString('hex') }),
    };
    for (const [name, content] of Object.entries(files)) {
      writeFileSync(join(dir, name), content);
      const args = sprArgs.map((a) => (a.endsWith('.dat') ? join(dir, name) : a));
      const r = await cli([
        ...args,
        '--now',
        '2023-06-20T00:00:00Z',
        '--accept-tcb-status',
        'NotSupported',
        '-o',
        'json',
      ]);
      assert.equal(r.code, 0, `${name}: ${r.stdout}`);
      assert.equal(JSON.parse(r.stdout).quoteVersion, 4);
    }
    const report = readFileSync(tv('amd/ms-tee-attestation-verification/genoa_attestation_report.bin'));
    writeFileSync(join(dir, 'report.json'), JSON.stringify({ attestation_report: report.toString('base64') }));
    const snp = await cli([
      ...snpArgs.map((a) => (a.endsWith('report.bin') ? join(dir, 'report.json') : a)),
      '--crl-policy',
      'if-available',
      '-o',
      'json',
    ]);
    assert.equal(snp.code, 0, snp.stdout);
    for (const [name, content, detail] of [
      [
        'two.json',
        JSON.stringify({ report: report.toString('hex'), attestation_report: report.toString('hex') }),
        /exactly one of the fields report, attestation_report/,
      ],
      [
        'object.json',
        JSON.stringify({ attestation_report: { measurement: 'ab' } }),
        /must be the evidence as base64, base64url or hex text/,
      ],
      [
        'mixed.b64',
        `${report.toString('base64').slice(0, 40).replace(/.$/, '+')}_${report.toString('base64').slice(41)}`,
        /neither hex, base64 nor a JSON object/,
      ],
    ] as const) {
      writeFileSync(join(dir, name), content);
      const r = await cli([
        ...snpArgs.map((a) => (a.endsWith('report.bin') ? join(dir, name) : a)),
        '--crl-policy',
        'if-available',
        '-o',
        'json',
      ]);
      assert.equal(r.code, 1, name);
      assert.equal(JSON.parse(r.stdout).error.check, 'evidence.format', name);
      assert.match(JSON.parse(r.stdout).error.message, detail, name);
    }
  });

  it('verifies a TDX quote from an offline collateral directory and requires the QE identity', async () => {
    const col = join(dir, 'intel');
    mkdirSync(join(col, 'tcb-info'), { recursive: true });
    const g = (f: string) => readFileSync(tv(`intel/go-tdx-guest/${f}`));
    writeFileSync(join(col, 'tcb-info', '50806f000000.json'), g('sample_tcbInfo_response'));
    writeFileSync(join(col, 'tcb-info', '50806f000000.issuer-chain.pem'), g('tcbInfoIssuerChain.pem'));
    writeFileSync(join(col, 'pck-crl-platform.der'), g('pckcrl'));
    writeFileSync(join(col, 'root-crl.der'), g('rootcrl.der'));
    const base = [
      'evidence',
      'verify',
      '--platform',
      'tdx',
      '--evidence',
      tv('intel/go-tdx-guest/tdx_prod_quote_SPR_E4.dat'),
      '--cache-dir',
      col,
      '--now',
      '2023-06-20T00:00:00Z',
      '--accept-tcb-status',
      'NotSupported',
      '-o',
      'json',
    ];
    let r = await cli(base);
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).error.check, 'tdx.qeidentity.missing');
    assert.match(JSON.parse(r.stdout).error.message, /--qe-identity.*--allow-missing-collateral/);
    writeFileSync(join(col, 'qe-identity.json'), g('sample_qeIdentity_response'));
    writeFileSync(join(col, 'qe-identity.issuer-chain.pem'), g('qeIdentityIssuerChain.pem'));
    r = await cli(base);
    assert.equal(r.code, 0, r.stdout);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.crlChecked, { root: true, pck: true });
    assert.equal(out.qeIdentityChecked, true);
    assert.equal(out.tcb.qe.status, 'UpToDate');
  });

  it('fetches TDX collateral from the Intel PCS that CONTRAST_PCS_URL / CONTRAST_INTEL_ROOT_CRL_URL name, as the Coordinator does', async () => {
    const pcs = await startLocalPcs();
    const saved = { pcs: process.env.CONTRAST_PCS_URL, root: process.env.CONTRAST_INTEL_ROOT_CRL_URL };
    const col = join(dir, 'intel-fetched');
    try {
      process.env.CONTRAST_PCS_URL = `${pcs.baseUrl}/`; // a trailing slash is tolerated
      process.env.CONTRAST_INTEL_ROOT_CRL_URL = pcs.rootCrlUrl;
      const r = await cli([
        'evidence',
        'verify',
        '--platform',
        'tdx',
        '--evidence',
        tv('intel/go-tdx-guest/tdx_prod_quote_SPR_E4.dat'),
        '--fetch',
        '--cache-dir',
        col,
        '--now',
        '2023-06-20T00:00:00Z',
        '--accept-tcb-status',
        'NotSupported',
        '-o',
        'json',
      ]);
      assert.equal(r.code, 0, r.stdout);
      const out = JSON.parse(r.stdout);
      assert.deepEqual(out.crlChecked, { root: true, pck: true });
      assert.equal(out.qeIdentityChecked, true);
      assert.deepEqual([...pcs.requests].sort(), [
        '/IntelSGXRootCA.der',
        '/sgx/certification/v4/pckcrl?ca=platform&encoding=der',
        '/tdx/certification/v4/qe/identity',
        '/tdx/certification/v4/tcb?fmspc=50806f000000',
      ]);
      assert.ok(readFileSync(join(col, 'root-crl.der')).length > 0, 'kept in --cache-dir');
    } finally {
      for (const [k, v] of [
        ['CONTRAST_PCS_URL', saved.pcs],
        ['CONTRAST_INTEL_ROOT_CRL_URL', saved.root],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await pcs.close();
    }
  });

  it('reports the failed check with expected and actual values as JSON and exits 1', async () => {
    const r = await cli([...snpArgs, '--host-data', 'ff'.repeat(32), '--crl-policy', 'if-available', '-o', 'json']);
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout);
    assert.equal(out.verified, false);
    assert.equal(out.error.check, 'snp.hostdata');
    assert.equal(out.error.expected, 'ff'.repeat(32));
    assert.match(out.measurement, /^[0-9a-f]{96}$/);
  });

  it('validates against reference values from a manifest and explains a debug policy on stderr', async () => {
    const manifest = join(dir, 'manifest.json');
    writeFileSync(
      manifest,
      JSON.stringify({
        Policies: {},
        ReferenceValues: { snp: [{ ProductName: 'Milan', TrustedMeasurement: '00'.repeat(48), MinimumTCB: {} }] },
      }),
    );
    const r = await cli([
      'evidence',
      'verify',
      '--platform',
      'snp',
      '--evidence',
      tv('amd/go-sev-guest/attestation.bin'),
      '--vcek',
      tv('amd/go-sev-guest/vcek.testcer'),
      '--cert-chain',
      tv('amd/go-sev-guest/ask_ark_milan.pem'),
      '--reference-values',
      manifest,
      '--crl-policy',
      'if-available',
    ]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /attestation check snp\.policy\.debug failed: .*expected DEBUG=0; actual DEBUG=1/);
  });

  it("verifies a TDX quote with collateral at the collateral's time and reports its TCB status", async () => {
    const r = await cli([
      ...sprArgs,
      '--now',
      '2023-06-20T00:00:00Z',
      '--accept-tcb-status',
      'UpToDate',
      'NotSupported',
      '-o',
      'json',
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.verified, true);
    assert.equal(out.platform, 'tdx');
    assert.equal(out.quoteVersion, 4);
    assert.equal(out.tcbStatus, 'NotSupported');
    assert.deepEqual(out.crlChecked, { root: true, pck: true });
  });

  it('rejects the same collateral today', async () => {
    const r = await cli([...sprArgs, '-o', 'json']);
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).error.check, 'tdx.crl.root');
  });

  it('rejects flags of the other platform and malformed values as usage errors (exit 2)', async () => {
    const r0 = await cli([...snpArgs, '--tcb-info', 'x']);
    assert.equal(r0.code, 2, r0.stderr);
    assert.equal((await cli([...snpArgs, '--host-data', 'abc'])).code, 2);
    assert.equal((await cli([...snpArgs, '--now', 'yesterday'])).code, 2);
    assert.equal((await cli(['evidence', 'verify', '--platform', 'snp'])).code, 2);
  });

  it('fails with exit 1 and a message naming the file when the evidence is missing', async () => {
    const r = await cli(['evidence', 'verify', '--platform', 'tdx', '--evidence', join(dir, 'nope.dat')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nope\.dat: cannot read evidence/);
  });

  it('runs as the installed executable', function () {
    this.timeout(300_000);
    const r = runCli([
      'evidence',
      'verify',
      '--platform',
      'tdx',
      '--evidence',
      tv('intel/go-tdx-guest/quote_v5_sample.dat'),
      '--allow-missing-collateral',
      '--crl-policy',
      'if-available',
      '-o',
      'json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.quoteVersion, 5);
    assert.equal(out.tcbStatus, 'NotEvaluated');
  });
});
