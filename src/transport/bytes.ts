/**
 * Byte helpers shared by the transport codecs: a growable receive queue for stream framing
 * and small big/little-endian readers and writers. Every codec throws ChannelError
 * "PROTOCOL" for a malformed frame; an incomplete frame is not an error (decoders return
 * undefined and wait for more bytes).
 */
import { ChannelError } from "./channel.ts";

export function protocolError(message: string): ChannelError {
  return new ChannelError("PROTOCOL", message);
}


export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A FIFO of received bytes: push chunks as they arrive, peek and take whole frames. */
export class ByteQueue {
  private buffer = new Uint8Array(0);
  private start = 0;
  private end = 0;

  get length(): number {
    return this.end - this.start;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.end + chunk.length > this.buffer.length) this.grow(chunk.length);
    this.buffer.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** The byte at `offset` from the head; the caller checks `length` first. */
  at(offset: number): number {
    return this.buffer[this.start + offset] as number;
  }

  /** A view of the first `count` bytes, valid until the next push. */
  peek(count: number): Uint8Array {
    if (count > this.length) throw new RangeError(`peek ${count} of ${this.length} bytes`);
    return this.buffer.subarray(this.start, this.start + count);
  }

  /** Remove and return a copy of the first `count` bytes. */
  take(count: number): Uint8Array {
    const out = this.peek(count).slice();
    this.skip(count);
    return out;
  }

  skip(count: number): void {
    if (count > this.length) throw new RangeError(`skip ${count} of ${this.length} bytes`);
    this.start += count;
    if (this.start === this.end) this.start = this.end = 0;
  }

  clear(): void {
    this.start = this.end = 0;
  }

  private grow(extra: number): void {
    const live = this.length;
    const size = Math.max(64, (live + extra) * 2);
    const next = new Uint8Array(size);
    next.set(this.buffer.subarray(this.start, this.end));
    this.buffer = next;
    this.start = 0;
    this.end = live;
  }
}

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A zero-terminated ASCII string in a fixed-size field (USB/IP path and busid). */
export function writeFixedString(out: Uint8Array, offset: number, size: number, text: string): void {
  if (text.length >= size) throw new RangeError(`"${text}" does not fit in ${size - 1} bytes`);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code > 0x7e) throw new RangeError(`"${text}" is not printable ASCII`);
    out[offset + i] = code;
  }
}

export function readFixedString(bytes: Uint8Array, offset: number, size: number): string {
  let text = "";
  for (let i = 0; i < size; i++) {
    const code = bytes[offset + i] as number;
    if (code === 0) break;
    text += String.fromCharCode(code);
  }
  return text;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}
