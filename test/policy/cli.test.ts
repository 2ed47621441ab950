/** `kubectl contrast policy show|decode|check|eval|diff` through the real executable. */
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { encodePolicy, INITDATA_ANNOTATION } from '../../src/policy/initdata.js';
import { buildPolicyText, synthesizeRequests } from '../../src/policy/index.js';
import { runCli } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { deploymentInput } from './fixtures.js';

describe('kubectl contrast policy (CLI)', function () {
  this.timeout(120_000);
  let dir: string;
  const input = deploymentInput();
  const text = buildPolicyText(input);
  const encoded = encodePolicy(text);
  const requests = synthesizeRequests(input);
  const pauseReq = requests[1].body as Record<string, any>;
  const webReq = requests.find((r) => r.container === 'web' && r.request === 'CreateContainerRequest')!.body as Record<
    string,
    any
  >;
  const manifest = () =>
    stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop' },
      spec: {
        template: { metadata: { annotations: { [INITDATA_ANNOTATION]: encoded.annotation } }, spec: input.podSpec },
      },
    });

  before(() => {
    dir = tempDir();
  });
  after(() => removeDir(dir));
  const file = (name: string, content: string) => {
    const p = join(dir, name);
    writeFileSync(p, content);
    return p;
  };

  it('decode prints the policy text of an annotation value', () => {
    const r = runCli(['policy', 'decode', encoded.annotation]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${text}\n`);
    const data = runCli(['policy', 'decode', '-', '--part', 'data'], { input: encoded.annotation });
    assert.deepEqual(JSON.parse(data.stdout).containers.length, 3);
  });

  it('show reads a manifest from a file and from stdin', () => {
    const p = file('deploy.yaml', manifest());
    const r = runCli(['policy', 'show', p, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.hash, encoded.hash);
    assert.equal(out.origin, 'Deployment shop/web');
    const toml = runCli(['policy', 'show', '-o', 'toml'], { input: manifest() });
    assert.equal(toml.stdout, encoded.toml);
  });

  it('eval allows a matching request and prints the agent result shape', () => {
    const policy = file('policy.rego', text);
    const req = file('pause.json', JSON.stringify(pauseReq));
    const state = file('state.json', '{}');
    const r = runCli([
      'policy',
      'eval',
      '--policy',
      policy,
      '--request',
      req,
      '--request-type',
      'CreateContainerRequest',
      '--state',
      state,
      '--save-state',
      '-o',
      'json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(out), ['allowed', 'entrypoint', 'ops', 'reason']);
    assert.equal(out.allowed, true);
    assert.equal(out.entrypoint, 'agent_policy/CreateContainerRequest');
    assert.equal(out.reason, null);
    assert.equal(
      JSON.parse(readFileSync(state, 'utf8')).sandbox_name,
      pauseReq.OCI.Annotations['io.kubernetes.cri.sandbox-name'],
    );
    // The saved state carries over: the web container joins the same sandbox.
    const web = file('web.json', JSON.stringify({ type: 'CreateContainer', ...webReq }));
    const r2 = runCli([
      'policy',
      'eval',
      '--policy',
      file('anno.txt', encoded.annotation),
      '--request',
      web,
      '--state',
      state,
    ]);
    assert.equal(r2.code, 0, r2.stdout + r2.stderr);
  });

  it('eval denies a tampered request with exit code 1 and the reason', () => {
    const tampered = structuredClone(webReq);
    tampered.OCI.Process.Args = ['/bin/sh'];
    // The state of the earlier test: the pause container of the sandbox exists.
    const state = join(dir, 'state.json');
    const r = runCli(
      [
        'policy',
        'eval',
        '--policy',
        file('deploy2.yaml', manifest()),
        '--request',
        '-',
        '--request-type',
        'CreateContainerRequest',
        '--state',
        state,
      ],
      { input: JSON.stringify(tampered) },
    );
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout);
    assert.equal(out.allowed, false);
    assert.match(out.reason, /command line/);
    const toml = runCli([
      'policy',
      'eval',
      '--policy',
      file('init.toml', encoded.toml),
      '--request',
      file('t.json', JSON.stringify(tampered)),
      '--request-type',
      'CreateContainerRequest',
      '--state',
      state,
      '-o',
      'text',
    ]);
    assert.match(toml.stdout, /^denied: .*command line/);
  });

  it('eval reports usage errors with exit code 2', () => {
    const r = runCli(['policy', 'eval', '--policy', file('p.rego', text), '--request', file('x.json', '{}')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /request-type/);
  });

  it('diff describes changes in words', () => {
    const other = deploymentInput();
    const web = (other.podSpec.containers as Record<string, any>[])[0];
    web.env.push({ name: 'DEBUG', value: '1' });
    web.securityContext = { capabilities: { add: ['SYS_ADMIN'] } };
    const b = file('b.rego', buildPolicyText(other));
    const r = runCli(['policy', 'diff', file('a.rego', text), b]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /web: environment variable DEBUG added/);
    assert.match(r.stdout, /web: capability CAP_SYS_ADMIN added/);
    const same = runCli(['policy', 'diff', file('a2.rego', text), file('a3.rego', text)]);
    assert.equal(same.code, 0);
    assert.equal(same.stdout, '');
  });

  it('diff --request names the fields of a request the policy does not allow', () => {
    const policy = file('d.rego', text);
    const state = file('d-state.json', '{}');
    assert.equal(
      runCli([
        'policy',
        'eval',
        '--policy',
        policy,
        '--request',
        file('d-pause.json', JSON.stringify(pauseReq)),
        '--request-type',
        'CreateContainerRequest',
        '--state',
        state,
        '--save-state',
      ]).code,
      0,
    );
    const tampered = structuredClone(webReq);
    tampered.OCI.Process.Env.push('LD_PRELOAD=/tmp/x.so');
    tampered.OCI.Root.Path = '/run/kata-containers/shared/containers/x/rootfs';
    const r = runCli([
      'policy',
      'diff',
      policy,
      '--request',
      file('d-web.json', JSON.stringify(tampered)),
      '--request-type',
      'CreateContainerRequest',
      '--state',
      state,
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^CreateContainerRequest is denied: /);
    assert.match(r.stdout, /OCI\.Process\.Env\[LD_PRELOAD\]: "LD_PRELOAD=\/tmp\/x\.so" is not in the policy/);
    assert.match(r.stdout, /OCI\.Root\.Path: /);
    const ok = runCli([
      'policy',
      'diff',
      policy,
      '--request',
      file('d-web-ok.json', JSON.stringify(webReq)),
      '--request-type',
      'CreateContainerRequest',
      '--state',
      state,
      '-o',
      'json',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout), { allowed: true, failures: [], fields: [] });
    const both = runCli(['policy', 'diff', policy, policy, '--request', file('d-x.json', '{}')]);
    assert.equal(both.code, 2);
  });
});

describe('kubectl contrast policy check (CLI, offline sample images)', function () {
  this.timeout(180_000);
  let dir: string;
  before(() => {
    dir = tempDir();
  });
  after(() => removeDir(dir));

  async function manifestFor(
    podSpec: Record<string, unknown>,
    policySpec: Record<string, unknown> = podSpec,
  ): Promise<string> {
    const { ImageResolver } = await import('../../src/images/index.js');
    const { INJECTED_IMAGES } = await import('../../src/platforms/images.js');
    const { SAMPLE_IMAGES } = await import('../helpers/images.js');
    const { defaultSettings } = await import('../../src/policy/index.js');
    const resolver = new ImageResolver({ ociLayouts: [SAMPLE_IMAGES], offline: true, cacheDir: false });
    const refs = (policySpec.containers as { image: string }[]).map((c) => c.image);
    const images = new Map(await Promise.all(refs.map(async (r) => [r, await resolver.resolve(r)] as const)));
    const text = buildPolicyText({
      workload: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'api', namespace: 'default' },
      podMetadata: {},
      podSpec: policySpec,
      image: (r) => images.get(r)!,
      pauseImage: await resolver.resolve(INJECTED_IMAGES.pause),
      configMaps: [],
      secrets: [],
      settings: defaultSettings(),
    });
    return stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'api', namespace: 'default' },
      spec: {
        template: {
          metadata: { annotations: { [INITDATA_ANNOTATION]: encodePolicy(text).annotation } },
          spec: podSpec,
        },
      },
    });
  }
  const spec = (args: string[]) => ({
    runtimeClassName: 'contrast-cc',
    securityContext: { runAsUser: 1000, runAsGroup: 1000 },
    containers: [
      {
        name: 'api',
        image: 'ghcr.io/kubectl-contrast/samples/api:1.0',
        args,
        livenessProbe: { exec: { command: ['true'] } },
      },
    ],
  });
  const SAMPLE_IMAGES = join(new URL('../../', import.meta.url).pathname, 'samples', 'images');

  it('reports every synthesized request as allowed for a matching pod', async () => {
    const p = join(dir, 'ok.yaml');
    writeFileSync(p, await manifestFor(spec(['--listen', ':8080'])));
    const r = runCli([
      'policy',
      'check',
      '--offline',
      '--no-cache',
      '--oci-layout',
      SAMPLE_IMAGES,
      '--workspace-dir',
      dir,
      p,
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Deployment default\/api: ok/);
    assert.match(r.stdout, /allow {2}exec \["true"\] in api/);
  });

  it('reports the first failing reason when the pod no longer matches its policy', async () => {
    const p = join(dir, 'bad.yaml');
    writeFileSync(p, await manifestFor(spec(['--listen', ':9090']), spec(['--listen', ':8080'])));
    const r = runCli([
      'policy',
      'check',
      '--offline',
      '--no-cache',
      '--oci-layout',
      SAMPLE_IMAGES,
      '--workspace-dir',
      dir,
      p,
      '-o',
      'json',
    ]);
    assert.equal(r.code, 1, r.stderr);
    const [report] = JSON.parse(r.stdout);
    assert.equal(report.allowed, false);
    const denied = report.entries.filter((e: { allowed: boolean }) => !e.allowed);
    assert.equal(denied[0].container, 'api');
    assert.match(denied[0].reason, /command line/);
  });
});
