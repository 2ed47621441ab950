/**
 * A real Kubernetes API server for tests: Debian's etcd plus the kube-apiserver that
 * scripts/setup.sh builds into tools/bin (pinned in tools/versions.env), both on loopback with
 * random ports. The test generates the serving certificate, the service-account signing key and
 * a static token file with two users:
 *   admin  (group system:masters)  — context "admin" in the written kubeconfig
 *   alice  (no groups, RBAC only)  — context "alice"
 * Authorization is RBAC, so Roles and RoleBindings are enforced. There is no kubelet,
 * controller manager or scheduler: objects are stored and validated, pods never run.
 *
 * One server is shared by all test files of a mocha run; it is stopped by a root `after` hook
 * and, as a fallback, when the process exits.
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { request } from 'node:https';
import { join } from 'node:path';
import { generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { REPO_ROOT } from './cli.js';
import { removeDir, tempDir } from './tmp.js';

x509.cryptoProvider.set(webcrypto as any);

export interface ApiServer {
  url: string;
  dir: string;
  kubeconfig: string;
  caPem: string;
  adminToken: string;
  aliceToken: string;
  /** The apiserver's log, for failure messages. */
  log(): string;
}

function which(cmd: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(':')) {
    const p = join(d, cmd);
    if (d && existsSync(p)) return p;
  }
  return undefined;
}

export function apiServerBinary(): string {
  const p = process.env.KUBE_APISERVER ?? join(REPO_ROOT, 'tools', 'bin', 'kube-apiserver');
  if (!existsSync(p))
    throw new Error(
      `kube-apiserver not found at ${p}: run scripts/setup.sh (it builds the pinned version into tools/bin) or set KUBE_APISERVER`,
    );
  return p;
}

export function etcdBinary(): string {
  const p = process.env.ETCD ?? which('etcd');
  if (!p)
    throw new Error(
      'etcd not found on PATH: install the Debian package etcd-server (scripts/setup.sh does) or set ETCD',
    );
  return p;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function servingCert(dir: string): Promise<{ certFile: string; keyFile: string; caPem: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const caKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex').replace(/^./, '1'),
    name: 'CN=kubectl-contrast test CA',
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 7 * 86_400_000),
    keys: caKeys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
    ],
  });
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex').replace(/^./, '2'),
    subject: 'CN=kube-apiserver',
    issuer: ca.subject,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 7 * 86_400_000),
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'ip', value: '127.0.0.1' },
        { type: 'dns', value: 'localhost' },
      ]),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
  const certFile = join(dir, 'apiserver.crt');
  const keyFile = join(dir, 'apiserver.key');
  writeFileSync(certFile, `${cert.toString('pem')}\n`);
  writeFileSync(keyFile, keyPem, { mode: 0o600 });
  return { certFile, keyFile, caPem: `${ca.toString('pem')}\n` };
}

function get(url: string, token: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: { Authorization: `Bearer ${token}` }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

function tail(file: string, n = 3000): string {
  try {
    const t = readFileSync(file, 'utf8');
    return t.slice(-n);
  } catch {
    return '';
  }
}

let running: { server: ApiServer; procs: ChildProcess[] } | undefined;
let starting: Promise<ApiServer> | undefined;

function kill(): void {
  if (!running) return;
  for (const p of running.procs.reverse()) {
    if (p.exitCode === null) p.kill('SIGKILL');
  }
  removeDir(running.server.dir);
  running = undefined;
  starting = undefined;
}
process.once('exit', kill);

async function start(): Promise<ApiServer> {
  const apiserverBin = apiServerBinary();
  const etcdBin = etcdBinary();
  const dir = tempDir('kc-apiserver-');
  const procs: ChildProcess[] = [];
  running = { server: undefined as unknown as ApiServer, procs };
  const [etcdClient, etcdPeer, securePort] = [await freePort(), await freePort(), await freePort()];
  const etcdLog = join(dir, 'etcd.log');
  mkdirSync(join(dir, 'etcd'), { mode: 0o700 });
  const etcd = spawn(
    etcdBin,
    [
      '--name',
      'test',
      '--data-dir',
      join(dir, 'etcd'),
      '--listen-client-urls',
      `http://127.0.0.1:${etcdClient}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${etcdClient}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${etcdPeer}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${etcdPeer}`,
      '--initial-cluster',
      `test=http://127.0.0.1:${etcdPeer}`,
      '--quota-backend-bytes',
      String(512 * 1024 * 1024),
    ],
    { stdio: ['ignore', openSync(etcdLog, 'w'), openSync(etcdLog, 'a')] },
  );
  procs.push(etcd);

  const { certFile, keyFile, caPem } = await servingCert(dir);
  const sa = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(dir, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(join(dir, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const adminToken = randomBytes(24).toString('hex');
  const aliceToken = randomBytes(24).toString('hex');
  writeFileSync(
    join(dir, 'tokens.csv'),
    `${adminToken},admin,admin-uid,"system:masters"\n${aliceToken},alice,alice-uid\n`,
    { mode: 0o600 },
  );

  const apiLog = join(dir, 'apiserver.log');
  const apiserver = spawn(
    apiserverBin,
    [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${securePort}`,
      `--tls-cert-file=${certFile}`,
      `--tls-private-key-file=${keyFile}`,
      `--cert-dir=${join(dir, 'certs')}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      // As on real clusters (kubeadm sets it): the node installer is a privileged container.
      '--allow-privileged=true',
      '--service-cluster-ip-range=10.96.0.0/16',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      // No controller manager creates the "default" ServiceAccount of new namespaces.
      '--disable-admission-plugins=ServiceAccount',
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--v=1',
    ],
    { stdio: ['ignore', openSync(apiLog, 'w'), openSync(apiLog, 'a')] },
  );
  procs.push(apiserver);

  const url = `https://127.0.0.1:${securePort}`;
  const deadline = Date.now() + 180_000;
  let last: string;
  for (;;) {
    if (etcd.exitCode !== null) throw new Error(`etcd exited (${etcd.exitCode}):\n${tail(etcdLog)}`);
    if (apiserver.exitCode !== null) throw new Error(`kube-apiserver exited (${apiserver.exitCode}):\n${tail(apiLog)}`);
    try {
      const r = await get(`${url}/readyz`, adminToken, caPem);
      if (r.status === 200) break;
      last = `${r.status} ${r.body.slice(-500)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`kube-apiserver not ready after 180 s (${last}):\n${tail(apiLog)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  // The bootstrap controller creates the "default" namespace shortly after /readyz.
  for (let i = 0; i < 60; i++) {
    const r = await get(`${url}/api/v1/namespaces/default`, adminToken, caPem);
    if (r.status === 200) break;
    await new Promise((res) => setTimeout(res, 500));
  }

  const kubeconfig = join(dir, 'kubeconfig');
  const ca = Buffer.from(caPem).toString('base64');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: test\n  cluster:\n    server: ${url}\n    certificate-authority-data: ${ca}`,
      'users:',
      `- name: admin\n  user:\n    token: ${adminToken}`,
      `- name: alice\n  user:\n    token: ${aliceToken}`,
      'contexts:',
      '- name: admin\n  context:\n    cluster: test\n    user: admin',
      '- name: alice\n  context:\n    cluster: test\n    user: alice',
      'current-context: admin',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );

  const server: ApiServer = { url, dir, kubeconfig, caPem, adminToken, aliceToken, log: () => tail(apiLog) };
  running.server = server;
  return server;
}

/** The shared API server, started on first use. Fails (never skips) when a binary is missing. */
export function apiServer(): Promise<ApiServer> {
  if (!starting) {
    starting = start().catch((err: unknown) => {
      kill();
      throw err;
    });
  }
  return starting;
}

export function stopApiServer(): void {
  kill();
}

// A root-level hook: runs once after every test file of the run.
if (typeof after === 'function') after(stopApiServer);
