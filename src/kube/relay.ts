/** The port-forwarder pod's relay: accept TCP connections and splice each to a fixed target. */
import { connect, createServer, type Server } from 'node:net';

export function startRelay(
  listenPort: number,
  target: { host: string; port: number },
  host = '0.0.0.0',
): Promise<Server> {
  // Half-open on both sides: a client that finished sending still gets the whole answer.
  const server = createServer({ allowHalfOpen: true }, (inbound) => {
    const outbound = connect({ port: target.port, host: target.host, allowHalfOpen: true });
    inbound.pipe(outbound).pipe(inbound);
    const end = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', end);
    outbound.on('error', end);
    inbound.on('close', end);
    outbound.on('close', end);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, host, () => resolve(server));
  });
}
