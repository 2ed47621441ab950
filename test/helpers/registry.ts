/**
 * Test peers for image resolution: Debian's `docker-registry` (CNCF distribution) on a free
 * loopback port with a temporary storage directory, optionally behind htpasswd basic auth
 * or bearer-token auth (with a small token server here); `skopeo` to push OCI layouts; and
 * an HTTP proxy that counts requests and injects failures and delays.
 */
import { createSign, generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { execa } from 'execa';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface TokenAuth {
  /** The token server's realm URL, filled in by startRegistry. */
  realm: string;
  service: string;
  issuer: string;
  certPem: string;
  sign(claims: Record<string, unknown>): string;
}

export interface RegistryOptions {
  /** Protect the registry with htpasswd basic auth. */
  basicAuth?: { username: string; password: string };
  /** Protect it with bearer tokens issued by a token server started here. */
  tokenAuth?: { username: string; password: string };
}

export interface TestRegistry {
  /** `127.0.0.1:<port>` */
  host: string;
  /** Number of token requests served (token auth only). */
  tokenRequests(): number;
  /** Stop the registry and delete its storage. */
  stop(): Promise<void>;
  /** Stop only the process, keeping the storage (a network outage). */
  pause(): Promise<void>;
  /** Start it again on the same port and storage (after pause()). */
  restart(): Promise<void>;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * @peculiar/x509 2.x needs a Reflect metadata polyfill (its tsyringe dependency checks for
 * one at load time). Only the four functions it uses are provided, before loading it.
 */
async function loadX509(): Promise<typeof import('@peculiar/x509')> {
  const R = Reflect as unknown as Record<string, unknown>;
  if (typeof R['getMetadata'] !== 'function') {
    const store = new WeakMap<object, Map<unknown, unknown>>();
    const table = (target: object): Map<unknown, unknown> => {
      let m = store.get(target);
      if (!m) store.set(target, (m = new Map()));
      return m;
    };
    R['defineMetadata'] = (key: unknown, value: unknown, target: object) => table(target).set(key, value);
    R['getMetadata'] = (key: unknown, target: object): unknown => {
      for (let t: object | null = target; t; t = Object.getPrototypeOf(t) as object | null) {
        const m = store.get(t);
        if (m?.has(key)) return m.get(key);
      }
      return undefined;
    };
    R['getOwnMetadata'] = (key: unknown, target: object): unknown => store.get(target)?.get(key);
    R['metadata'] = (key: unknown, value: unknown) => (target: object) => table(target).set(key, value);
  }
  return import('@peculiar/x509');
}

async function makeTokenSigner(service: string, issuer: string): Promise<Omit<TokenAuth, 'realm'>> {
  const x509 = await loadX509();
  x509.cryptoProvider.set(webcrypto as never);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keys = {
    privateKey: await webcrypto.subtle.importKey(
      'pkcs8',
      privateKey.export({ type: 'pkcs8', format: 'der' }),
      { name: 'ECDSA', namedCurve: 'P-256' },
      true,
      ['sign'],
    ),
    publicKey: await webcrypto.subtle.importKey(
      'spki',
      publicKey.export({ type: 'spki', format: 'der' }),
      { name: 'ECDSA', namedCurve: 'P-256' },
      true,
      ['verify'],
    ),
  };
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: 'CN=test token issuer',
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 24 * 3600_000),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    keys: keys as never,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
    ],
  });
  const certDer = Buffer.from(cert.rawData);
  return {
    service,
    issuer,
    certPem: cert.toString('pem'),
    sign(claims) {
      const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] };
      const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
      const sig = createSign('SHA256').update(input).sign({ key: privateKey, dsaEncoding: 'ieee-p1363' });
      return `${input}.${base64url(sig)}`;
    },
  };
}

async function waitForRegistry(host: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${log()}`);
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not start on ${host}: ${log()}`);
}

export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  if (!existsSync(REGISTRY_BIN))
    throw new Error(`${REGISTRY_BIN} is missing: install the Debian package docker-registry (scripts/setup.sh does)`);
  const dir = mkdtempSync(join(tmpdir(), 'contrast-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let authYaml = '';
  let tokenServer: http.Server | undefined;
  let tokenCount = 0;
  if (options.basicAuth) {
    const hash = bcrypt.hashSync(options.basicAuth.password, 5);
    writeFileSync(join(dir, 'htpasswd'), `${options.basicAuth.username}:${hash}\n`);
    authYaml = `auth:\n  htpasswd:\n    realm: test-realm\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  if (options.tokenAuth) {
    const creds = options.tokenAuth;
    const signer = await makeTokenSigner('test-registry', 'test-issuer');
    writeFileSync(join(dir, 'token-ca.pem'), signer.certPem);
    const issue = (res: http.ServerResponse, params: URLSearchParams, field: 'token' | 'access_token'): void => {
      const access = params
        .getAll('scope')
        .flatMap((s) => s.split(' '))
        .filter(Boolean)
        .map((s) => {
          const [type, name, actions] = s.split(':');
          return { type, name, actions: (actions ?? '').split(',') };
        });
      const now = Math.floor(Date.now() / 1000);
      const token = signer.sign({
        iss: signer.issuer,
        sub: creds.username,
        aud: params.get('service'),
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(8).toString('hex'),
        access,
      });
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ [field]: token, expires_in: 300 }));
    };
    tokenServer = http.createServer((req, res) => {
      tokenCount++;
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (req.method === 'POST') {
        // OAuth2 refresh-token grant, as used with identity tokens; the refresh token is `refresh-<user>`.
        let body = '';
        req.on('data', (d: Buffer) => {
          body += d.toString();
        });
        req.on('end', () => {
          const form = new URLSearchParams(body);
          if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== `refresh-${creds.username}`) {
            res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad refresh token"}');
            return;
          }
          issue(res, form, 'access_token');
        });
        return;
      }
      const expected = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        return;
      }
      issue(res, url.searchParams, 'token');
    });
    await new Promise<void>((r) => tokenServer!.listen(0, '127.0.0.1', r));
    const tport = (tokenServer.address() as net.AddressInfo).port;
    authYaml = `auth:\n  token:\n    realm: http://127.0.0.1:${tport}/token\n    service: ${signer.service}\n    issuer: ${signer.issuer}\n    rootcertbundle: ${join(dir, 'token-ca.pem')}\n`;
  }
  const config = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: ${host}
${authYaml}`;
  writeFileSync(join(dir, 'config.yml'), config);

  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    let output = '';
    const c = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout!.on('data', (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
    });
    c.stderr!.on('data', (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
    });
    child = c;
    await waitForRegistry(host, c, () => output);
  };
  const stopChild = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
      setTimeout(() => {
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }, 3000).unref();
    });
  };
  await start();
  return {
    host,
    tokenRequests: () => tokenCount,
    restart: start,
    pause: stopChild,
    async stop() {
      await stopChild();
      if (tokenServer) await new Promise<void>((r) => tokenServer!.close(() => r()));
      tokenServer = undefined;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Push the image named `refName` in an OCI layout to `dest` (`host/name:tag`) with skopeo. */
export async function pushLayout(
  layoutDir: string,
  refName: string,
  dest: string,
  options: { all?: boolean; creds?: { username: string; password: string } } = {},
): Promise<void> {
  const args = ['copy', '--quiet', '--insecure-policy', '--preserve-digests', '--dest-tls-verify=false'];
  if (options.all) args.push('--all');
  if (options.creds) args.push('--dest-creds', `${options.creds.username}:${options.creds.password}`);
  args.push(`oci:${layoutDir}:${refName}`, `docker://${dest}`);
  await execa('skopeo', args, { timeout: 60_000, env: { ...process.env, HOME: layoutDir }, stdin: 'ignore' }).catch(
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT')
        throw new Error('skopeo is missing: install the Debian package skopeo (scripts/setup.sh does)');
      throw err;
    },
  );
}

export interface ProxyRule {
  /** Answer with this status instead of forwarding (e.g. 503); undefined forwards. */
  status?: number;
  /** Wait this long before forwarding or answering. */
  delayMs?: number;
  /** Answer with a 307 redirect to this URL. */
  redirect?: string;
  /** Forward only this many body bytes, then reset the connection. */
  cutAfterBytes?: number;
  /** Forward only this many body bytes, then go silent (the connection stays open). */
  stallAfterBytes?: number;
}

export interface CountingProxy {
  host: string;
  /** Requests seen, as `METHOD path`. */
  requests: string[];
  /** Decide per request; called before forwarding. */
  rule: (method: string, path: string, attempt: number) => ProxyRule | undefined;
  close(): Promise<void>;
}

/** An HTTP proxy in front of `upstream` (host:port) that records requests and injects faults. */
export async function startProxy(upstream: string): Promise<CountingProxy> {
  const attempts = new Map<string, number>();
  const proxy: CountingProxy = {
    host: '',
    requests: [],
    rule: () => undefined,
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const key = `${req.method} ${req.url}`;
    proxy.requests.push(key);
    const attempt = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, attempt);
    const rule = proxy.rule(req.method ?? 'GET', req.url ?? '/', attempt) ?? {};
    const go = (): void => {
      if (rule.redirect !== undefined) {
        res.writeHead(307, { location: rule.redirect }).end();
        return;
      }
      if (rule.status !== undefined) {
        res.writeHead(rule.status, { 'content-type': 'text/plain' }).end(`injected ${rule.status}\n`);
        return;
      }
      const [h, p] = upstream.split(':');
      const up = http.request(
        { host: h, port: Number(p), method: req.method, path: req.url, headers: { ...req.headers, host: upstream } },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          const limit = rule.cutAfterBytes ?? rule.stallAfterBytes;
          if (limit === undefined) {
            upRes.pipe(res);
            return;
          }
          let sent = 0;
          upRes.on('data', (chunk: Buffer) => {
            if (sent >= limit) return;
            const part = chunk.subarray(0, limit - sent);
            sent += part.length;
            const cut = sent >= limit && rule.cutAfterBytes !== undefined;
            // Reset only once the partial body is on the wire, so the client sees a broken body.
            res.write(part, () => {
              if (cut) setTimeout(() => res.socket?.destroy(), 20);
            });
          });
        },
      );
      up.on('error', () => {
        res.destroy();
      });
      req.pipe(up);
    };
    if (rule.delayMs) setTimeout(go, rule.delayMs);
    else go();
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return proxy;
}
