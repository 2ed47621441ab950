/** The sidecar reads the annotations generate copied into its environment, with generate's parser. */
import assert from 'node:assert/strict';
import { meshProxyConfig } from '../../src/servicemesh/config.js';
import { meshConfigFrom } from '../../src/transforms/service-mesh.js';

describe('service mesh: the sidecar configuration', () => {
  it('splits ingress entries into untouched and TLS-only ports; egress entries keep their parts', () => {
    const c = meshProxyConfig({
      ingress: 'web#8080#false##metrics#9090#true',
      egress: 'db#127.0.0.2:5432#postgres.prod:5432',
      adminPort: '9901',
    });
    assert.deepEqual(c.passthroughPorts, [9090]);
    assert.deepEqual(c.serverOnlyTlsPorts, [8080]);
    assert.deepEqual(c.egress, [
      { name: 'db', listenHost: '127.0.0.2', listenPort: 5432, remoteHost: 'postgres.prod', remotePort: 5432 },
    ]);
    assert.equal(c.adminPort, 9901);
  });

  it('with nothing set, every port is protected and there is no egress and no admin interface', () => {
    const c = meshProxyConfig({});
    assert.deepEqual([c.passthroughPorts, c.serverOnlyTlsPorts, c.egress, c.adminPort], [[], [], [], undefined]);
    assert.deepEqual(meshProxyConfig({ ingress: '', egress: '', adminPort: '' }).ingress, []);
  });

  for (const [raw, pattern] of [
    [
      { ingress: 'web#8080' },
      /env CONTRAST_INGRESS_PROXY_CONFIG: ingress entry "web#8080" must be name#port#true\|false/,
    ],
    [{ ingress: 'web#8080#yes' }, /env CONTRAST_INGRESS_PROXY_CONFIG: .*last part must be true/],
    [{ ingress: 'a#80#true##b#80#false' }, /port 80 is listed twice/],
    [
      { egress: 'db#10.0.0.1:5432#db:5432' },
      /env CONTRAST_EGRESS_PROXY_CONFIG: .*must be an IPv4 address in 127\.0\.0\.0\/8/,
    ],
    [{ egress: 'a#127.0.0.2:80#x:1##b#127.0.0.2:80#y:1' }, /127\.0\.0\.2:80 is listed twice/],
    [{ adminPort: '70000' }, /env CONTRAST_ADMIN_PORT: admin interface port 70000 is outside 1-65535/],
    [
      { adminPort: '9090', ingress: 'metrics#9090#true' },
      /admin interface port 9090 is also the ingress entry "metrics"/,
    ],
    [
      { adminPort: '5000', egress: 'x#127.0.0.2:5000#y:1' },
      /admin interface port 5000 is also the listen port of egress entry "x"/,
    ],
  ] as const) {
    it(`refuses ${JSON.stringify(raw)}`, () => {
      assert.throws(
        () => meshProxyConfig(raw),
        (err: Error) => err.name === 'UserError' && pattern.test(err.message),
      );
    });
  }

  it('generate refuses the same annotation values (one parser for both)', () => {
    const A = 'contrast.edgeless.systems/';
    assert.throws(
      () => meshConfigFrom({ [`${A}servicemesh-ingress`]: 'a#80#true##b#80#false' }, 'spec.template.metadata'),
      /port 80 is listed twice/,
    );
  });
});
