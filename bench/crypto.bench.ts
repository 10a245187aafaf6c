import type { BenchModule } from "./harness.ts";
import { ratePerSecond } from "./harness.ts";
import { sm2GenerateKeyPair, sm2Sign, sm2Verify } from "../src/crypto/index.ts";
import { Rng } from "../src/sim/index.ts";

const SAMPLE_MS = 1500;
const INVOICE_BYTES = 400;

const bench: BenchModule = {
  ids: ["crypto.sm2_sign_per_s", "crypto.sm2_verify_per_s"],
  async run() {
    const pair = sm2GenerateKeyPair(new Rng(1));
    const message = new Uint8Array(INVOICE_BYTES);
    let n = 0;
    const sign = ratePerSecond(SAMPLE_MS, () => {
      message[0] = n++ & 0xff;
      sm2Sign(pair.privateKey, message, { publicKey: pair.publicKey });
    });
    const signature = sm2Sign(pair.privateKey, message, { publicKey: pair.publicKey });
    const verify = ratePerSecond(SAMPLE_MS, () => void sm2Verify(pair.publicKey, message, signature));
    return {
      "crypto.sm2_sign_per_s": { value: Math.round(sign), unit: "sign/s", note: `${INVOICE_BYTES} B message, deterministic nonce` },
      "crypto.sm2_verify_per_s": { value: Math.round(verify), unit: "verify/s", note: "cached public-key table" },
    };
  },
};
export default bench;
