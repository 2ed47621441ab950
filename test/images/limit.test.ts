import assert from 'node:assert/strict';
import { Limiter } from '../../src/images/limit.js';

/** A task that runs until released, recording how many run at once (and how many hold a slot). */
function probe() {
  const state = { running: 0, withSlot: 0, maxRunning: 0, maxWithSlot: 0, started: [] as string[] };
  const gates = new Map<string, { handOff: () => void; finish: () => void }>();
  const task = (name: string) => (handOff: () => void) =>
    new Promise<string>((resolve) => {
      state.started.push(name);
      state.running++;
      state.withSlot++;
      state.maxRunning = Math.max(state.maxRunning, state.running);
      state.maxWithSlot = Math.max(state.maxWithSlot, state.withSlot);
      let holds = true;
      gates.set(name, {
        handOff: () => {
          handOff();
          if (holds) state.withSlot--;
          holds = false;
        },
        finish: () => {
          state.running--;
          if (holds) state.withSlot--;
          resolve(name);
        },
      });
    });
  return { state, gates, task };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('images: the resolver limiter', () => {
  it('runs at most `limit` tasks, in arrival order', async () => {
    const limiter = new Limiter(2);
    const { state, gates, task } = probe();
    const all = ['a', 'b', 'c', 'd'].map((n) => limiter.run(task(n)));
    await tick();
    assert.deepEqual(state.started, ['a', 'b']);
    gates.get('b')!.finish();
    await tick();
    assert.deepEqual(state.started, ['a', 'b', 'c']);
    for (const n of ['a', 'c']) gates.get(n)!.finish();
    await tick();
    gates.get('d')!.finish();
    assert.deepEqual(await Promise.all(all), ['a', 'b', 'c', 'd']);
    assert.equal(state.maxRunning, 2);
  });

  it('starts the next task when one hands its slot on, and lets at most `limit` run on without one', async () => {
    const limiter = new Limiter(1);
    const { state, gates, task } = probe();
    const all = ['a', 'b', 'c'].map((n) => limiter.run(task(n)));
    await tick();
    assert.deepEqual(state.started, ['a']);
    gates.get('a')!.handOff();
    await tick();
    assert.deepEqual(state.started, ['a', 'b'], 'b starts while a finishes');
    // a still runs without a slot: b's hand-off has no room and keeps b's slot.
    gates.get('b')!.handOff();
    await tick();
    assert.deepEqual(state.started, ['a', 'b'], 'c waits: no more than twice the limit run');
    gates.get('a')!.finish();
    await tick();
    assert.deepEqual(state.started, ['a', 'b'], "a's end frees no slot (it had handed its own on)");
    gates.get('b')!.finish();
    await tick();
    assert.deepEqual(state.started, ['a', 'b', 'c']);
    gates.get('c')!.handOff();
    gates.get('c')!.handOff();
    gates.get('c')!.finish();
    assert.deepEqual(await Promise.all(all), ['a', 'b', 'c']);
    assert.equal(state.maxRunning, 2);
    assert.equal(state.maxWithSlot, 1);
  });

  it('gives a slot back once when a task fails after handing it on', async () => {
    const limiter = new Limiter(1);
    await assert.rejects(
      limiter.run(async (handOff) => {
        handOff();
        handOff();
        throw new Error('broke');
      }),
      /broke/,
    );
    const { state, gates, task } = probe();
    const all = ['a', 'b'].map((n) => limiter.run(task(n)));
    await tick();
    assert.deepEqual(state.started, ['a'], 'the failed task left exactly one slot');
    gates.get('a')!.finish();
    await tick();
    gates.get('b')!.finish();
    await Promise.all(all);
  });
});
