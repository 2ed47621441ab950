/** Policy data derivation: env sources, users, names, volumes, errors, text format. */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  decodeInitDataAnnotation,
  encodeInitData,
  encodePolicy,
  encodePolicyInBackground,
} from '../../src/policy/initdata.js';
import {
  buildPolicyData,
  buildPolicyText,
  checkPolicy,
  defaultSettings,
  loadOrCreateSettings,
  PolicyEngine,
  podNamePattern,
  rulesText,
  splitPolicyText,
  synthesizeRequests,
  type PodPolicyInput,
  type PolicySettings,
} from '../../src/policy/index.js';
import { sampleRegex } from '../../src/policy/regex-sample.js';
import { POLICY_DATA_SEPARATOR } from '../../src/policy/text.js';
import { REQUEST_DEFAULT_DOCS, SETTINGS } from '../../src/policy/settings.js';
import { UserError } from '../../src/util/errors.js';
import { deploymentInput, toolImage, webImage } from './fixtures.js';

function web(input: PodPolicyInput) {
  return buildPolicyData(input).containers.find((c) => c.name === 'web')!;
}

function throwsAt(fn: () => unknown, field: string, message: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UserError, `not a UserError: ${err}`);
    assert.equal(err.location.field, field);
    assert.match(err.message, message);
    return true;
  });
}

const onlyWeb = (container: Record<string, unknown>, more: Record<string, unknown> = {}) =>
  deploymentInput({
    initContainers: [],
    volumes: [],
    containers: [{ name: 'web', image: webImage.reference, ...container }],
    ...more,
  });

describe('policy data: environment', () => {
  it('resolves value, fieldRef, resourceFieldRef, configMap/secret refs and envFrom with prefix', () => {
    const p = web(deploymentInput()).OCI.Process;
    for (const e of [
      'PORT=8080',
      'POD_NS=shop',
      'MODE=production',
      'TOKEN=s3cr3t',
      'CFG_LEVEL=info',
      'CFG_COLOR=blue',
      'NGINX_VERSION=1.27.0',
    ]) {
      assert.ok(p.Env.includes(e), e);
    }
    assert.equal(p.EnvDynamic.POD_IP, 'POD_IP=$(ip)');
    assert.equal(p.EnvDynamic.URL, 'URL=http://$(ip):8080/');
    assert.equal(p.EnvDynamic.POD_NAME, 'POD_NAME=$(sandbox-name)');
    assert.equal(p.EnvDynamic.CPU_LIMIT, 'CPU_LIMIT=$(digits)');
    assert.equal(p.ArgsDynamic['4'], '$(sandbox-name)');
    assert.deepEqual(p.Args.slice(-5), ['--port', '8080', '--name', 'web-5d8f7b9c4-x2k9q', '$(literal)']);
  });

  it('expands $(VAR) only from variables defined earlier and keeps undefined references', () => {
    const p = web(
      onlyWeb({
        command: ['/bin/run', '$(A)', '$(UNDEFINED)', '$$(A)', 'x$(B)y'],
        env: [
          { name: 'B', value: '$(A)-b' },
          { name: 'A', value: 'a' },
          { name: 'C', value: '$(A)$(B)' },
        ],
      }),
    ).OCI.Process;
    assert.deepEqual(p.Args, ['/bin/run', 'a', '$(UNDEFINED)', '$(A)', 'x$(A)-by']);
    assert.ok(p.Env.includes('B=$(A)-b'));
    assert.ok(p.Env.includes('C=a$(A)-b'));
  });

  it('lets Kubernetes env override image env and envFrom', () => {
    const p = web(onlyWeb({ env: [{ name: 'NGINX_VERSION', value: 'mine' }] })).OCI.Process;
    assert.ok(p.Env.includes('NGINX_VERSION=mine'));
    assert.ok(!p.Env.includes('NGINX_VERSION=1.27.0'));
  });

  const errors: [string, Record<string, unknown>, string, RegExp][] = [
    [
      'a missing ConfigMap key',
      { env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'web-config', key: 'nope' } } }] },
      'spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef',
      /no key "nope"/,
    ],
    [
      'a missing ConfigMap',
      { env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'absent', key: 'k' } } }] },
      'spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef',
      /not in the input/,
    ],
    [
      'a missing Secret',
      { env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'absent', key: 'k' } } }] },
      'spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef',
      /Secret absent/,
    ],
    [
      'a missing envFrom source',
      { envFrom: [{ secretRef: { name: 'absent' } }] },
      'spec.template.spec.containers[0].envFrom[0].secretRef',
      /not in the input/,
    ],
    [
      'an unsupported fieldRef',
      { env: [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'spec.schedulerName' } } }] },
      'spec.template.spec.containers[0].env[0].valueFrom.fieldRef.fieldPath',
      /not supported/,
    ],
  ];
  for (const [name, container, field, message] of errors) {
    it(`reports ${name} with its field`, () => throwsAt(() => buildPolicyData(onlyWeb(container)), field, message));
  }

  it('skips optional references that are missing', () => {
    const p = web(
      onlyWeb({
        env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'absent', key: 'k', optional: true } } }],
        envFrom: [{ secretRef: { name: 'absent', optional: true } }],
      }),
    ).OCI.Process;
    assert.ok(!p.Env.some((e) => e.startsWith('X=')));
  });

  it('restricts service-link variables to the kubernetes service when service links are off', () => {
    assert.equal(buildPolicyData(deploymentInput()).request_defaults.CreateContainerRequest.service_links, true);
    assert.equal(
      buildPolicyData(deploymentInput({ enableServiceLinks: false })).request_defaults.CreateContainerRequest
        .service_links,
      false,
    );
  });
});

describe('policy data: process', () => {
  it('combines image entrypoint, cmd, command and args like Kubernetes', () => {
    assert.deepEqual(web(onlyWeb({})).OCI.Process.Args, ['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;']);
    assert.deepEqual(web(onlyWeb({ args: ['x'] })).OCI.Process.Args, ['/docker-entrypoint.sh', 'x']);
    assert.deepEqual(web(onlyWeb({ command: ['/bin/sh'] })).OCI.Process.Args, ['/bin/sh']);
    assert.deepEqual(web(onlyWeb({ command: ['/bin/sh'], args: ['-c', 'true'] })).OCI.Process.Args, [
      '/bin/sh',
      '-c',
      'true',
    ]);
  });

  it('derives users and groups from the image and the security context', () => {
    const tool = (sc: Record<string, unknown>, pod: Record<string, unknown> = {}) =>
      buildPolicyData(
        deploymentInput({
          initContainers: [],
          volumes: [],
          securityContext: pod,
          containers: [{ name: 'tool', image: toolImage.reference, securityContext: sc }],
        }),
      ).containers[1].OCI.Process.User;
    assert.deepEqual(tool({ runAsGroup: 1000 }), { UID: 1000, GID: 1000, AdditionalGids: [1000] });
    assert.deepEqual(tool({ runAsUser: 0, runAsGroup: 0 }), { UID: 0, GID: 0, AdditionalGids: [0] });
    assert.deepEqual(tool({ runAsUser: 7, runAsGroup: 8 }, { supplementalGroups: [20], fsGroup: 30 }), {
      UID: 7,
      GID: 8,
      AdditionalGids: [8, 20, 30],
    });
    throwsAt(() => tool({}), 'spec.template.spec.containers[0].securityContext', /runAsGroup: 1000/);
  });

  it('asks for supplementalGroups the image would add through /etc/group', () => {
    const img = { ...toolImage, config: { ...toolImage.config, User: 'root' }, group: 'root:x:0:\nwheel:x:10:root\n' };
    const input = deploymentInput(
      { initContainers: [], volumes: [], containers: [{ name: 't', image: 'x' }] },
      { image: () => img },
    );
    throwsAt(
      () => buildPolicyData(input),
      'spec.template.spec.containers[0].securityContext',
      /supplementalGroups: \[10\]/,
    );
    const ok = deploymentInput(
      {
        initContainers: [],
        volumes: [],
        securityContext: { supplementalGroups: [10] },
        containers: [{ name: 't', image: 'x' }],
      },
      { image: () => img },
    );
    assert.deepEqual(buildPolicyData(ok).containers[1].OCI.Process.User, { UID: 0, GID: 0, AdditionalGids: [0, 10] });
  });

  it('keeps the pause image user', () => {
    assert.deepEqual(buildPolicyData(deploymentInput()).containers[0].OCI.Process.User, {
      UID: 65535,
      GID: 65535,
      AdditionalGids: [65535],
    });
  });

  it('computes capabilities from drop/add and privileged', () => {
    const caps = (sc: Record<string, unknown>) =>
      web(onlyWeb({ securityContext: sc })).OCI.Process.Capabilities.Effective;
    assert.deepEqual(caps({ capabilities: { drop: ['ALL'] } }), []);
    assert.deepEqual(caps({ capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } }), ['CAP_NET_BIND_SERVICE']);
    assert.equal(caps({ privileged: true }).length, defaultSettings().privilegedCaps.length);
    assert.equal(caps({}).length, 14);
    const priv = web(onlyWeb({ securityContext: { privileged: true } }));
    assert.deepEqual(priv.OCI.Linux.MaskedPaths, []);
  });

  it('lists probe and hook exec commands, expanding static variables', () => {
    assert.deepEqual(web(deploymentInput()).exec_commands, [
      ['/bin/check', '--port', '8080'],
      ['nginx', '-s', 'quit'],
    ]);
  });
});

describe('policy data: sandbox names per workload kind', () => {
  const cases: [string, Record<string, string>, string[], string[]][] = [
    ['Pod', { name: 'db' }, ['db'], ['db-1', 'xdb']],
    ['Pod', { generateName: 'job-' }, ['job-x7k2q'], ['job-', 'job-ABC']],
    ['Deployment', {}, ['web-5d8f7b9c4-x2k9q'], ['web-x2k9q', 'web2-5d8f7b9c4-x2k9q', 'web-5d8f7b9c4-x2k9q-1']],
    ['StatefulSet', {}, ['web-0', 'web-12'], ['web-a', 'web']],
    ['DaemonSet', {}, ['web-b7x4z'], ['web-b7x4z-q8m2d']],
    ['Job', {}, ['web-q8m2d', 'web-3-q8m2d'], ['web']],
    ['CronJob', {}, ['web-29012345-k4t9w'], ['web-k4t9w']],
  ];
  for (const [kind, meta, good, bad] of cases) {
    it(`${kind} ${JSON.stringify(meta)}`, () => {
      const { regex, sample } = podNamePattern({
        ...deploymentInput(),
        workload: { apiVersion: 'v1', kind, name: 'web', namespace: 'x' },
        podMetadata: meta,
      });
      const re = new RegExp(`^${regex}$`);
      for (const g of [...good, sample]) assert.ok(re.test(g), `${g} should match ${regex}`);
      for (const b of bad) assert.ok(!re.test(b), `${b} should not match ${regex}`);
    });
  }
});

describe('policy data: pod annotations', () => {
  const annotations = {
    'example.com/team': 'blue',
    'example.com/rule': '^a.b$',
    'example.com/ref': 'x$(y)',
    'example.com/empty': '',
  };
  const input = deploymentInput({}, { podMetadata: { labels: { app: 'web' }, annotations } });
  const data = buildPolicyData(input);

  it('pins each value itself, or as an anchored regex of it when the value would read as a pattern', () => {
    for (const c of data.containers) {
      assert.equal(c.OCI.Annotations['example.com/team'], 'blue');
      assert.equal(c.OCI.Annotations['example.com/empty'], '');
      assert.equal(c.OCI.Annotations['example.com/rule'], '^\\^a\\.b\\$$');
      assert.equal(c.OCI.Annotations['example.com/ref'], '^x\\$\\(y\\)$');
    }
  });

  it("allows exactly the pod's value of each annotation in the pause container request", () => {
    const pause = synthesizeRequests(input).find((r) => r.request === 'CreateContainerRequest' && r.container === '')!;
    const body = pause.body as { OCI: { Annotations: Record<string, string> } };
    const cases: [string, string, boolean][] = [
      ['example.com/team', 'blue', true],
      ['example.com/team', 'blue2', false],
      ['example.com/team', 'Blue', false],
      ['example.com/team', '', false],
      ['example.com/rule', '^a.b$', true],
      ['example.com/rule', 'axb', false],
      ['example.com/rule', 'a.b', false],
      ['example.com/ref', 'x$(y)', true],
      ['example.com/ref', 'xz', false],
      ['example.com/empty', '', true],
      ['example.com/empty', ' ', false],
    ];
    for (const [key, value, allowed] of cases) {
      const request = structuredClone(body);
      request.OCI.Annotations = { ...annotations, ...request.OCI.Annotations, [key]: value };
      const engine = PolicyEngine.forData(data);
      try {
        const r = engine.evaluate('CreateContainerRequest', request);
        assert.equal(r.allowed, allowed, `${key}=${JSON.stringify(value)}: ${r.failures.join('; ')}`);
        if (!allowed) assert.match(r.failures.join('\n'), /annotation/);
      } finally {
        engine.dispose();
      }
    }
  });
});

describe('policy data: volumes', () => {
  it('maps every supported volume type to a mount', () => {
    const c = web(deploymentInput());
    const dest = (d: string) => c.OCI.Mounts.find((m) => m.destination === d)!;
    assert.deepEqual(dest('/etc/nginx/conf.d').options, ['rbind', 'rprivate', 'ro']);
    assert.deepEqual(dest('/etc/tls').options, ['rbind', 'rprivate', 'ro']);
    assert.deepEqual(dest('/data').options, ['rbind', 'rprivate', 'rw']);
    assert.equal(dest('/var/cache/nginx').type_, 'local');
    assert.equal(dest('/tmp').source, '/run/kata-containers/sandbox/ephemeral/tmp');
    assert.deepEqual(c.storages.map((s) => s.driver).sort(), ['ephemeral', 'local']);
  });
  const errors: [string, Record<string, unknown>, Record<string, unknown>, string, RegExp][] = [
    [
      'unsupported volume type',
      { volumeMounts: [{ name: 'v', mountPath: '/v' }] },
      { volumes: [{ name: 'v', nfs: { server: 'x', path: '/' } }] },
      'spec.template.spec.volumes[0]',
      /nfs is not supported/,
    ],
    [
      'hostPath while not allowed',
      { volumeMounts: [{ name: 'v', mountPath: '/v' }] },
      { volumes: [{ name: 'v', hostPath: { path: '/var/data' } }] },
      'spec.template.spec.volumes[0].hostPath',
      /hostPath\.allowed/,
    ],
    [
      'subPath',
      { volumeMounts: [{ name: 'v', mountPath: '/v', subPath: 'a' }] },
      { volumes: [{ name: 'v', emptyDir: {} }] },
      'spec.template.spec.containers[0].volumeMounts[0].subPath',
      /subPath/,
    ],
    [
      'a mount of an unknown volume',
      { volumeMounts: [{ name: 'nope', mountPath: '/v' }] },
      {},
      'spec.template.spec.containers[0].volumeMounts[0].name',
      /no volume named/,
    ],
  ];
  for (const [name, container, pod, field, message] of errors) {
    it(`reports ${name}`, () => throwsAt(() => buildPolicyData(onlyWeb(container, pod)), field, message));
  }
  it('allows hostPath when the settings say so, but never below forbidden prefixes', () => {
    const settings = defaultSettings();
    settings.hostPath.allowed = true;
    const mk = (path: string) =>
      deploymentInput(
        {
          initContainers: [],
          volumes: [{ name: 'v', hostPath: { path } }],
          containers: [{ name: 'web', image: webImage.reference, volumeMounts: [{ name: 'v', mountPath: '/v' }] }],
        },
        { settings },
      );
    assert.ok(web(mk('/var/data')).OCI.Mounts.some((m) => m.destination === '/v'));
    throwsAt(() => buildPolicyData(mk('/dev/sda')), 'spec.template.spec.volumes[0].hostPath.path', /forbids/);
  });
  it('places disk emptyDirs at <shared>/<sandbox>/rootfs/local/<volume> with the fsGroup as fsgid (kata_agent.go handleLocalStorage)', () => {
    const c = web(
      onlyWeb(
        {
          volumeMounts: [
            { name: 'v', mountPath: '/v' },
            { name: 'm', mountPath: '/m' },
          ],
        },
        {
          volumes: [
            { name: 'v', emptyDir: {} },
            { name: 'm', emptyDir: { medium: 'Memory' } },
          ],
          securityContext: { fsGroup: 2000 },
        },
      ),
    );
    assert.deepEqual(
      c.OCI.Mounts.find((m) => m.destination === '/v'),
      {
        destination: '/v',
        source: '$(sfpath)/$(sandbox-id)/rootfs/local/v',
        type_: 'local',
        options: ['rbind', 'rprivate', 'rw'],
      },
    );
    assert.deepEqual(
      c.storages.map((x) => [x.driver, x.options, x.fs_group]),
      [
        ['local', ['mode=0777', 'fsgid=2000'], null],
        ['ephemeral', ['fsgid=2000'], null],
      ],
    );
    const none = web(
      onlyWeb(
        { volumeMounts: [{ name: 'v', mountPath: '/v' }] },
        { volumes: [{ name: 'v', emptyDir: {} }], securityContext: { fsGroup: 0 } },
      ),
    );
    assert.deepEqual(none.storages[0].options, ['mode=0777']);
  });

  it('backs disk emptyDirs with block devices when the settings say so', () => {
    const settings = defaultSettings();
    settings.emptyDirType = 'block-plain';
    const c = web(
      deploymentInput(
        {
          initContainers: [],
          volumes: [{ name: 'v', emptyDir: {} }],
          securityContext: { fsGroup: 7, fsGroupChangePolicy: 'OnRootMismatch' },
          containers: [{ name: 'web', image: webImage.reference, volumeMounts: [{ name: 'v', mountPath: '/v' }] }],
        },
        { settings },
      ),
    );
    assert.deepEqual(c.OCI.Mounts.find((m) => m.destination === '/v')?.source, '$(block-storage)');
    assert.deepEqual(c.storages, [
      {
        driver: '$(block)',
        driver_options: ['create_filesystem'],
        source: '$(block-device):v',
        fstype: 'ext4',
        options: ['discard'],
        mount_point: '$(block-mount)',
        fs_group: { group_id: 7, group_change_policy: 1 },
        shared: true,
      },
    ]);
  });

  it("counts GPUs from the settings' resource keys and rejects a count that is no whole number", () => {
    const gpu = (limit: unknown) => onlyWeb({ resources: { limits: { 'nvidia.com/pgpu': limit } } });
    assert.equal(web(gpu('2')).gpus, 2);
    assert.equal(web(onlyWeb({})).gpus, 0);
    throwsAt(
      () => buildPolicyData(gpu('1.5')),
      'spec.template.spec.containers[0].resources.limits["nvidia.com/pgpu"]',
      /whole number/,
    );
  });

  it('attaches volumeDevices of block claims only', () => {
    const dev = (volumes: unknown[], path = '/dev/xvda') =>
      onlyWeb({ volumeDevices: [{ name: 'raw', devicePath: path }] }, { volumes });
    assert.deepEqual(web(dev([{ name: 'raw', persistentVolumeClaim: { claimName: 'c' } }])).devices, [
      { container_path: '/dev/xvda' },
    ]);
    assert.deepEqual(web(dev([{ name: 'raw', ephemeral: { volumeClaimTemplate: { spec: {} } } }])).OCI.Linux.Devices, [
      { Type: '', Path: '/dev/xvda' },
    ]);
    throwsAt(
      () => buildPolicyData(dev([{ name: 'raw', emptyDir: {} }])),
      'spec.template.spec.containers[0].volumeDevices[0].name',
      /no block volume named "raw"/,
    );
    throwsAt(
      () =>
        buildPolicyData(dev([{ name: 'raw', persistentVolumeClaim: { claimName: 'c' } }], '/dev/vfio/devices/vfio0')),
      'spec.template.spec.containers[0].volumeDevices[0].devicePath',
      /reserved for VFIO/,
    );
  });

  it('resolves mounts of StatefulSet claim templates as claims', () => {
    const input = {
      ...onlyWeb({ volumeMounts: [{ name: 'data', mountPath: '/var/lib/data' }] }),
      claimTemplates: ['data'],
    };
    assert.deepEqual(
      web(input).OCI.Mounts.find((m) => m.destination === '/var/lib/data'),
      {
        destination: '/var/lib/data',
        source: '$(sfpath)/$(bundle-id)-$(random16)-data',
        type_: 'bind',
        options: ['rbind', 'rprivate', 'rw'],
      },
    );
  });

  it('leaves out the service account token when automount is off', () => {
    const c = web(deploymentInput({ automountServiceAccountToken: false }));
    assert.ok(!c.OCI.Mounts.some((m) => m.destination.includes('serviceaccount')));
  });
});

describe('policy text and settings', () => {
  it('is the rules, a blank line, and policy_data as pretty JSON, without a trailing newline', () => {
    const input = deploymentInput();
    const text = buildPolicyText(input);
    assert.ok(text.startsWith(rulesText()));
    assert.ok(rulesText().endsWith('}\n'));
    assert.equal(text.slice(rulesText().length, rulesText().length + 16), '\npolicy_data := ');
    assert.ok(!text.endsWith('\n'));
    assert.deepEqual(splitPolicyText(text).data, buildPolicyData(input));
    assert.equal(buildPolicyText(input), text, 'deterministic');
    const round = decodeInitDataAnnotation(encodePolicy(text).annotation);
    assert.equal(round.init.data['policy.rego'], text);
  });

  it('is encoded to the same bytes whether gzipped at once or in the background, small or large', async () => {
    const text = buildPolicyText(deploymentInput());
    // Past the 64 KiB output chunk too: random text hardly compresses.
    const noise = Array.from({ length: 40000 }, (_, i) => ((i * 2654435761) >>> 0).toString(36)).join(' ');
    const other = buildPolicyText(deploymentInput()).replace('"name":', '"other":');
    const cut = text.lastIndexOf(POLICY_DATA_SEPARATOR);
    const [rules, data] = [text.slice(0, cut), text.slice(cut)];
    // The TOML's start is made once per rules text: texts with the same rules, other rules, and
    // texts that tomlString cannot write as one literal (in the rules or in the data) or that
    // have no data part at all.
    const texts = [
      text,
      other,
      `${text}\n# ${noise}`,
      `# other rules\n${text}`,
      text,
      `${rules}${data}\n# ''' x`,
      `${rules}${data}\u0001`,
      `${rules}${data}'`,
      `${rules}'''${data}`,
      `${rules}${data}${POLICY_DATA_SEPARATOR}{}`,
      'x',
      `${POLICY_DATA_SEPARATOR}{}`,
      other,
    ];
    for (const t of texts) {
      const now = encodePolicy(t);
      const later = encodePolicyInBackground(t);
      assert.equal(later.toml, now.toml);
      assert.equal(later.hash, now.hash);
      assert.equal(await later.annotation, now.annotation);
      assert.equal(decodeInitDataAnnotation(await later.annotation).init.data['policy.rego'], t);
    }
  });

  it('is one gzip member that gzip, Python and Go (the Kata runtime reads it with compress/gzip) inflate to the TOML', function () {
    this.timeout(120_000);
    const text = buildPolicyText(deploymentInput());
    const { toml, annotation } = encodePolicy(text);
    const bytes = Buffer.from(annotation, 'base64');
    // The rules are deflated once and shared: the member is barely larger than one deflate of all.
    const plain = gzipSync(Buffer.from(toml), { level: 6 });
    assert.ok(bytes.length < plain.length * 1.05, `${bytes.length} vs ${plain.length}`);
    assert.notDeepEqual(bytes, plain, 'the shared rules are a deflate of their own');
    assert.equal(execFileSync('gzip', ['-dc'], { input: bytes }).toString('utf8'), toml);
    const python = 'import gzip, sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))';
    assert.equal(execFileSync('python3', ['-c', python], { input: bytes }).toString('utf8'), toml);
    const dir = mkdtempSync(join(tmpdir(), 'initdata-go-'));
    try {
      // One member and nothing after it: multistream off, then a second Read must report EOF.
      writeFileSync(
        join(dir, 'main.go'),
        `package main

import (
	"compress/gzip"
	"io"
	"os"
)

func main() {
	r, err := gzip.NewReader(os.Stdin)
	if err != nil {
		panic(err)
	}
	r.Multistream(false)
	b, err := io.ReadAll(r)
	if err != nil {
		panic(err)
	}
	if rest, _ := io.ReadAll(os.Stdin); len(rest) != 0 {
		panic("bytes after the member")
	}
	os.Stdout.Write(b)
}
`,
      );
      const env = {
        ...process.env,
        GOTOOLCHAIN: 'local',
        GOFLAGS: '-mod=mod',
        GO111MODULE: 'off',
        GOCACHE: join(dir, 'cache'),
      };
      const out = execFileSync('go', ['run', join(dir, 'main.go')], { input: bytes, env, cwd: dir });
      assert.equal(out.toString('utf8'), toml);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is what gzip -6 writes when the TOML has no policy rules to share', () => {
    const encoded = encodeInitData({ version: '0.1.0', algorithm: 'sha256', data: { 'policy.rego': 'package x\n' } });
    assert.deepEqual(Buffer.from(encoded.annotation, 'base64'), gzipSync(Buffer.from(encoded.toml), { level: 6 }));
  });

  it('passes its own check', async () => {
    const input = deploymentInput();
    const report = await checkPolicy(buildPolicyText(input), input);
    assert.ok(report.allowed, JSON.stringify(report.entries.filter((e) => !e.allowed)));
    assert.deepEqual(
      report.entries.map((e) => e.request),
      [
        'CreateSandboxRequest',
        'CreateContainerRequest',
        'CreateContainerRequest',
        'CreateContainerRequest',
        'ExecProcessRequest',
        'ExecProcessRequest',
      ],
    );
  });

  it('fails the check of a policy generated for a different pod', async () => {
    const other = deploymentInput({
      containers: [{ name: 'web', image: webImage.reference, command: ['/bin/other'] }],
      initContainers: [],
      volumes: [],
    });
    const report = await checkPolicy(buildPolicyText(other), deploymentInput());
    assert.equal(report.allowed, false);
    assert.ok(report.entries.some((e) => !e.allowed && /command line|environment|mount/.test(e.reason ?? '')));
  });

  it('creates settings.json on first run and reads it back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'settings-'));
    try {
      const first = loadOrCreateSettings(dir);
      assert.deepEqual(first, defaultSettings());
      const text = readFileSync(join(dir, 'settings.json'), 'utf8');
      assert.ok(statSync(join(dir, 'settings.json')).isFile());
      assert.deepEqual(loadOrCreateSettings(dir), JSON.parse(text));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('policy engine: rules other than ours', function () {
  this.timeout(120_000);
  it('compiles rules that differ from rules.rego with opa and evaluates them', async () => {
    const { PolicyEngine } = await import('../../src/policy/index.js');
    const input = deploymentInput();
    const text = buildPolicyText(input);
    const custom = text.replace('default SetPolicyRequest := false', 'default SetPolicyRequest := true');
    assert.notEqual(custom, text);
    const e = PolicyEngine.forPolicyText(custom);
    assert.equal(e.evaluate('SetPolicyRequest', { policy: '' }).allowed, true);
    assert.equal(PolicyEngine.forPolicyText(text).evaluate('SetPolicyRequest', { policy: '' }).allowed, false);
  });

  it('rejects a policy text without policy_data', async () => {
    const { PolicyEngine } = await import('../../src/policy/index.js');
    assert.throws(() => PolicyEngine.forPolicyText('package agent_policy\n'), /policy_data/);
  });
});

describe('settings table', () => {
  it('documents every field in docs/policy.md', () => {
    const doc = readFileSync(new URL('../../docs/policy.md', import.meta.url), 'utf8');
    for (const f of SETTINGS) assert.ok(doc.includes(`| \`${f.key}\` |`), `docs/policy.md has no row for ${f.key}`);
    for (const k of Object.keys(REQUEST_DEFAULT_DOCS))
      assert.ok(doc.includes(`\`requestDefaults.${k}\``), `docs/policy.md has no row for requestDefaults.${k}`);
  });

  it('rejects a file of settings version 1, unknown fields and bad paths', async () => {
    const { writeFileSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'settings-'));
    try {
      const write = (patch: Record<string, unknown>) =>
        writeFileSync(join(dir, 'settings.json'), JSON.stringify({ ...defaultSettings(), ...patch }));
      const field = (f: string, message: RegExp) =>
        assert.throws(
          () => loadOrCreateSettings(dir),
          (err: unknown) => err instanceof UserError && err.location.field === f && message.test(err.message),
        );
      write({ version: 1 });
      field('version', /version must be 2/);
      write({ containerPath: '/x' });
      field('containerPath', /unknown setting/);
      write({ rootfsPath: '/run/kata-containers/rootfs' });
      field('rootfsPath', /\$\(bundle-id\)/);
      write({ sharedFilesPaths: [] });
      field('sharedFilesPaths', /at least one/);
      write({ emptyDirType: 'shared-fs' });
      field('emptyDirType', /one of local, block-encrypted, block-plain/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('regular expressions of the policy data, sampled for the self-check', () => {
  it('gives a string the expression matches, for the forms our data and settings use', () => {
    for (const re of [
      '^a{5}$',
      '^(ab|cd)e$',
      '^\\d+-[\\w.]{2}$',
      '^/run/kata-containers/shared/containers/[a-f0-9]{64}-[a-z0-9]{16}-[^/]+$',
      '^(?:x|y)+z?$',
    ])
      assert.match(sampleRegex(re), new RegExp(re), re);
  });

  it('refuses what it cannot read, instead of looping or building a huge string', () => {
    for (const [re, what] of [
      ['^abc[', /a character class without its \]/],
      ['^a{3', /a repeat without its \}/],
      ['^x(ab', /a group without its \)/],
      ['ab)c', /a \) without its \(/],
      ['^a\\', /a backslash at its end/],
      ['^a{100000000}$', /a repeat count above 1000/],
      ['^a{2,5000}$', /a repeat count above 1000/],
      ['^a{x}$', /not \{n\}, \{n,\} or \{n,m\}/],
      ['^((a{1000}){1000})$', /no match shorter than 65536 characters/],
      [`^${'('.repeat(40)}a${')'.repeat(40)}$`, /nested deeper than 32/],
    ] as const)
      assert.throws(
        () => sampleRegex(re),
        (err: unknown) => err instanceof UserError && what.test(err.message),
        re,
      );
  });

  it('settings.json: a container template regex the sampler cannot read names its field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'settings-'));
    try {
      const check = (patch: (s: PolicySettings) => void, field: string) => {
        const s = defaultSettings();
        patch(s);
        writeFileSync(join(dir, 'settings.json'), JSON.stringify(s));
        assert.throws(
          () => loadOrCreateSettings(dir),
          (err: unknown) =>
            err instanceof UserError && err.location.field === field && /without its \]/.test(err.message),
        );
      };
      check((s) => {
        s.pauseContainer.annotations['io.kubernetes.cri.sandbox-log-directory'] = '^/var/log/pods/[a-z';
      }, 'pauseContainer.annotations["io.kubernetes.cri.sandbox-log-directory"]');
      check((s) => {
        s.otherContainer.mounts[0]!.source = '^/run/[a-f';
      }, 'otherContainer.mounts[0].source');
      // The defaults pass, and a readable regex does too.
      const s = defaultSettings();
      s.pauseContainer.annotations['io.kubernetes.cri.sandbox-log-directory'] = '^/var/log/pods/[a-z0-9_-]+$';
      writeFileSync(join(dir, 'settings.json'), JSON.stringify(s));
      assert.equal(
        loadOrCreateSettings(dir).pauseContainer.annotations['io.kubernetes.cri.sandbox-log-directory'],
        '^/var/log/pods/[a-z0-9_-]+$',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('settings.json validation', () => {
  it('names the bad field and keeps the file', async () => {
    const { writeFileSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'settings-'));
    try {
      const s = defaultSettings() as unknown as Record<string, unknown>;
      s.hostPath = 'yes';
      writeFileSync(join(dir, 'settings.json'), JSON.stringify(s));
      assert.throws(
        () => loadOrCreateSettings(dir),
        (err: unknown) => err instanceof UserError && err.location.field === 'hostPath',
      );
      writeFileSync(join(dir, 'settings.json'), '{ not json');
      assert.throws(() => loadOrCreateSettings(dir), /not valid JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
