/**
 * Registry credentials from the Docker client configuration: `auths` entries (base64
 * `user:password`, or an identity token), `credHelpers` per registry and a default
 * `credsStore`, both run as `docker-credential-<name> get`. Without an explicit config path,
 * the containers auth files (podman, skopeo) are read as well.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DOCKER_HUB } from './reference.js';

export type Credentials =
  { kind: 'basic'; username: string; password: string } | { kind: 'identity-token'; token: string };

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

interface ConfigFile {
  path: string;
  auths: Record<string, AuthEntry>;
  credHelpers: Record<string, string>;
  credsStore?: string;
}

/** The key Docker uses for Docker Hub in config files and credential helpers. */
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

function normaliseKey(key: string): string {
  let k = key.replace(/^[a-z]+:\/\//i, '');
  const slash = k.indexOf('/');
  if (slash >= 0) k = k.slice(0, slash);
  k = k.toLowerCase();
  if (k === 'index.docker.io' || k === 'registry-1.docker.io') k = DOCKER_HUB;
  return k;
}

function readConfig(path: string): ConfigFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`registry credentials: ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const auths: Record<string, AuthEntry> = {};
  if (typeof doc['auths'] === 'object' && doc['auths'] !== null) {
    for (const [k, v] of Object.entries(doc['auths'] as Record<string, AuthEntry>)) auths[normaliseKey(k)] ??= v ?? {};
  }
  const credHelpers: Record<string, string> = {};
  if (typeof doc['credHelpers'] === 'object' && doc['credHelpers'] !== null) {
    for (const [k, v] of Object.entries(doc['credHelpers'] as Record<string, unknown>)) {
      if (typeof v === 'string') credHelpers[normaliseKey(k)] = v;
    }
  }
  const out: ConfigFile = { path, auths, credHelpers };
  if (typeof doc['credsStore'] === 'string' && doc['credsStore']) out.credsStore = doc['credsStore'];
  return out;
}

/** Run a Docker credential helper; undefined when it has no credentials for the server. */
function runHelper(name: string, server: string): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return Promise.reject(new Error(`invalid credential helper name "${name}"`));
  return new Promise((resolve, reject) => {
    const child = execFile(
      `docker-credential-${name}`,
      ['get'],
      { timeout: 30_000, maxBuffer: 1024 * 1024 },
      (err, stdout) => {
        if (err) {
          const text = `${stdout}`.trim();
          if (/credentials not found/i.test(text) || /credentials not found/i.test(err.message))
            return resolve(undefined);
          // Never echo the helper's output: it may contain secrets.
          const code = (err as NodeJS.ErrnoException).code;
          return reject(
            new Error(
              `credential helper docker-credential-${name} failed for ${server}${code === 'ENOENT' ? ' (not found on PATH)' : ''}`,
            ),
          );
        }
        try {
          const doc = JSON.parse(stdout) as { Username?: string; Secret?: string };
          if (!doc.Secret) return resolve(undefined);
          if (doc.Username === '<token>') return resolve({ kind: 'identity-token', token: doc.Secret });
          resolve({ kind: 'basic', username: doc.Username ?? '', password: doc.Secret });
        } catch {
          reject(new Error(`credential helper docker-credential-${name} printed invalid JSON for ${server}`));
        }
      },
    );
    child.stdin?.end(server);
  });
}

function fromEntry(entry: AuthEntry, where: string): Credentials | undefined {
  if (entry.identitytoken) return { kind: 'identity-token', token: entry.identitytoken };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0)
      throw new Error(`registry credentials: the "auth" value for ${where} is not base64 of user:password`);
    return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username !== undefined && entry.password !== undefined) {
    return { kind: 'basic', username: entry.username, password: entry.password };
  }
  return undefined;
}

/** Anything that can look up credentials for a registry host. */
export interface CredentialSource {
  get(registry: string): Promise<Credentials | undefined>;
}

export class CredentialStore implements CredentialSource {
  private readonly files: ConfigFile[];
  private readonly memo = new Map<string, Promise<Credentials | undefined>>();

  /** `configPath` replaces the default search (Docker config, then containers auth files). */
  constructor(configPath?: string, env: NodeJS.ProcessEnv = process.env) {
    const paths: string[] = [];
    if (configPath !== undefined) {
      paths.push(configPath);
    } else {
      paths.push(join(env['DOCKER_CONFIG'] ?? join(homedir(), '.docker'), 'config.json'));
      if (env['REGISTRY_AUTH_FILE']) paths.push(env['REGISTRY_AUTH_FILE']);
      if (env['XDG_RUNTIME_DIR']) paths.push(join(env['XDG_RUNTIME_DIR'], 'containers', 'auth.json'));
      paths.push(join(env['XDG_CONFIG_HOME'] ?? join(homedir(), '.config'), 'containers', 'auth.json'));
    }
    this.files = paths.map(readConfig).filter((f): f is ConfigFile => f !== undefined);
  }

  /** Credentials for a registry host (`docker.io` for Docker Hub), or undefined for anonymous access. */
  get(registry: string): Promise<Credentials | undefined> {
    const host = normaliseKey(registry);
    let p = this.memo.get(host);
    if (!p) {
      p = this.lookup(host);
      this.memo.set(host, p);
    }
    return p;
  }

  private async lookup(host: string): Promise<Credentials | undefined> {
    const server = host === DOCKER_HUB ? DOCKER_HUB_KEY : host;
    for (const f of this.files) {
      const helper = f.credHelpers[host];
      if (helper) return runHelper(helper, server);
      const entry = f.auths[host];
      if (entry) {
        const creds = fromEntry(entry, `${host} in ${f.path}`);
        if (creds) return creds;
      }
      if (f.credsStore) {
        const creds = await runHelper(f.credsStore, server);
        if (creds) return creds;
      }
    }
    return undefined;
  }
}
