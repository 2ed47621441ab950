import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ConfigfsTsmIssuer, requestTsmReport, type TsmFs } from '../../src/issuers/configfs-tsm.js';
import { decode } from '../../src/util/protobuf.js';
import { verifyEvidence } from '../../src/attestation/dispatch.js';
import { SimulatedIssuer, loadOrCreateSimRoot } from '../../src/issuers/simulated.js';
import { loadSimRootPublicKey, SIMULATED_MEASUREMENT } from '../../src/attestation/simulated.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { OID_SNP_EVIDENCE, OID_TDX_EVIDENCE } from '../../src/attestation/tees.js';
import { SnpEvidenceSchema } from '../../src/attestation/snp/evidence.js';
import { issuerFor } from '../../src/issuers/index.js';
import { SimDeviceIssuer } from '../../src/issuers/sim-device.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * An in-memory imitation of one configfs-tsm report entry (kernel semantics per the ABI doc).
 * `outblob`: when given, reading the report waits for it (the driver's request to the firmware).
 */
function fakeTsm(
  provider: 'sev_guest' | 'tdx_guest',
  opts: { interfere?: boolean; outblob?: () => Promise<void> } = {},
) {
  const entries = new Map<string, { generation: number; inblob?: Buffer }>();
  let removed = 0;
  let created = 0;
  const fs: TsmFs = {
    mkdtemp: async (prefix) => {
      const d = `${prefix}${created++}`;
      entries.set(d, { generation: 0 });
      return d;
    },
    exists: () => true,
    rmdir: async (p) => {
      entries.delete(p);
      removed++;
    },
    writeFile: async (path, data) => {
      const dir = path.slice(0, path.lastIndexOf('/'));
      const e = entries.get(dir)!;
      if (path.endsWith('/inblob')) {
        e.inblob = Buffer.from(data as Uint8Array);
        e.generation++;
      }
    },
    readFile: async (path) => {
      const dir = path.slice(0, path.lastIndexOf('/'));
      const e = entries.get(dir)!;
      const name = path.slice(path.lastIndexOf('/') + 1);
      if (name === 'provider') return Buffer.from(`${provider}\n`);
      if (name === 'generation') return Buffer.from(`${e.generation}\n`);
      if (name === 'outblob') {
        await opts.outblob?.();
        if (opts.interfere) e.generation++; // another writer raced us
        return Buffer.concat([Buffer.from('REPORT:'), e.inblob!]);
      }
      if (name === 'auxblob') return Buffer.from('certtable');
      throw new Error(`unexpected read ${path}`);
    },
  };
  return { fs, removed: () => removed, created: () => created, open: () => entries.size };
}

/** Let `count` driver requests through, one after the other, as each one comes. */
async function released(gates: (() => void)[], count: number): Promise<void> {
  for (let done = 0, spins = 0; done < count && spins < 1000; spins++) {
    const gate = gates.shift();
    if (gate) {
      gate();
      done++;
    } else await new Promise((r) => setImmediate(r));
  }
}

describe('evidence issuers and the dispatcher', () => {
  it('configfs-tsm: SNP report with certificate table, entry removed afterwards', async () => {
    const t = fakeTsm('sev_guest');
    const rd = randomBytes(64);
    const ev = await new ConfigfsTsmIssuer('/tsm', t.fs).issue(rd);
    assert.equal(ev.oid, OID_SNP_EVIDENCE);
    const d = decode<{ report: Buffer; certTable: Buffer }>(SnpEvidenceSchema, ev.value);
    assert.deepEqual(d.report, Buffer.concat([Buffer.from('REPORT:'), rd]));
    assert.equal(d.certTable.toString(), 'certtable');
    assert.equal(t.removed(), 1);
  });
  it('configfs-tsm: TDX quote', async () => {
    const ev = await new ConfigfsTsmIssuer('/tsm', fakeTsm('tdx_guest').fs).issue(randomBytes(64));
    assert.equal(ev.oid, OID_TDX_EVIDENCE);
  });
  it('configfs-tsm: detects a concurrent writer and rejects wrong report data sizes', async () => {
    const t = fakeTsm('sev_guest', { interfere: true });
    await assert.rejects(requestTsmReport(randomBytes(64), '/tsm', t.fs), /modified concurrently/);
    assert.equal(t.removed(), 1);
    await assert.rejects(requestTsmReport(randomBytes(32), '/tsm', t.fs), /exactly 64 bytes/);
  });
  it('configfs-tsm: the event loop runs while the driver works; requests go one at a time', async () => {
    const gates: (() => void)[] = [];
    const t = fakeTsm('tdx_guest', { outblob: () => new Promise<void>((r) => gates.push(r)) });
    const issuer = new ConfigfsTsmIssuer('/tsm', t.fs);
    const rd = [randomBytes(64), randomBytes(64)];
    const first = issuer.issue(rd[0]!);
    const second = issuer.issue(rd[1]!);
    let ticks = 0;
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(() => r(ticks++)));
    assert.equal(ticks, 5);
    assert.equal(gates.length, 1, 'the second request waits for the first');
    assert.equal(t.created(), 1);
    gates.shift()!();
    assert.deepEqual((await first).value.subarray(7), rd[0]);
    await released(gates, 1);
    assert.deepEqual((await second).value.subarray(7), rd[1]);
    assert.equal(t.open(), 0);
  });
  it('configfs-tsm: a report that never comes fails in bounded time, and so do the ones queued behind it', async () => {
    const gates: (() => void)[] = [];
    const t = fakeTsm('sev_guest', { outblob: () => new Promise<void>((r) => gates.push(r)) });
    const issuer = new ConfigfsTsmIssuer('/tsm', t.fs, 50);
    const started = Date.now();
    const results = await Promise.allSettled([issuer.issue(randomBytes(64)), issuer.issue(randomBytes(64))]);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.match(String((r as PromiseRejectedResult).reason), /no report from the driver within 0\.05 s/);
    }
    assert.ok(Date.now() - started < 5000);
    // The driver answers at last: the queue moves on and a new request succeeds.
    const next = issuer.issue(randomBytes(64));
    await released(gates, 3);
    assert.equal((await next).oid, OID_SNP_EVIDENCE);
  });

  describe('issuerFor: which issuer a machine gets', () => {
    let dir: string;
    let saved: string | undefined;
    let tsm: string;
    let device: string;
    const none = () => join(dir, 'absent');
    beforeEach(() => {
      dir = tempDir('kc-issuers-');
      saved = process.env.CONTRAST_INSECURE_SIM_DIR;
      process.env.CONTRAST_INSECURE_SIM_DIR = join(dir, 'sim');
      tsm = join(dir, 'tsm');
      mkdirSync(tsm);
      device = join(dir, 'device');
      mkdirSync(device);
      writeFileSync(join(device, 'tsm.sock'), ''); // presence is all the selection looks at
    });
    afterEach(() => {
      if (saved === undefined) delete process.env.CONTRAST_INSECURE_SIM_DIR;
      else process.env.CONTRAST_INSECURE_SIM_DIR = saved;
      removeDir(dir);
    });
    const hash = 'ab'.repeat(32);

    it('auto: configfs-tsm first, else the simulated device, else an error naming both', () => {
      const both = issuerFor({ issuer: 'auto', tsmReportDir: tsm, simDeviceDir: device });
      assert.ok(both instanceof ConfigfsTsmIssuer);
      const sim = issuerFor({ issuer: 'AUTO', tsmReportDir: none(), simDeviceDir: device });
      assert.ok(sim instanceof SimDeviceIssuer);
      assert.equal((sim as SimDeviceIssuer).dir, device);
      assert.throws(
        () => issuerFor({ issuer: 'auto', tsmReportDir: none(), simDeviceDir: none(), simPolicyHash: hash }),
        (e: Error) =>
          e.message.startsWith(`no attestation device: neither ${none()} (configfs-tsm`) &&
          e.message.includes(`nor ${join(none(), 'tsm.sock')} (the simulated device`),
      );
    });

    it('insecure-sim: the device when mounted (a configured hash is ignored, with a note), else the local root', () => {
      const notes: string[] = [];
      const warn = (m: string) => notes.push(m);
      const onDevice = issuerFor({ issuer: 'insecure-sim', simDeviceDir: device, warn });
      assert.ok(onDevice instanceof SimDeviceIssuer);
      assert.deepEqual(notes, []);
      assert.ok(
        issuerFor({ issuer: 'insecure-sim', simDeviceDir: device, simPolicyHash: hash, warn }) instanceof
          SimDeviceIssuer,
      );
      assert.equal(notes.length, 1);
      assert.match(notes[0]!, /^ignoring the simulated policy hash .*reports the host data the node registered/);
      const local = issuerFor({ issuer: 'insecure-sim', simDeviceDir: none(), simPolicyHash: hash, warn });
      assert.ok(local instanceof SimulatedIssuer);
      assert.deepEqual(local.hostData, Buffer.from(hash, 'hex'));
      assert.throws(
        () => issuerFor({ issuer: 'insecure-sim', simDeviceDir: none() }),
        /needs the node's simulated device \(.*absent\/tsm\.sock, .*\) or, outside such a pod, the policy hash/,
      );
      assert.throws(
        () => issuerFor({ issuer: 'insecure-sim', simDeviceDir: none(), simPolicyHash: 'AB'.repeat(32) }),
        /64 lower-case hex/,
      );
    });

    it('configfs-tsm only where its directory is; unknown names are refused', () => {
      assert.ok(issuerFor({ issuer: 'configfs-tsm', tsmReportDir: tsm }) instanceof ConfigfsTsmIssuer);
      assert.throws(
        () => issuerFor({ issuer: 'configfs-tsm', tsmReportDir: none(), simDeviceDir: device }),
        /does not exist: not a confidential VM with configfs-tsm/,
      );
      assert.throws(
        () => issuerFor({ issuer: 'sev' }),
        /unknown attestation platform "sev" \(expected auto, configfs-tsm or insecure-sim\)/,
      );
    });
  });

  describe('dispatch', () => {
    let dir: string;
    before(() => {
      dir = tempDir('kc-sim-');
    });
    after(() => removeDir(dir));
    const refs = { insecure: [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }] };
    it('accepts simulated evidence only when the manifest names the insecure platform', async () => {
      const rd = randomBytes(64);
      const ev = await new SimulatedIssuer(loadOrCreateSimRoot(dir), Buffer.alloc(32, 7)).issue(rd);
      let warned = 0;
      const opts = {
        simRoot: loadSimRootPublicKey(dir),
        onSimulated: () => {
          warned++;
        },
      };
      const ok = await verifyEvidence(ev.oid, ev.value, refs, rd, opts);
      assert.deepEqual(ok.hostData, Buffer.alloc(32, 7));
      assert.equal(warned, 1);
      await assert.rejects(
        verifyEvidence(ev.oid, ev.value, { snp: [{ TrustedMeasurement: '' }] }, rd, opts),
        /does not list the insecure platform/,
      );
    });
    it('refuses platforms the manifest has no reference values for, and unknown evidence', async () => {
      await assert.rejects(
        verifyEvidence(OID_SNP_EVIDENCE, Buffer.alloc(10), refs, randomBytes(64)),
        /no SNP reference values/,
      );
      await assert.rejects(
        verifyEvidence(OID_TDX_EVIDENCE, Buffer.alloc(10), refs, randomBytes(64)),
        /no TDX reference values/,
      );
      await assert.rejects(verifyEvidence('1.2.3', Buffer.alloc(10), refs, randomBytes(64)), /unknown evidence type/);
    });
  });
});

describe('dispatch with genuine SEV-SNP evidence in our extension format', () => {
  it('verifies a real report end to end and reports its HOST_DATA; a wrong binding fails', async () => {
    const { read, SNP_NOW } = await import('../attestation/vectors.js');
    const { parseSnpReport } = await import('../../src/attestation/index.js');
    const { encode } = await import('../../src/util/protobuf.js');
    const reportBytes = read('amd/ms-tee-attestation-verification/genoa_attestation_report.bin');
    const report = parseSnpReport(reportBytes);
    const value = encode(SnpEvidenceSchema, { report: reportBytes, certTable: Buffer.alloc(0) });
    const refs = {
      snp: [
        {
          ProductName: 'Genoa',
          TrustedMeasurement: Buffer.from(report.measurement).toString('hex'),
          MinimumTCB: { BootloaderVersion: 0, TEEVersion: 0, SNPVersion: 0, MicrocodeVersion: 0 },
        },
      ],
    };
    const snp = {
      now: SNP_NOW,
      vcek: read('amd/ms-tee-attestation-verification/genoa_vcek.pem'),
      certChain: Buffer.concat([
        read('amd/ms-tee-attestation-verification/genoa_ask.pem'),
        read('amd/ms-tee-attestation-verification/pinned_genoa_ark.pem'),
      ]),
    };
    const result = await verifyEvidence(OID_SNP_EVIDENCE, value, refs, Buffer.from(report.reportData), { snp });
    assert.equal(result.tee, 'snp');
    assert.deepEqual(result.hostData, Buffer.from(report.hostData));
    await assert.rejects(verifyEvidence(OID_SNP_EVIDENCE, value, refs, randomBytes(64), { snp }), /snp\.reportdata/);
  });
});
