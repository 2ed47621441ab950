/**
 * The local node of scripts/cluster.sh, for real: up (twice: the second starts nothing), our
 * images pulled from its registry under their own names, a pod's log, cluster DNS and Services
 * from the node and from a pod, and down leaving no namespace, mount or process behind.
 * Needs root and what scripts/setup.sh builds; its own namespace and state directory, so it does
 * not touch a playground the developer runs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/cli.js';

const NETNS = `contrast-e2e-${process.pid}`;
const DIR = mkdtempSync(join(tmpdir(), 'contrast-cluster-'));
const ENV = { ...process.env, CONTRAST_CLUSTER_NETNS: NETNS, CONTRAST_CLUSTER_DIR: DIR };
const cluster = (...args: string[]) =>
  spawnSync('bash', [join(REPO_ROOT, 'scripts', 'cluster.sh'), ...args], {
    encoding: 'utf8',
    env: ENV,
    timeout: 600_000,
  });
const inNode = (...args: string[]) => cluster('exec', '--', ...args);
const kubectl = (...args: string[]) =>
  inNode('kubectl', '--kubeconfig', join(DIR, 'kubeconfig', 'admin.yaml'), ...args);

function ok(r: ReturnType<typeof spawnSync>, what: string): string {
  assert.equal(r.status, 0, `${what}: ${String(r.stderr)}${String(r.stdout)}`);
  return String(r.stdout);
}

const pidsOf = (): number[] => {
  const dir = join(DIR, 'pids');
  return existsSync(dir) ? readdirSync(dir).map((f) => Number(readFileSync(join(dir, f), 'utf8'))) : [];
};
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('e2e: the local node (scripts/cluster.sh)', function () {
  this.timeout(900_000);
  before(function () {
    if (process.getuid?.() !== 0 || !existsSync(join(REPO_ROOT, 'tools', 'bin', 'kubelet'))) this.skip();
  });
  after(() => {
    if (process.getuid?.() === 0) cluster('down');
    rmSync(DIR, { recursive: true, force: true });
  });

  it('comes up with a Ready node; a second up starts nothing', () => {
    ok(cluster('up'), 'up');
    const pids = pidsOf();
    assert.ok(pids.length >= 9, `pid files: ${pids.join(', ')}`);
    const again = cluster('up');
    ok(again, 'second up');
    assert.doesNotMatch(again.stderr, /\[cluster\] starting/);
    assert.deepEqual(pidsOf(), pids);
    assert.match(
      ok(
        kubectl('get', 'node', 'contrast-node', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'),
        'node',
      ),
      /^True$/,
    );
    const env = ok(cluster('env'), 'env');
    assert.match(env, new RegExp(`^export KUBECONFIG=${DIR}/kubeconfig/admin.yaml$`, 'm'));
    assert.ok(existsSync(join(DIR, 'images', 'image-lock.json')));
  });

  it('runs our image, pulled from the registry in the namespace under its own name and digest, and shows its log', () => {
    const lock = JSON.parse(readFileSync(join(DIR, 'images', 'image-lock.json'), 'utf8')) as {
      images: Record<string, string>;
    };
    const image = lock.images['portForwarder']!;
    ok(kubectl('run', 'version', '--restart=Never', `--image=${image}`, '--', '--version'), 'run');
    ok(kubectl('wait', '--for=jsonpath={.status.phase}=Succeeded', 'pod/version', '--timeout=120s'), 'wait');
    assert.equal(ok(kubectl('logs', 'version'), 'logs').trim(), '0.1.0');
    const status = JSON.parse(ok(kubectl('get', 'pod', 'version', '-o', 'json'), 'get')) as {
      status: { containerStatuses: { imageID: string }[] };
    };
    assert.match(status.status.containerStatuses[0]!.imageID, new RegExp(`${image.split('@')[1]}$`));
  });

  it('resolves Services through CoreDNS and reaches them through kube-proxy, from the node and from a pod', () => {
    const dns = ok(
      inNode(
        process.execPath,
        '-e',
        "const r=new (require('dns').promises.Resolver)();r.setServers(['10.200.0.1']);r.resolve4('kubernetes.default.svc.cluster.local').then(a=>console.log(a.join(',')))",
      ),
      'dns',
    );
    assert.equal(dns.trim(), '10.96.0.1');
    // The API server through its Service IP: kube-proxy's DNAT in the node's namespace.
    assert.match(
      ok(inNode('curl', '-sk', '-o', '/dev/null', '-w', '%{http_code}', 'https://10.96.0.1/readyz'), 'service'),
      /^(200|401|403)$/,
    );
    // From a pod: cluster DNS in its resolv.conf, the Service IP through the bridge.
    const lock = JSON.parse(readFileSync(join(DIR, 'images', 'image-lock.json'), 'utf8')) as {
      images: Record<string, string>;
    };
    ok(
      kubectl(
        'run',
        'relay',
        `--image=${lock.images['portForwarder']}`,
        '--port=8443',
        '--',
        'port-forwarder',
        '--listen-port',
        '8443',
        '--target',
        'kubernetes.default.svc.cluster.local:443',
      ),
      'run relay',
    );
    ok(kubectl('wait', '--for=condition=Ready', 'pod/relay', '--timeout=120s'), 'wait relay');
    const ip = ok(kubectl('get', 'pod', 'relay', '-o', 'jsonpath={.status.podIP}'), 'pod ip');
    assert.match(ip, /^10\.244\.0\.\d+$/);
    assert.match(
      ok(
        inNode('curl', '-sk', '-o', '/dev/null', '-w', '%{http_code}', `https://${ip}:8443/readyz`),
        'through the pod',
      ),
      /^(200|401|403)$/,
    );
  });

  it('goes down without leaving a namespace, a mount or a process', () => {
    const pids = pidsOf();
    ok(cluster('down'), 'down');
    for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} still runs`);
    assert.doesNotMatch(
      spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout,
      new RegExp(`^${NETNS}\\b`, 'm'),
    );
    assert.equal(
      readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .filter((l) => l.includes(` ${DIR}/`)).length,
      0,
    );
    const shims = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`${DIR}/containerd/containerd.sock`);
        } catch {
          return false;
        }
      });
    assert.deepEqual(shims, [], 'containerd shims of the node still run');
    ok(cluster('down'), 'second down');
  });
});
