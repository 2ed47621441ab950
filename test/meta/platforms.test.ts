/**
 * The platforms table (src/platforms/platforms.ts) and the TEE table (src/attestation/tees.ts)
 * are the one source for platforms, TEEs, evidence OIDs and issuers: the copies in docs and
 * help texts must say what the tables say.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yargs, { type Argv } from 'yargs';
import { REPO_ROOT } from '../helpers/cli.js';
import { PLATFORMS, platformIds } from '../../src/platforms/platforms.js';
import { withDefaultReferenceValues } from '../../src/platforms/reference-values.js';
import { EVIDENCE_OIDS, TEES } from '../../src/attestation/tees.js';
import { generateCommand } from '../../src/cli/generate.js';
import { coordinatorCommand } from '../../src/cli/coordinator.js';
import { initializerCommand } from '../../src/cli/initializer.js';

const doc = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');

/** The rows of the first markdown table after `heading` (leading spaces of indented tables ignored). */
function tableAfter(text: string, heading: string): string[][] {
  const start = text.indexOf(heading);
  assert.ok(start >= 0, `no "${heading}"`);
  const lines = text
    .slice(start)
    .split('\n')
    .map((l) => l.trimStart());
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  }
  return rows;
}

function helpOf(builder: unknown, args: string[] = []): string {
  let help = '';
  (builder as (y: Argv) => Argv)(yargs([]))
    .scriptName('kubectl-contrast')
    .parseSync([...args, '--help'], {}, (_err, _argv, output) => {
      help = output;
    });
  return help;
}

/** What the help says about `--platform`: its lines up to the next option, on one line. */
function platformOption(help: string): string {
  const lines = help.split('\n');
  const first = lines.findIndex((l) => /^\s+--platform\b/.test(l));
  assert.ok(first >= 0, 'no --platform in the help');
  const end = lines.findIndex((l, i) => i > first && (/^\s+-/.test(l) || l.trim() === ''));
  return lines
    .slice(first, end < 0 ? undefined : end)
    .join(' ')
    .replace(/\s+/g, ' ');
}

const choicesOf = (option: string) =>
  [...(/\[choices: ([^\]]*)\]/.exec(option)?.[1] ?? '').matchAll(/"([^"]+)"/g)].map((m) => m[1]!);

describe('the platforms and TEE tables and their copies', () => {
  it('every platform runs on a TEE of the table, and every TEE has a platform', () => {
    const tees = TEES.map((t) => t.type);
    for (const p of PLATFORMS) assert.ok(tees.includes(p.tee), `${p.id}: unknown TEE ${p.tee}`);
    assert.deepEqual(
      tees.filter((t) => !PLATFORMS.some((p) => p.tee === t)),
      [],
    );
    assert.equal(new Set(TEES.map((t) => t.evidenceOid)).size, TEES.length, 'an evidence OID is listed twice');
    assert.equal(
      new Set(TEES.map((t) => t.referenceValues)).size,
      TEES.length,
      'a reference-value list is listed twice',
    );
  });

  it("the default reference values of a platform are in its TEE's list and name the platform", () => {
    for (const p of PLATFORMS) {
      const refs = withDefaultReferenceValues({}, [p]);
      const list = TEES.find((t) => t.type === p.tee)!.referenceValues;
      assert.deepEqual(Object.keys(refs), [list], p.id);
      for (const entry of refs[list]!) assert.equal(entry.Platform, p.displayName, p.id);
    }
  });

  it('README.md lists the platforms of --platform in table order', () => {
    const row = tableAfter(doc('README.md'), '## `kubectl contrast generate`').find(
      ([flag]) => flag === '`--platform P`',
    );
    assert.ok(row, 'README.md has no --platform row');
    const ids = [...row[1]!.matchAll(/`([a-z0-9][a-z0-9-]*)`/g)].map((m) => m[1]!);
    assert.deepEqual(ids, platformIds());
  });

  it('docs/protocol.md lists the evidence OIDs of the TEEs', () => {
    const rows = tableAfter(doc('docs/protocol.md'), '| OID | evidence |');
    assert.deepEqual(
      rows.map(([oid]) => oid!.replace(/`/g, '')),
      [...EVIDENCE_OIDS],
    );
  });

  it('the help of generate and coordinator render offers exactly the platforms', () => {
    assert.deepEqual(choicesOf(platformOption(helpOf(generateCommand.builder))), platformIds());
    assert.deepEqual(choicesOf(platformOption(helpOf(coordinatorCommand.builder, ['render']))), platformIds());
  });

  it('the help of the Coordinator and the Initializer names every issuer', () => {
    const helps = {
      'coordinator serve': helpOf(coordinatorCommand.builder, ['serve']),
      initializer: helpOf(initializerCommand.builder),
    };
    for (const [command, help] of Object.entries(helps)) {
      const option = platformOption(help);
      for (const issuer of new Set(TEES.map((t) => t.issuer)))
        assert.ok(option.includes(issuer), `${command}: ${issuer}`);
    }
  });
});
