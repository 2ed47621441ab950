/**
 * The hand-written copies of the tables in src/ — options of the transform, workload kinds,
 * annotations, commands — must say what the tables say, and help texts must be made from them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yargs, { type Argv } from 'yargs';
import { REPO_ROOT } from '../helpers/cli.js';
import { TRANSFORM_OPTIONS } from '../../src/cli/options-table.js';
import { COMMAND_LOADERS } from '../../src/cli/command-index.js';
import { generateCommand } from '../../src/cli/generate.js';
import { helmPostRenderCommand } from '../../src/cli/helm-plugin.js';
import { kustomizeCommand } from '../../src/cli/kustomize.js';
import { WORKLOAD_KINDS, fieldPath } from '../../src/workloads/kinds.js';
import { ANNOTATIONS } from '../../src/transforms/annotations.js';

const doc = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');

/** The rows of the markdown table that follows `heading` (the first table after it). */
function tableAfter(text: string, heading: string): string[][] {
  const start = text.indexOf(heading);
  assert.ok(start >= 0, `no "${heading}"`);
  const lines = text.slice(start).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .replace(/\\\|/g, '\u0000')
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim().replace(/\u0000/g, '|')),
    );
  }
  return rows;
}

/** The long flags written in a cell: `--no-cache` counts as `cache`. */
function flagsIn(cell: string): string[] {
  return [...cell.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]!.replace(/^no-/, ''));
}

/** The flags a command's help lists under Options, each by its first long name (aliases left out). */
function flagsOfHelp(help: string): string[] {
  const options = help.slice(
    help.indexOf('Options:'),
    help.includes('Examples:') ? help.indexOf('Examples:') : undefined,
  );
  return options.split('\n').flatMap((line) => {
    const m = /^\s+(?:-[a-zA-Z], )?--([a-z][a-z-]*)/.exec(line);
    return m ? [m[1]!] : [];
  });
}

function helpOf(builder: unknown): string {
  let help = '';
  (builder as (y: Argv) => Argv)(yargs([]))
    .scriptName('kubectl-contrast')
    .parseSync(['--help'], {}, (_err, _argv, output) => {
      help = output;
    });
  return help;
}

describe('tables in src/ and their copies in docs and help', () => {
  it('docs/helm-kustomize.md lists every transform option with its environment variable and config field', () => {
    const rows = tableAfter(doc('docs/helm-kustomize.md'), '## Options');
    const documented = rows.map(([flag, env, field]) => ({
      flags: flagsIn(flag!),
      env: /CONTRAST_[A-Z_]+/.exec(env!)?.[0],
      field: /`([A-Za-z]+)/.exec(field!)?.[1],
      list: /\(list\)/.test(field!),
      separator: /\(`(.)`-separated\)/.exec(env!)?.[1],
      alias: /^`-([a-z]),/.exec(flag!)?.[1],
    }));
    const expected = TRANSFORM_OPTIONS.map((o) => ({
      flags: [o.flag],
      env: o.env,
      field: o.field,
      list: o.kind === 'list',
      separator: o.kind === 'list' ? o.separator : undefined,
      alias: 'alias' in o && o.alias.length === 1 ? o.alias : undefined,
    }));
    const key = (x: { flags: string[] }) => x.flags.join();
    assert.deepEqual(
      [...documented].sort((a, b) => key(a).localeCompare(key(b))),
      [...expected].sort((a, b) => key(a).localeCompare(key(b))),
    );
  });

  it('README.md lists exactly the flags of generate (kubectl flags aside)', () => {
    const rows = tableAfter(doc('README.md'), '## `kubectl contrast generate`');
    const documented = new Set(rows.flatMap(([flag]) => flagsIn(flag!)));
    const kubectl = ['kubeconfig', 'context', 'namespace', 'request-timeout'];
    const flags = flagsOfHelp(helpOf(generateCommand.builder)).filter(
      (k) => !kubectl.includes(k) && !['help', 'version'].includes(k),
    );
    assert.deepEqual([...documented].filter((f) => !kubectl.includes(f)).sort(), flags.sort());
  });

  it('the help texts of the renderers name every environment variable and config field', () => {
    const helm = helpOf(helmPostRenderCommand.builder);
    for (const o of TRANSFORM_OPTIONS) {
      assert.match(helm, new RegExp(`--${o.flag}\\b`), o.flag);
      assert.ok(helm.includes(o.env), o.env);
    }
    const kustomize = helpOf(kustomizeCommand.builder);
    for (const o of TRANSFORM_OPTIONS) assert.ok(kustomize.includes(o.field), o.field);
  });

  it('docs/generate.md names every workload kind where its pod template is', () => {
    const rows = tableAfter(doc('docs/generate.md'), 'The workload kinds and where their pod templates are');
    const documented = rows.flatMap(([kinds, path]) => [...kinds!.matchAll(/`(\w+)`/g)].map((m) => `${m[1]}: ${path}`));
    const expected = WORKLOAD_KINDS.map(
      (k) => `${k.kind}: ${k.templatePath.length === 0 ? 'the Pod itself' : `\`${fieldPath(k.templatePath)}\``}`,
    );
    assert.deepEqual(documented.sort(), expected.sort());
  });

  it('README.md lists every Contrast pod-template annotation', () => {
    const rows = tableAfter(doc('README.md'), 'Pod-template annotations');
    assert.deepEqual(rows.map(([name]) => name!.replace(/`/g, '')).sort(), Object.values(ANNOTATIONS).sort());
  });

  it('README.md links every command family', () => {
    const rows = tableAfter(doc('README.md'), '## Commands');
    const documented = new Set(rows.flatMap(([cell]) => [...cell!.matchAll(/`([a-z-]+)/g)].map((m) => m[1]!)));
    const hidden = ['__complete', 'port-forwarder'];
    assert.deepEqual(
      Object.keys(COMMAND_LOADERS).filter((c) => !hidden.includes(c) && !documented.has(c)),
      [],
    );
  });
});
