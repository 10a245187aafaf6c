/**
 * The serial framing between a host and a Ukey dev board (documented byte by byte in
 * docs/transports.md):
 *
 *   offset  size  field
 *   0       2     SOF      0xA5 0x5A
 *   2       2     LEN      payload length, big-endian, 0..SERIAL_MAX_PAYLOAD
 *   4       1     SEQ      chosen by the host; the answer repeats it
 *   5       1     TYPE     APDU 0x01, POWER_ON 0x02, POWER_OFF 0x03, RESET 0x04 (host to device);
 *                          RESPONSE 0x81, ATR 0x82, ACK 0x83, ERROR 0xEE (device to host)
 *   6       1     HCRC     CRC-8 (poly 0x07, init 0) of LEN, SEQ, TYPE
 *   7       LEN   PAYLOAD
 *   7+LEN   2     CRC      CRC-16/CCITT-FALSE of bytes 2 .. 6+LEN, big-endian
 *
 * The header check lets a receiver reject a garbage length at once instead of waiting for
 * 64 KiB that never come. Resynchronisation: on a bad SOF, HCRC, LEN or CRC the receiver
 * drops one byte and hunts for the next SOF; a partial frame older than the inter-byte
 * timeout is dropped the same way.
 */
import { ByteQueue } from "./bytes.ts";

export const SERIAL_SOF0 = 0xa5;
export const SERIAL_SOF1 = 0x5a;
export const SERIAL_HEADER_BYTES = 7;
export const SERIAL_CRC_BYTES = 2;
export const SERIAL_OVERHEAD_BYTES = SERIAL_HEADER_BYTES + SERIAL_CRC_BYTES;
export const SERIAL_MAX_PAYLOAD = 0xffff;

export const TYPE_APDU = 0x01;
export const TYPE_POWER_ON = 0x02;
export const TYPE_POWER_OFF = 0x03;
export const TYPE_RESET = 0x04;
export const TYPE_RESPONSE = 0x81;
export const TYPE_ATR = 0x82;
export const TYPE_ACK = 0x83;
export const TYPE_ERROR = 0xee;

/** The one payload byte of an ERROR frame. */
export const ERROR_CARD_MUTE = 0x01;
export const ERROR_NOT_POWERED = 0x02;
export const ERROR_BAD_FRAME = 0x03;
export const ERROR_UNKNOWN_TYPE = 0x04;

export const DEFAULT_BAUD_RATE = 115200;
/** A partial frame older than this is garbage. */
export const INTER_BYTE_TIMEOUT_MS = 100;

export interface SerialFrame {
  seq: number;
  type: number;
  payload: Uint8Array;
}

const CRC8_TABLE = makeCrc8Table(0x07);
const CRC16_TABLE = makeCrc16Table(0x1021);

function makeCrc8Table(poly: number): Uint8Array {
  const table = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let b = 0; b < 8; b++) c = c & 0x80 ? ((c << 1) ^ poly) & 0xff : (c << 1) & 0xff;
    table[i] = c;
  }
  return table;
}

function makeCrc16Table(poly: number): Uint16Array {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let b = 0; b < 8; b++) c = c & 0x8000 ? ((c << 1) ^ poly) & 0xffff : (c << 1) & 0xffff;
    table[i] = c;
  }
  return table;
}

/** CRC-8, poly 0x07, init 0, no reflection ("123456789" -> 0xF4). */
export function crc8(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0;
  for (let i = start; i < end; i++) c = CRC8_TABLE[c ^ (bytes[i] as number)] as number;
  return c;
}

/** CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF ("123456789" -> 0x29B1). */
export function crc16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffff;
  for (let i = start; i < end; i++) c = ((c << 8) & 0xffff) ^ (CRC16_TABLE[((c >> 8) ^ (bytes[i] as number)) & 0xff] as number);
  return c;
}

export function encodeSerialFrame(frame: SerialFrame): Uint8Array {
  const n = frame.payload.length;
  if (n > SERIAL_MAX_PAYLOAD) throw new RangeError(`serial payload of ${n} bytes exceeds ${SERIAL_MAX_PAYLOAD}`);
  const out = new Uint8Array(SERIAL_OVERHEAD_BYTES + n);
  out[0] = SERIAL_SOF0;
  out[1] = SERIAL_SOF1;
  out[2] = n >> 8;
  out[3] = n & 0xff;
  out[4] = frame.seq & 0xff;
  out[5] = frame.type;
  out[6] = crc8(out, 2, 6);
  out.set(frame.payload, SERIAL_HEADER_BYTES);
  const crc = crc16(out, 2, SERIAL_HEADER_BYTES + n);
  out[SERIAL_HEADER_BYTES + n] = crc >> 8;
  out[SERIAL_HEADER_BYTES + n + 1] = crc & 0xff;
  return out;
}

export interface DeframeResult {
  frames: SerialFrame[];
  /** Bytes dropped while hunting for a frame (garbage, bad checks). */
  dropped: number;
  /** Frames whose header was sound but whose CRC failed: the sender may be told (by seq). */
  corrupt: { seq: number; type: number }[];
}

/** Incremental receiver: push bytes as they come, get whole, checked frames out. */
export class SerialDeframer {
  private readonly queue = new ByteQueue();
  private partialSince: number | undefined;

  constructor(private readonly maxPayload = SERIAL_MAX_PAYLOAD) {}

  get buffered(): number {
    return this.queue.length;
  }

  push(chunk: Uint8Array, nowMs = 0): DeframeResult {
    const result: DeframeResult = { frames: [], dropped: 0, corrupt: [] };
    this.queue.push(chunk);
    this.drain(result);
    this.partialSince = this.queue.length ? (this.partialSince ?? nowMs) : undefined;
    return result;
  }

  /** Drop a partial frame that has waited longer than `timeoutMs`; returns bytes dropped. */
  expire(nowMs: number, timeoutMs = INTER_BYTE_TIMEOUT_MS): DeframeResult {
    const result: DeframeResult = { frames: [], dropped: 0, corrupt: [] };
    if (this.partialSince === undefined || nowMs - this.partialSince < timeoutMs || this.queue.length === 0) return result;
    this.queue.skip(1);
    result.dropped++;
    this.drain(result);
    this.partialSince = this.queue.length ? nowMs : undefined;
    return result;
  }

  private drain(result: DeframeResult): void {
    for (;;) {
      const q = this.queue;
      if (q.length === 0) return;
      if (q.at(0) !== SERIAL_SOF0 || (q.length > 1 && q.at(1) !== SERIAL_SOF1)) {
        q.skip(1);
        result.dropped++;
        continue;
      }
      if (q.length < SERIAL_HEADER_BYTES) return;
      const header = q.peek(SERIAL_HEADER_BYTES);
      const length = ((header[2] as number) << 8) | (header[3] as number);
      if (crc8(header, 2, 6) !== header[6] || length > this.maxPayload) {
        q.skip(1);
        result.dropped++;
        continue;
      }
      const total = SERIAL_OVERHEAD_BYTES + length;
      if (q.length < total) return;
      const bytes = q.peek(total);
      const crc = ((bytes[total - 2] as number) << 8) | (bytes[total - 1] as number);
      if (crc16(bytes, 2, total - SERIAL_CRC_BYTES) !== crc) {
        result.corrupt.push({ seq: header[4] as number, type: header[5] as number });
        q.skip(1);
        result.dropped++;
        continue;
      }
      const frame = q.take(total);
      result.frames.push({ seq: frame[4] as number, type: frame[5] as number, payload: frame.subarray(SERIAL_HEADER_BYTES, total - SERIAL_CRC_BYTES) });
    }
  }
}
