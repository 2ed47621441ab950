/**
 * One concrete string that a policy regular expression of the restricted form our policy data
 * uses matches: the self-check puts it in the requests it makes up (src/policy/check.ts).
 * Patterns also come from a user's settings.json, so reading one is strict and bounded: an
 * unterminated class, group or repeat, or a sample that would be too long, is a UserError, never
 * a loop or a huge string.
 */
import { UserError } from '../util/errors.js';

/** RE2 (OPA's WebAssembly) and Rust's regex (regorus, in the agent) refuse counted repeats above this. */
const MAX_REPEAT = 1000;
/** No value of a request needs a longer sample; nested repeats could ask for gigabytes. */
const MAX_SAMPLE = 64 * 1024;
const MAX_DEPTH = 32;
/** What an escape stands for in a sample: one character it matches. */
const ESCAPE_SAMPLES: Record<string, string> = { d: '0', w: 'x', s: ' ', D: 'x', W: '-', S: 'x' };

export function sampleRegex(re: string): string {
  let i = 0;
  const fail = (what: string): never => {
    throw new UserError(`the regular expression ${JSON.stringify(re)} has ${what} (at character ${i + 1})`);
  };
  const seq = (depth: number): string => {
    if (depth > MAX_DEPTH) fail(`groups nested deeper than ${MAX_DEPTH}`);
    let out = '';
    while (i < re.length && re[i] !== ')' && re[i] !== '|') {
      const c = re[i]!;
      let atom: string;
      if (c === '^' || c === '$') {
        i += 1;
        continue;
      }
      if (c === '\\') {
        if (i + 1 >= re.length) fail('a backslash at its end');
        const e = re[i + 1]!;
        atom = ESCAPE_SAMPLES[e] ?? e;
        i += 2;
      } else if (c === '[') {
        const end = re.indexOf(']', i + 2);
        if (end < 0) fail('a character class without its ]');
        const cls = re.slice(i + 1, end);
        atom = cls[0] === '^' ? 'x' : cls[0] === '\\' ? (ESCAPE_SAMPLES[cls[1]!] ?? cls[1]!) : cls[0]!;
        i = end + 1;
      } else if (c === '(') {
        i += 1;
        if (re.startsWith('?:', i)) i += 2;
        const alts = [seq(depth + 1)];
        while (re[i] === '|') {
          i += 1;
          alts.push(seq(depth + 1));
        }
        if (re[i] !== ')') fail('a group without its )');
        i += 1;
        atom = alts[0]!;
      } else if (c === '.') {
        atom = 'x';
        i += 1;
      } else {
        atom = c;
        i += 1;
      }
      const q = re[i];
      if (q === '?' || q === '*') {
        i += 1;
        atom = '';
      } else if (q === '+') i += 1;
      else if (q === '{') {
        const end = re.indexOf('}', i);
        if (end < 0) fail('a repeat without its }');
        const counts = /^(\d+)(?:,(\d*))?$/.exec(re.slice(i + 1, end));
        if (!counts) fail('a repeat that is not {n}, {n,} or {n,m}');
        const n = Number(counts![1]);
        if (n > MAX_REPEAT || Number(counts![2] || 0) > MAX_REPEAT) fail(`a repeat count above ${MAX_REPEAT}`);
        if (atom.length * n > MAX_SAMPLE) fail(`no match shorter than ${MAX_SAMPLE} characters`);
        atom = atom.repeat(n);
        i = end + 1;
      }
      out += atom;
      if (out.length > MAX_SAMPLE) fail(`no match shorter than ${MAX_SAMPLE} characters`);
    }
    return out;
  };
  const out = seq(0);
  // The first alternative at the top is the sample; a ) here closes no group.
  if (re[i] === ')') fail('a ) without its (');
  return out;
}
