/** zstd (RFC 8878) layers: detected by their magic number; decoding follows in zstd.ts's next version. */
export const ZSTD_MAGIC = 0xfd2fb528;

export class ZstdDecoder {
  constructor(readonly out: (b: Buffer) => boolean) {}
  push(_chunk: Buffer): void {
    throw new Error('zstd-compressed layers are not supported yet; push the image with gzip layers');
  }
  end(): void {}
}
