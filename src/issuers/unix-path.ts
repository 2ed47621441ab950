/**
 * The address of a Unix socket in a directory, whatever the directory's length. A socket
 * address holds at most 107 bytes of path (sun_path), and Node 20 silently truncates a longer
 * one (measured: listening on `<100 chars>/tsm.sock` created `<100 chars>/ts`), so it would bind
 * or dial another path. A longer path is reached through a descriptor of the directory
 * (`/proc/self/fd/N/name`, which Linux resolves to the directory itself).
 */
import { closeSync, constants, openSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

const MAX_UNIX_PATH = 107;

export interface UnixAddress {
  path: string;
  /** Close the directory descriptor, if one was opened (after the listener closed, or once connected). */
  release(): void;
}

export function unixAddress(dir: string, name: string): UnixAddress {
  const direct = join(dir, name);
  if (Buffer.byteLength(direct) <= MAX_UNIX_PATH) return { path: direct, release: () => undefined };
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  let open = true;
  return {
    path: `/proc/self/fd/${fd}/${name}`,
    release: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** Why one request on a Unix socket (unixExchange) failed; callers say it in their own words. */
export class UnixExchangeError extends Error {
  constructor(
    readonly kind: 'open' | 'unreachable' | 'timeout' | 'too-long' | 'socket',
    message: string,
  ) {
    super(message);
    this.name = 'UnixExchangeError';
  }
}

/**
 * One request per connection on the socket `name` in `dir`: write `payload`, read what the
 * server sends until it closes, at most `maxBytes` of it, all within `timeoutMs`. Bounded in
 * size and time before the caller looks at a byte; the caller checks what the bytes say.
 */
export function unixExchange(
  dir: string,
  name: string,
  payload: Uint8Array | string,
  limits: { timeoutMs: number; maxBytes: number },
): Promise<Buffer> {
  let address: UnixAddress;
  try {
    address = unixAddress(dir, name);
  } catch (err) {
    return Promise.reject(new UnixExchangeError('open', (err as Error).message));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (err: UnixExchangeError | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      address.release();
      sock.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const sock = connect(address.path);
    const timer = setTimeout(
      () => finish(new UnixExchangeError('timeout', `no answer within ${limits.timeoutMs} ms`)),
      limits.timeoutMs,
    );
    sock.on('connect', () => {
      address.release();
      sock.write(payload);
    });
    sock.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > limits.maxBytes)
        return finish(new UnixExchangeError('too-long', `more than ${limits.maxBytes} bytes`));
      chunks.push(chunk);
    });
    sock.on('end', () => finish(undefined));
    sock.on('error', (err: NodeJS.ErrnoException) =>
      finish(
        new UnixExchangeError(
          err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'unreachable' : 'socket',
          err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? err.code : err.message,
        ),
      ),
    );
  });
}
