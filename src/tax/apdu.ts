/**
 * ISO/IEC 7816-4 command APDUs: encode and parse the four cases, short and extended.
 *
 *   case 1: CLA INS P1 P2
 *   case 2: CLA INS P1 P2 Le            (Le 00 = 256)      | ext: 00 Le1 Le2 (0000 = 65536)
 *   case 3: CLA INS P1 P2 Lc data                           | ext: 00 Lc1 Lc2 data
 *   case 4: CLA INS P1 P2 Lc data Le                        | ext: 00 Lc1 Lc2 data Le1 Le2
 */
export const SHORT_MAX_DATA = 255;
export const SHORT_MAX_LE = 256;
export const EXTENDED_MAX_DATA = 65535;
export const EXTENDED_MAX_LE = 65536;

export interface CommandApdu {
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  data: Uint8Array;
  /** Expected response length; 0 = none (case 1/3). */
  le: number;
  extended: boolean;
}

export type ParseResult = { ok: true; apdu: CommandApdu } | { ok: false; reason: string };

function u8(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xff) throw new RangeError(`${what} must be a byte, got ${n}`);
  return n;
}

/** Build a command; extended lengths are used when the data or Le do not fit short ones (or forced). */
export function encodeCommand(c: { cla: number; ins: number; p1?: number; p2?: number; data?: Uint8Array; le?: number; extended?: boolean }): Uint8Array {
  const data = c.data ?? new Uint8Array(0);
  const le = c.le ?? 0;
  if (data.length > EXTENDED_MAX_DATA) throw new RangeError(`APDU data is at most ${EXTENDED_MAX_DATA} bytes`);
  if (!Number.isInteger(le) || le < 0 || le > EXTENDED_MAX_LE) throw new RangeError(`Le must be 0..${EXTENDED_MAX_LE}`);
  const ext = c.extended === true || data.length > SHORT_MAX_DATA || le > SHORT_MAX_LE;
  const head = [u8(c.cla, "CLA"), u8(c.ins, "INS"), u8(c.p1 ?? 0, "P1"), u8(c.p2 ?? 0, "P2")];
  const out: number[] = [...head];
  if (data.length > 0) {
    if (ext) out.push(0, data.length >> 8, data.length & 0xff);
    else out.push(data.length);
  }
  const bytes = new Uint8Array(out.length + data.length + (le ? (ext ? (data.length ? 2 : 3) : 1) : 0));
  bytes.set(out);
  bytes.set(data, out.length);
  let p = out.length + data.length;
  if (le) {
    const v = le === (ext ? EXTENDED_MAX_LE : SHORT_MAX_LE) ? 0 : le;
    if (ext) {
      if (!data.length) bytes[p++] = 0;
      bytes[p++] = v >> 8;
      bytes[p++] = v & 0xff;
    } else bytes[p++] = v;
  }
  return bytes;
}

/** Parse a command APDU; never throws. */
export function parseCommand(b: Uint8Array): ParseResult {
  if (b.length < 4) return { ok: false, reason: "APDU shorter than 4 bytes" };
  const [cla, ins, p1, p2] = [b[0] as number, b[1] as number, b[2] as number, b[3] as number];
  const mk = (data: Uint8Array, le: number, extended: boolean): ParseResult => ({ ok: true, apdu: { cla, ins, p1, p2, data, le, extended } });
  const n = b.length - 4;
  if (n === 0) return mk(new Uint8Array(0), 0, false);
  const b4 = b[4] as number;
  if (n === 1) return mk(new Uint8Array(0), b4 === 0 ? SHORT_MAX_LE : b4, false);
  if (b4 !== 0) {
    // short case 3 or 4
    if (n === 1 + b4) return mk(b.slice(5, 5 + b4), 0, false);
    if (n === 2 + b4) {
      const le = b[5 + b4] as number;
      return mk(b.slice(5, 5 + b4), le === 0 ? SHORT_MAX_LE : le, false);
    }
    return { ok: false, reason: `Lc ${b4} does not match the ${n - 1} bytes that follow` };
  }
  // extended: 00 then two bytes
  if (n === 3) {
    const le = ((b[5] as number) << 8) | (b[6] as number);
    return mk(new Uint8Array(0), le === 0 ? EXTENDED_MAX_LE : le, true);
  }
  if (n < 3) return { ok: false, reason: "truncated extended length" };
  const lc = ((b[5] as number) << 8) | (b[6] as number);
  if (lc === 0) return { ok: false, reason: "extended Lc of 0" };
  if (n === 3 + lc) return mk(b.slice(7, 7 + lc), 0, true);
  if (n === 5 + lc) {
    const le = ((b[7 + lc] as number) << 8) | (b[8 + lc] as number);
    return mk(b.slice(7, 7 + lc), le === 0 ? EXTENDED_MAX_LE : le, true);
  }
  return { ok: false, reason: `extended Lc ${lc} does not match the ${n - 3} bytes that follow` };
}

export interface ResponseApdu {
  data: Uint8Array;
  sw: number;
}

export function splitResponse(r: Uint8Array): ResponseApdu {
  if (r.length < 2) throw new RangeError(`response shorter than 2 bytes (${r.length})`);
  return { data: r.slice(0, r.length - 2), sw: ((r[r.length - 2] as number) << 8) | (r[r.length - 1] as number) };
}

export function joinResponse(data: Uint8Array, sw: number): Uint8Array {
  const out = new Uint8Array(data.length + 2);
  out.set(data);
  out[data.length] = sw >> 8;
  out[data.length + 1] = sw & 0xff;
  return out;
}
