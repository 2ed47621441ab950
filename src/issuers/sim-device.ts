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
import { unixExchange, type UnixExchangeError } from './unix-path.js';

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
  return unixExchange(dir, SIM_DEVICE_SOCKET, reportData, { timeoutMs, maxBytes: SIM_REPORT_SIZE }).then(
    (report) => {
      if (report.length !== SIM_REPORT_SIZE)
        throw new SimDeviceError(
          socketPath,
          report.length === 0
            ? 'the device closed the connection without a report'
            : `the device sent ${report.length} bytes, a report has ${SIM_REPORT_SIZE}`,
        );
      return report;
    },
    (err: UnixExchangeError) => {
      throw new SimDeviceError(
        socketPath,
        err.kind === 'open'
          ? `cannot open ${dir}: ${err.message}`
          : err.kind === 'timeout'
            ? `no report within ${timeoutMs} ms`
            : err.kind === 'too-long'
              ? `the device sent more than ${SIM_REPORT_SIZE} bytes`
              : err.kind === 'unreachable'
                ? `not reachable (${err.message}): the node's device daemon is not serving this pod (is the node installer running?)`
                : err.message,
      );
    },
  );
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
