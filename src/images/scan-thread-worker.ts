/** The worker thread of scan-thread.ts: runs each layer scan it is sent, chunk by chunk. */
import { parentPort } from 'node:worker_threads';
import { LayerScan } from './layer-scan.js';
import type { ScanReply, ScanRequest } from './scan-thread.js';

const port = parentPort!;
const scans = new Map<number, LayerScan>();
const reply = (m: ScanReply): void => port.postMessage(m);

port.on('message', (m: ScanRequest) => {
  if (m.t === 'start') {
    const id = m.id;
    scans.set(
      id,
      new LayerScan(m.wanted, m.digest, {
        stop: () => reply({ t: 'stop', id }),
        done: (outcome) => {
          scans.delete(id);
          reply(outcome instanceof Error ? { t: 'failed', id, message: outcome.message } : { t: 'done', id, outcome });
        },
      }),
    );
    return;
  }
  const scan = scans.get(m.id);
  if (!scan) {
    // Already done: a data message still owes its ack.
    if (m.t === 'data') reply({ t: 'ack', id: m.id });
    return;
  }
  switch (m.t) {
    case 'data': {
      const chunk = Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength);
      if (scan.write(chunk)) reply({ t: 'ack', id: m.id });
      else scan.onDrain(() => reply({ t: 'ack', id: m.id }));
      break;
    }
    case 'end':
      scan.end();
      break;
    case 'abort':
      scan.abort();
      break;
  }
});
