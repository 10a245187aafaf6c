/** The one crypto facade: SM3/SM4 from node:crypto, SM2 from sm-crypto-v2. */
export { sm3, hmacSm3, SM3_DIGEST_BYTES } from "./sm3.ts";
export {
  sm4EncryptEcb, sm4DecryptEcb, sm4EncryptCbc, sm4DecryptCbc, sm4Ctr, sm4CbcMac,
  padIso9797M2, unpadIso9797M2, SM4_KEY_BYTES, SM4_BLOCK_BYTES,
} from "./sm4.ts";
export {
  sm2GenerateKeyPair, sm2PublicKeyFromPrivate, sm2Sign, sm2Verify, sm2UserHashZ, sm2MessageDigest,
  isValidSm2PublicKey, SM2_DEFAULT_USER_ID, SM2_PRIVATE_KEY_BYTES, SM2_PUBLIC_KEY_BYTES, type Sm2KeyPair, type Sm2SignOptions,
} from "./sm2.ts";
