/** Median and spread of every numeric value that repeated benchmark runs printed. */
import { platform, release } from 'node:os';

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Flatten `{a: {b: [1, {c: 2}]}}` to `{"a.b[0]": 1, "a.b[1].c": 2}` (numbers only). */
export function numericLeaves(value: unknown, prefix = '', out: Record<string, number> = {}): Record<string, number> {
  if (typeof value === 'number' && Number.isFinite(value)) out[prefix] = value;
  else if (Array.isArray(value)) value.forEach((v, i) => numericLeaves(v, `${prefix}[${i}]`, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) numericLeaves(v, prefix ? `${prefix}.${k}` : k, out);
  }
  return out;
}

export function summarise(runs: unknown[]): Record<string, Summary> {
  const byKey = new Map<string, number[]>();
  for (const run of runs) {
    for (const [k, v] of Object.entries(numericLeaves(run))) byKey.set(k, [...(byKey.get(k) ?? []), v]);
  }
  const out: Record<string, Summary> = {};
  for (const [k, values] of byKey)
    out[k] = { median: median(values), min: Math.min(...values), max: Math.max(...values), n: values.length };
  if (runs.length === 0) out['v'] = { median: NaN, min: NaN, max: NaN, n: 0 };
  return out;
}

export function machineSummary(): { node: string; os: string } {
  return { node: process.version, os: `${platform()} ${release()}` };
}
