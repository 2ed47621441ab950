/**
 * Issuer of a pod on the simulated runtime: asks the node's simulated attestation device
 * (src/runtime/sim-device.ts), mounted in every container at SIM_DEVICE_MOUNT, for a report.
 * The node signs it and sets the host data to the pod's initdata hash; this side holds no key
 * and cannot choose the host data, as with configfs-tsm in a confidential VM.
 *
 * Protocol (one request per connection): send exactly 64 bytes of report data, read exactly
 * one 252-byte report, after which the device closes the connection. Anything else is an error.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import {
  SIM_DEVICE_MOUNT,
  SIM_DEVICE_SOCKET,
  SIM_REPORT_SIZE,
  SIM_WARNING,
  parseSimReport,
} from '../attestation/simulated.js';
import { OID_SIMULATED_EVIDENCE } from '../attestation/tees.js';
import type { Evidence, Issuer } from './issuer.js';
import { unixAddress } from './unix-path.js';

/** Whether this container has a simulated device (its socket is mounted). */
export function simDeviceAvailable(dir = SIM_DEVICE_MOUNT): boolean {
  return existsSync(join(dir, SIM_DEVICE_SOCKET));
}

class SimDeviceError extends Error {
  constructor(socket: string, message: string) {
    super(`insecure-sim device ${socket}: ${message}`);
    this.name = 'SimDeviceError';
  }
}

/** One request to the device: the raw report, exactly as many bytes as a report has, or an error. */
export function requestSimDeviceReport(dir: string, reportData: Buffer, timeoutMs = 30_000): Promise<Buffer> {
  const socketPath = join(dir, SIM_DEVICE_SOCKET);
  if (reportData.length !== 64)
    return Promise.reject(
      new SimDeviceError(socketPath, `report data must be exactly 64 bytes, got ${reportData.length}`),
    );
  let address;
  try {
    address = unixAddress(dir, SIM_DEVICE_SOCKET);
  } catch (err) {
    return Promise.reject(new SimDeviceError(socketPath, `cannot open ${dir}: ${(err as Error).message}`));
  }
  const addr = address;
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (err: Error | undefined, report?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      addr.release();
      sock.destroy();
      if (err) reject(err);
      else resolve(report!);
    };
    const sock = connect(addr.path);
    const timer = setTimeout(
      () => finish(new SimDeviceError(socketPath, `no report within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on('connect', () => {
      addr.release();
      sock.write(reportData);
    });
    sock.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > SIM_REPORT_SIZE)
        return finish(new SimDeviceError(socketPath, `the device sent more than ${SIM_REPORT_SIZE} bytes`));
      chunks.push(chunk);
    });
    sock.on('end', () => {
      if (received !== SIM_REPORT_SIZE)
        return finish(
          new SimDeviceError(
            socketPath,
            received === 0
              ? 'the device closed the connection without a report'
              : `the device sent ${received} bytes, a report has ${SIM_REPORT_SIZE}`,
          ),
        );
      finish(undefined, Buffer.concat(chunks));
    });
    sock.on('error', (err: NodeJS.ErrnoException) =>
      finish(
        new SimDeviceError(
          socketPath,
          err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
            ? `not reachable (${err.code}): the node's device daemon is not serving this pod (is the node installer running?)`
            : err.message,
        ),
      ),
    );
  });
}

export class SimDeviceIssuer implements Issuer {
  readonly name = 'insecure-sim';
  private warned = false;

  constructor(
    readonly dir = SIM_DEVICE_MOUNT,
    private readonly timeoutMs = 30_000,
  ) {}

  async issue(reportData: Buffer): Promise<Evidence> {
    if (!this.warned) {
      process.stderr.write(`${SIM_WARNING}\n`);
      this.warned = true;
    }
    const raw = await requestSimDeviceReport(this.dir, reportData, this.timeoutMs);
    const report = parseSimReport(raw); // size, magic and version
    if (!report.reportData.equals(reportData))
      throw new SimDeviceError(
        join(this.dir, SIM_DEVICE_SOCKET),
        'the report does not carry our report data (a report for another request)',
      );
    return { oid: OID_SIMULATED_EVIDENCE, value: raw };
  }
}
