/**
 * `latest-transition.json`: the newest transition of the Coordinator's history that this
 * workspace has seen, so `verify`, `set` and `recover` notice a Coordinator that serves an older
 * or a forked history (for example a restored backup of its store, which would re-activate
 * policies that a later manifest revoked). Every entry of `transitions/latest` in the store is
 * validly signed, so only a client that remembers can tell an old one from the newest.
 *
 *   {"TransitionHash": "<64 hex>", "HistoryLength": <manifests in the history up to it>}
 *
 * Written atomically, and only forward: a history that does not contain the remembered
 * transition is refused until the user accepts it explicitly (`--accept-history`).
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import { sha256 } from '../coordinator/crypto.js';
import { transitionHash, ZERO_HASH } from '../coordinator/history.js';

export const LATEST_TRANSITION_FILE = 'latest-transition.json';

export interface SeenTransition {
  TransitionHash: string;
  HistoryLength: number;
}

export function readSeenTransition(path: string): SeenTransition | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`cannot read the remembered transition: ${(err as Error).message}`, { file: path });
  }
  let v: Partial<SeenTransition>;
  try {
    v = JSON.parse(text) as Partial<SeenTransition>;
  } catch (err) {
    throw new UserError(
      `not valid JSON (${(err as Error).message}); it is written by verify, set and recover: restore it, or delete it to trust the next history the Coordinator serves`,
      { file: path },
    );
  }
  if (
    typeof v !== 'object' ||
    v === null ||
    typeof v.TransitionHash !== 'string' ||
    !/^[0-9a-f]{64}$/.test(v.TransitionHash) ||
    typeof v.HistoryLength !== 'number' ||
    !Number.isInteger(v.HistoryLength) ||
    v.HistoryLength < 1
  ) {
    throw new UserError('expected {"TransitionHash": "<64 lower-case hex>", "HistoryLength": <positive integer>}', {
      file: path,
    });
  }
  return { TransitionHash: v.TransitionHash, HistoryLength: v.HistoryLength };
}

/** The transition hash after each manifest of a history (oldest first). */
export function transitionChain(manifests: readonly Uint8Array[]): Buffer[] {
  const out: Buffer[] = [];
  let prev: Buffer = ZERO_HASH;
  for (const m of manifests) {
    prev = transitionHash({ manifestHash: sha256(m), previousTransitionHash: prev });
    out.push(prev);
  }
  return out;
}

export class RollbackError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'RollbackError';
  }
}

/**
 * Refuse a served history (oldest first; empty when the Coordinator has none) that does not
 * contain the transition this workspace saw, unless `accept`.
 */
export function checkServedHistory(path: string, manifests: readonly Uint8Array[], accept: boolean): void {
  const seen = readSeenTransition(path);
  if (!seen || accept) return;
  const chain = transitionChain(manifests);
  if (chain.some((h) => h.toString('hex') === seen.TransitionHash)) return;
  const seenText = `transition ${seen.TransitionHash} (manifest ${seen.HistoryLength} of the history), which this workspace saw before (${path})`;
  const what =
    manifests.length === 0
      ? `has no manifest history, but this workspace saw ${seenText}: its state was wiped, or it is another Coordinator than the one this workspace set up`
      : `serves a history of ${manifests.length} manifest(s) ending in transition ${chain.at(-1)!.toString('hex')} that does not contain ${seenText}: ` +
        `it serves ${manifests.length < seen.HistoryLength ? 'an older' : 'a forked'} history, for example a restored backup of its store, which can re-activate policies a later manifest revoked`;
  throw new RollbackError(
    `the Coordinator ${what}. Nothing was sent. If this is intended (you replaced or restored the Coordinator's state on purpose), run the command again with --accept-history to trust what it serves from now on`,
  );
}

/**
 * Remember the newest transition of a history the client has verified. Only moves forward: a
 * remembered transition that this history does not contain (another command in this workspace
 * saw a different one meanwhile) is kept, unless `accept` (the user chose --accept-history).
 */
export function rememberHistory(path: string, manifests: readonly Uint8Array[], accept = false): void {
  if (manifests.length === 0) return;
  const chain = transitionChain(manifests).map((h) => h.toString('hex'));
  const latest = chain.at(-1)!;
  let current: SeenTransition | undefined;
  try {
    current = readSeenTransition(path);
  } catch {
    current = undefined;
  }
  if (current?.TransitionHash === latest) return;
  if (current && !accept && !chain.includes(current.TransitionHash)) return;
  writeFileAtomic(
    path,
    `${JSON.stringify({ TransitionHash: latest, HistoryLength: manifests.length } satisfies SeenTransition)}\n`,
    { mode: 0o644 },
  );
}
