/**
 * How much store work completes within one turn of the event loop. A store that writes its keys
 * in one synchronous stretch completes all of them in a single turn; one that yields to the loop
 * between its I/O completes a few per turn. Tests assert on this count, never on how long the
 * loop was blocked (timings belong to the benchmarks).
 */
import type { Store } from '../../src/coordinator/store/interface.js';

const COUNTED = new Set(['get', 'set', 'compareAndSwap']);

export function storeOpsPerTurn<S extends Store>(store: S): { store: S; stop(): number } {
  let inTurn = 0;
  let max = 0;
  let running = true;
  const tick = () => {
    max = Math.max(max, inTurn);
    inTurn = 0;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const counted = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (!COUNTED.has(String(prop))) return value.bind(target);
      return async (...args: unknown[]) => {
        const result: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        inTurn++;
        return result;
      };
    },
  });
  return {
    store: counted,
    stop: () => {
      running = false;
      return Math.max(max, inTurn);
    },
  };
}
