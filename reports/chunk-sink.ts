/**
 * The writable end of a render: bytes are cut into chunks of `chunkBytes` (1 MiB) and each is
 * stored (`store(seq, chunk)`, awaited: backpressure reaches the zip) while the SHA-256 and the
 * byte count are computed on the fly. Memory: at most one chunk plus the stream's high-water mark.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';

export const CHUNK_BYTES = 1024 * 1024;

export class ChunkSink extends Writable {
  readonly #hash = createHash('sha256');
  readonly #store: (seq: number, data: Buffer) => Promise<void>;
  readonly #chunkBytes: number;
  #parts: Buffer[] = [];
  #partBytes = 0;
  #seq = 0;
  #bytes = 0;

  constructor(store: (seq: number, data: Buffer) => Promise<void>, chunkBytes = CHUNK_BYTES) {
    super({ highWaterMark: chunkBytes });
    this.#store = store;
    this.#chunkBytes = chunkBytes;
  }

  /** Bytes received so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Chunks stored so far. */
  get chunks(): number {
    return this.#seq;
  }

  /** The hex SHA-256 of everything written (call once, after 'finish'). */
  digest(): string {
    return this.#hash.digest('hex');
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    this.#parts.push(chunk);
    this.#partBytes += chunk.length;
    if (this.#partBytes < this.#chunkBytes) return cb();
    this.#flushFull().then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    const rest = Buffer.concat(this.#parts);
    this.#parts = [];
    this.#partBytes = 0;
    if (rest.length === 0) return cb();
    this.#store(this.#seq++, rest).then(() => cb(), cb);
  }

  async #flushFull(): Promise<void> {
    let all = Buffer.concat(this.#parts);
    while (all.length >= this.#chunkBytes) {
      await this.#store(this.#seq++, all.subarray(0, this.#chunkBytes));
      all = all.subarray(this.#chunkBytes);
    }
    this.#parts = all.length ? [Buffer.from(all)] : [];
    this.#partBytes = all.length;
  }
}
