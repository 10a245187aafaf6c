/**
 * User data in flash is sealed: SM4-CTR encryption plus an 8-byte HMAC-SM3 tag bound to
 * the record's (type, id). The keys come from the device secret kept in the MCU secure
 * area (`DeviceSecrets`), never from NAND, so a lost Ukey's flash reveals and accepts
 * nothing: a record copied, altered or moved to another id fails to open.
 *
 *   sealed = nonce (8) || SM4-CTR(Kenc, nonce || type || id || 000000, plain) || tag (8)
 *   tag    = first 8 bytes of HMAC-SM3(Kmac, type || id || nonce || ciphertext)
 */
import { hmacSm3, sm4Ctr } from "../crypto/index.ts";
import type { Rng } from "../sim/index.ts";
import { bytesEqual } from "../tax/index.ts";

export const DEVICE_SECRET_BYTES = 32;
const NONCE_BYTES = 8;
const TAG_BYTES = 8;

/** The MCU secure area: a few bytes that survive power cuts and never sit in NAND. */
export interface DeviceSecrets {
  read(): Uint8Array | undefined;
  write(secret: Uint8Array): void;
}

/** Secure area held in memory (with ModelStore); the file-backed store brings its own. */
export class MemorySecrets implements DeviceSecrets {
  private value: Uint8Array | undefined;
  read(): Uint8Array | undefined {
    return this.value?.slice();
  }
  write(secret: Uint8Array): void {
    this.value = secret.slice();
  }
}

/** How the COS seals records: the Vault, or the identity when the store encrypts by itself. */
export interface Sealer {
  readonly pinKey: Uint8Array;
  seal(type: number, id: number, plain: Uint8Array): Uint8Array;
  open(type: number, id: number, sealed: Uint8Array): Uint8Array | undefined;
}

/**
 * No sealing of its own: for a store that already encrypts every record with a key from
 * the device secret (FlashStore, see flash-ukey.ts). The PIN-hash key still comes from it.
 */
export class StoreSealed implements Sealer {
  readonly pinKey: Uint8Array;
  constructor(deviceSecret: Uint8Array) {
    this.pinKey = hmacSm3(deviceSecret, new TextEncoder().encode("ukey-pin"));
  }
  seal(_type: number, _id: number, plain: Uint8Array): Uint8Array {
    return plain;
  }
  open(_type: number, _id: number, sealed: Uint8Array): Uint8Array {
    return sealed;
  }
}

export class Vault implements Sealer {
  private readonly enc: Uint8Array;
  private readonly mac: Uint8Array;
  /** Key of the PIN hashes (HMAC-SM3), also derived from the device secret. */
  readonly pinKey: Uint8Array;
  constructor(deviceSecret: Uint8Array, private readonly nonces: Rng) {
    if (deviceSecret.length !== DEVICE_SECRET_BYTES) throw new RangeError(`device secret must be ${DEVICE_SECRET_BYTES} bytes`);
    this.enc = hmacSm3(deviceSecret, new TextEncoder().encode("ukey-storage-enc")).slice(0, 16);
    this.mac = hmacSm3(deviceSecret, new TextEncoder().encode("ukey-storage-mac"));
    this.pinKey = hmacSm3(deviceSecret, new TextEncoder().encode("ukey-pin"));
  }

  seal(type: number, id: number, plain: Uint8Array): Uint8Array {
    const nonce = this.nonces.bytes(NONCE_BYTES);
    const out = new Uint8Array(NONCE_BYTES + plain.length + TAG_BYTES);
    out.set(nonce);
    out.set(sm4Ctr(this.enc, counterBlock(nonce, type, id), plain), NONCE_BYTES);
    out.set(this.tag(type, id, out.subarray(0, NONCE_BYTES + plain.length)), NONCE_BYTES + plain.length);
    return out;
  }

  open(type: number, id: number, sealed: Uint8Array): Uint8Array | undefined {
    if (sealed.length < NONCE_BYTES + TAG_BYTES) return undefined;
    const body = sealed.subarray(0, sealed.length - TAG_BYTES);
    if (!bytesEqual(this.tag(type, id, body), sealed.subarray(sealed.length - TAG_BYTES))) return undefined;
    const nonce = sealed.subarray(0, NONCE_BYTES);
    return sm4Ctr(this.enc, counterBlock(nonce, type, id), body.subarray(NONCE_BYTES));
  }

  private tag(type: number, id: number, body: Uint8Array): Uint8Array {
    const head = new Uint8Array(5);
    head[0] = type;
    new DataView(head.buffer).setUint32(1, id);
    return hmacSm3(this.mac, head, body).subarray(0, TAG_BYTES);
  }
}

function counterBlock(nonce: Uint8Array, type: number, id: number): Uint8Array {
  const b = new Uint8Array(16);
  b.set(nonce);
  b[8] = type;
  new DataView(b.buffer).setUint32(9, id);
  return b;
}
