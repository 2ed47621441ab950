/**
 * docs/benchmarks.md against bench/results/latest.json: the report is what the results render
 * to, and every figure is named by what it measures (issue 18), not by its path in the JSON.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { computeGoals } from '../../bench/lib/goals.js';
import { describeMetric, renderMarkdown } from '../../bench/lib/report.js';
import { REPO_ROOT } from '../helpers/cli.js';

const results = JSON.parse(readFileSync(join(REPO_ROOT, 'bench', 'results', 'latest.json'), 'utf8'));
const report = readFileSync(join(REPO_ROOT, 'docs', 'benchmarks.md'), 'utf8');

describe('docs/benchmarks.md', () => {
  it('is what bench/results/latest.json renders to (npm run bench -- --report-only)', () => {
    assert.equal(renderMarkdown({ ...results, goals: computeGoals(results.results) }), report);
  });

  it('names every figure in words, without array indices or a word twice in a row', () => {
    const figures = [...report.matchAll(/^\| ([^|]+) \|/gm)].map((m) => m[1]!.trim());
    assert.ok(figures.length > 50, `${figures.length} figures`);
    const bad = figures.filter((f) => /\[\d+\]|results\[|\b(\w+) \1\b/.test(f));
    assert.deepEqual(bad, []);
  });

  it('turns metric paths into names with units', () => {
    assert.equal(describeMetric('newMeshCert.wallSeconds'), 'new mesh cert › wall time (s)');
    assert.equal(describeMetric('coldSequential.cpuSeconds'), 'cold sequential › cpu time (s)');
    assert.equal(describeMetric('allowed.perCpuSecond'), 'allowed › rate (per CPU-second)');
    assert.equal(
      describeMetric('results[2].warmSeconds', { 'results[2]': '1000 workloads' }),
      '1000 workloads › warm wall time (s)',
    );
  });
});
