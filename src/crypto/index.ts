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
export {
  createRootCa, createIntermediateCa, issueDeviceCertificate, createCrl, buildCertificate,
  parseCertificate, parseCrl, toPem, fromPem, pemToDer, certificateToPem, crlToPem,
  randomSerial, serialToHex, isCanonicalSm2Signature, sm2VerifyStrict, keyIdentifier, bytesEqual, X509Error,
  OID_SM2_WITH_SM3, OID_SM2_CURVE, OID_EC_PUBLIC_KEY, LEGACY_SIGNATURE_ALGORITHMS,
  MAX_CERTIFICATE_BYTES, MAX_CRL_BYTES, SERIAL_BYTES, KEY_ID_BYTES,
  type CertificateAuthority, type CertificateInfo, type CrlInfo, type RevokedEntry, type DistinguishedName,
  type DistinguishedNameInfo, type CaOptions, type DeviceCertificateOptions, type CrlOptions, type PemBlock,
  type CertificateTemplate, type NameField,
} from "./x509.ts";
export {
  verifyChain, verifyLink, verifyRoot, verifyCrl, checkSignature, checkValidity, isIssuerOf, isRevoked,
  CHAIN_FAILURES, MAX_CHAIN_DEPTH, type ChainFailure, type ChainInput, type VerifyResult, type VerifyFailure, type CheckResult,
} from "./x509-verify.ts";
