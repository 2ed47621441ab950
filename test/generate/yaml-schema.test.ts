import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { YAML_PARSE_OPTIONS } from '../../src/resources/stream.js';
import { docs, genText } from './harness.js';

const read = (scalar: string): unknown => parseAllDocuments(`k: ${scalar}`, YAML_PARSE_OPTIONS)[0]!.toJS().k;

describe('YAML 1.1 as Kubernetes (go-yaml) reads it', () => {
  const cases: [string, unknown][] = [
    ['0755', 0o755],
    ['0x1F', 31],
    ['1_000', 1000],
    ['1e3', 1000],
    ['1.5e-3', 0.0015],
    ['1.10', 1.1],
    ['on', true],
    ['yes', true],
    ['off', false],
    ['~', null],
    // Where the `yaml` package's 1.1 schema and go-yaml disagree, Kubernetes wins:
    ['E0', 'E0'],
    ['e5', 'e5'],
    ['12:30', '12:30'],
    ['190:20:30', '190:20:30'],
    ['2001-12-14', '2001-12-14'],
  ];
  for (const [scalar, expected] of cases) {
    it(`reads plain ${scalar} as ${JSON.stringify(expected)}`, () => assert.deepEqual(read(scalar), expected));
  }

  it('keeps such values as strings through generate, in the policy and the output', async () => {
    const pod = `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    build-date: 2001-12-14\nspec:\n  runtimeClassName: contrast-cc\n  containers:\n  - name: c\n    image: busybox:1.36\n    env:\n    - name: E0\n      value: 12:30\n`;
    const out = docs(await genText(pod))[0];
    assert.deepEqual(out.spec.containers[0].env, [{ name: 'E0', value: '12:30' }]);
    assert.equal(out.metadata.annotations['build-date'], '2001-12-14');
  });
});
