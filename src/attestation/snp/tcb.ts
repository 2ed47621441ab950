import { usesTurinLayout, type SnpProduct } from './product.js';

/**
 * A decoded TCB_VERSION. Milan/Genoa and Turin place the components at different bytes
 * (Turin adds the FMC component at byte 0), so decoding needs the product line.
 */
export interface SnpTcb {
  /** Turin and later only. */
  readonly fmc?: number;
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
}

export type TcbComponent = keyof SnpTcb;

export function decodeTcb(raw: Uint8Array, product: SnpProduct): SnpTcb {
  if (raw.length !== 8) throw new RangeError('TCB_VERSION is 8 bytes');
  if (usesTurinLayout(product)) {
    return { fmc: raw[0]!, bootloader: raw[1]!, tee: raw[2]!, snp: raw[3]!, microcode: raw[7]! };
  }
  return { bootloader: raw[0]!, tee: raw[1]!, snp: raw[6]!, microcode: raw[7]! };
}

const ORDER: TcbComponent[] = ['fmc', 'bootloader', 'tee', 'snp', 'microcode'];

/**
 * The first component where `actual` is below `minimum`, or undefined if every component is at
 * least the minimum. Components absent from `minimum` are not constrained. TCBs are compared
 * per component: a single 64-bit comparison would let a newer microcode hide an old SNP firmware.
 */
export function firstBelow(actual: SnpTcb, minimum: Partial<SnpTcb>): TcbComponent | undefined {
  for (const c of ORDER) {
    const min = minimum[c];
    if (min === undefined) continue;
    if ((actual[c] ?? 0) < min) return c;
  }
  return undefined;
}

/** The first component where the two TCBs differ. */
export function firstDifferent(a: SnpTcb, b: SnpTcb): TcbComponent | undefined {
  return ORDER.find((c) => a[c] !== b[c]);
}

export function formatTcb(t: Partial<SnpTcb>): string {
  return ORDER.filter((c) => t[c] !== undefined)
    .map((c) => `${c}=${t[c]}`)
    .join(' ');
}
