/**
 * Secure messaging between the bureau (issuer) and the card.
 *
 * Authentication: the card answers GET CHALLENGE with 16 random bytes RC; the bureau
 * sends EXTERNAL AUTHENTICATE with SM4-ECB(K, RC), K the card's bureau key. On success
 * both sides derive session keys
 *     Kenc = SM4-ECB(K, RC xor 01..01),  Kmac = SM4-ECB(K, RC xor 02..02)
 * and every bureau write is a CLA 84 command whose data field is
 *     counter (u32, strictly increasing in the session, first = 1)
 *  || C   = SM4-CBC(Kenc, IV = SM4-ECB(Kenc, counter as 16 bytes), ISO 9797-1 M2 pad(plain))
 *  || MAC = first 8 bytes of SM4-CBC-MAC(Kmac, CLA INS P1 P2 || counter || C)
 * A wrong MAC is refused (6988), an old counter is a replay (9413); both change nothing.
 * The session ends at power-off, reset, SELECT, CLEAR SECURITY STATE or a failed MAC.
 */
import { padIso9797M2, sm4CbcMac, sm4DecryptCbc, sm4EncryptCbc, sm4EncryptEcb, unpadIso9797M2, SM4_BLOCK_BYTES, SM4_KEY_BYTES } from "../crypto/index.ts";
import { bytesEqual, concatBytes } from "./bytes.ts";
import { E, TaxError } from "./errors.ts";
import { CHALLENGE_BYTES, CLA_SM } from "./interface.ts";
import { encodeCommand } from "./apdu.ts";

export const SM_MAC_BYTES = 8;
export const SM_COUNTER_BYTES = 4;
/** Largest plaintext a secure message may carry. */
export const SM_MAX_PLAIN = 4096;

/**
 * The transport (factory) issuer key every card leaves the factory with; personalization
 * replaces it by the card key. A stand-in: real products inject one per batch.
 */
export const FACTORY_ISSUER_KEY = Uint8Array.from(Buffer.from("5441582d554b45592d464143544f5259", "hex")); // "TAX-UKEY-FACTORY"

/** The card key the bureau derives from its master key and the card serial: SM4-ECB(master, pad16(serial)). */
export function deriveCardKey(masterKey: Uint8Array, serial: string): Uint8Array {
  const block = new Uint8Array(SM4_BLOCK_BYTES);
  const s = new TextEncoder().encode(serial);
  if (s.length > SM4_BLOCK_BYTES) throw new RangeError(`serial must be at most ${SM4_BLOCK_BYTES} bytes`);
  block.set(s);
  return sm4EncryptEcb(masterKey, block);
}

export function authCryptogram(key: Uint8Array, challenge: Uint8Array): Uint8Array {
  if (challenge.length !== CHALLENGE_BYTES) throw new RangeError(`challenge must be ${CHALLENGE_BYTES} bytes`);
  return sm4EncryptEcb(key, challenge);
}

export interface SmKeys {
  enc: Uint8Array;
  mac: Uint8Array;
}

export function deriveSessionKeys(key: Uint8Array, challenge: Uint8Array): SmKeys {
  if (key.length !== SM4_KEY_BYTES) throw new RangeError("bureau key must be 16 bytes");
  const x = (v: number) => challenge.map((b) => b ^ v);
  return { enc: sm4EncryptEcb(key, x(0x01)), mac: sm4EncryptEcb(key, x(0x02)) };
}

function counterBlock(counter: number): Uint8Array {
  const b = new Uint8Array(SM4_BLOCK_BYTES);
  new DataView(b.buffer).setUint32(SM4_BLOCK_BYTES - 4, counter);
  return b;
}

function macOver(keys: SmKeys, header: Uint8Array, ctr: Uint8Array, cipher: Uint8Array): Uint8Array {
  return sm4CbcMac(keys.mac, concatBytes(header, ctr, cipher)).slice(0, SM_MAC_BYTES);
}

/** The issuer side of a session: wraps commands. */
export class SmSession {
  private counter = 0;
  readonly keys: SmKeys;
  constructor(key: Uint8Array, challenge: Uint8Array) {
    this.keys = deriveSessionKeys(key, challenge);
  }

  /** A full CLA 84 APDU carrying `plain` for INS/P1/P2. */
  wrap(ins: number, p1: number, p2: number, plain: Uint8Array, le = 0): Uint8Array {
    if (plain.length > SM_MAX_PLAIN) throw new RangeError(`secure message plaintext is at most ${SM_MAX_PLAIN} bytes`);
    this.counter++;
    return encodeCommand({ cla: CLA_SM, ins, p1, p2, data: wrapData(this.keys, this.counter, [CLA_SM, ins, p1, p2], plain), le });
  }
  get lastCounter(): number {
    return this.counter;
  }
}

/** The data field of a secure message (exported for tests that forge or replay). */
export function wrapData(keys: SmKeys, counter: number, header: readonly number[], plain: Uint8Array): Uint8Array {
  const ctr = counterBlock(counter).slice(SM4_BLOCK_BYTES - SM_COUNTER_BYTES);
  const iv = sm4EncryptEcb(keys.enc, counterBlock(counter));
  const cipher = sm4EncryptCbc(keys.enc, iv, padIso9797M2(plain));
  return concatBytes(ctr, cipher, macOver(keys, Uint8Array.from(header), ctr, cipher));
}

/**
 * The card side: check and decrypt one secure message. `lastCounter` is the highest
 * counter accepted in this session. Returns the plaintext and the new counter, or throws
 * TaxError (LENGTH, MAC, REPLAY). Checks the MAC before the counter, so a forged message
 * cannot probe the counter.
 */
export function unwrapData(keys: SmKeys, lastCounter: number, header: readonly number[], data: Uint8Array): { plain: Uint8Array; counter: number } {
  const minLen = SM_COUNTER_BYTES + SM4_BLOCK_BYTES + SM_MAC_BYTES;
  if (data.length < minLen || (data.length - SM_COUNTER_BYTES - SM_MAC_BYTES) % SM4_BLOCK_BYTES !== 0) throw new TaxError(E.LENGTH, "secure message of impossible length");
  const ctr = data.subarray(0, SM_COUNTER_BYTES);
  const cipher = data.subarray(SM_COUNTER_BYTES, data.length - SM_MAC_BYTES);
  const mac = data.subarray(data.length - SM_MAC_BYTES);
  if (!bytesEqual(mac, macOver(keys, Uint8Array.from(header), ctr, cipher))) throw new TaxError(E.MAC, "secure message MAC is wrong");
  const counter = new DataView(ctr.buffer, ctr.byteOffset, 4).getUint32(0);
  if (counter <= lastCounter) throw new TaxError(E.REPLAY, `secure message counter ${counter} not above ${lastCounter}: replay`);
  const iv = sm4EncryptEcb(keys.enc, counterBlock(counter));
  let plain: Uint8Array;
  try {
    plain = unpadIso9797M2(sm4DecryptCbc(keys.enc, iv, cipher));
  } catch {
    throw new TaxError(E.MAC, "secure message padding is wrong");
  }
  return { plain: plain.slice(), counter };
}
