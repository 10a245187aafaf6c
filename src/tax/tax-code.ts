/**
 * The tax control code (税控码) plug-in. The real algorithm (SSF44) is secret, so the
 * COS and the bureau both go through this interface; the stand-in below is documented
 * and deterministic:
 *
 *   mac  = SM4-CBC-MAC(taxKey, SM3(canonical invoice))    (ISO 9797-1 M1, pad M2, zero IV)
 *   code = first 9 bytes of mac as an unsigned big-endian integer, mod 10^20,
 *          written as 20 decimal digits (zero-padded)
 *
 * The bureau verifies by recomputing with the same key.
 */
import { sm3, sm4CbcMac, SM4_KEY_BYTES } from "../crypto/index.ts";

export const TAX_CODE_DIGITS = 20;
export const TAX_KEY_BYTES = SM4_KEY_BYTES;

export interface TaxCodeAlgorithm {
  readonly id: string;
  /** The tax control code of a canonical invoice encoding, as TAX_CODE_DIGITS digits. */
  generate(taxKey: Uint8Array, canonicalInvoice: Uint8Array): string;
  verify(taxKey: Uint8Array, canonicalInvoice: Uint8Array, code: string): boolean;
}

const TEN_POW_20 = 10n ** 20n;

export const SM4_STANDIN_TAX_CODE: TaxCodeAlgorithm = {
  id: "sm4-cbcmac-sm3-standin-v1",
  generate(taxKey, canonicalInvoice) {
    if (taxKey.length !== TAX_KEY_BYTES) throw new RangeError(`tax-control key must be ${TAX_KEY_BYTES} bytes`);
    const mac = sm4CbcMac(taxKey, sm3(canonicalInvoice));
    let v = 0n;
    for (let i = 0; i < 9; i++) v = (v << 8n) | BigInt(mac[i] as number);
    return (v % TEN_POW_20).toString().padStart(TAX_CODE_DIGITS, "0");
  },
  verify(taxKey, canonicalInvoice, code) {
    return /^\d{20}$/.test(code) && this.generate(taxKey, canonicalInvoice) === code;
  },
};

const registry = new Map<string, TaxCodeAlgorithm>([[SM4_STANDIN_TAX_CODE.id, SM4_STANDIN_TAX_CODE]]);

/** Register another algorithm (e.g. a vendor's real one behind a native module). */
export function registerTaxCodeAlgorithm(algorithm: TaxCodeAlgorithm): void {
  registry.set(algorithm.id, algorithm);
}

export function taxCodeAlgorithm(id: string = SM4_STANDIN_TAX_CODE.id): TaxCodeAlgorithm {
  const a = registry.get(id);
  if (!a) throw new RangeError(`unknown tax-code algorithm "${id}"`);
  return a;
}
