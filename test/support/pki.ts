/** A small SM2 PKI for tests: root -> intermediate -> devices, times relative to T0. */
import {
  createCrl, createIntermediateCa, createRootCa, issueDeviceCertificate, parseCertificate, parseCrl, sm2GenerateKeyPair,
  type CertificateAuthority, type CertificateInfo, type CrlInfo, type RevokedEntry, type Sm2KeyPair,
} from "../../src/crypto/index.ts";
import { Rng } from "../../src/sim/index.ts";

export const T0 = Date.UTC(2026, 0, 1);
export const DAY = 86_400_000;
export const YEAR = 365 * DAY;

export interface TestPki {
  rng: Rng;
  root: CertificateAuthority;
  intermediate: CertificateAuthority;
}

export function makePki(seed = 1, label = "Tax"): TestPki {
  const rng = new Rng(seed);
  const root = createRootCa({ rng, subject: { country: "CN", organization: `${label} Administration`, commonName: `${label} Root CA` }, notBefore: T0, notAfter: T0 + 20 * YEAR });
  const intermediate = createIntermediateCa({ rng, issuer: root, subject: { country: "CN", organization: `${label} Administration`, commonName: `${label} Device CA 1` }, notBefore: T0, notAfter: T0 + 10 * YEAR });
  return { rng, root, intermediate };
}

export interface TestDevice {
  keyPair: Sm2KeyPair;
  der: Uint8Array;
  certificate: CertificateInfo;
}

export function makeDevice(pki: TestPki, taxpayerId = "91370100MA3C0000X1", deviceSerial = "UK0001", validity = { notBefore: T0, notAfter: T0 + 2 * YEAR }): TestDevice {
  const keyPair = sm2GenerateKeyPair(pki.rng);
  const der = issueDeviceCertificate({ rng: pki.rng, issuer: pki.intermediate, publicKey: keyPair.publicKey, taxpayerId, deviceSerial, ...validity });
  return { keyPair, der, certificate: parseCertificate(der) };
}

export function makeCrl(pki: TestPki, revoked: RevokedEntry[] = [], thisUpdate = T0, nextUpdate = T0 + DAY, crlNumber = 1): CrlInfo {
  return parseCrl(createCrl({ issuer: pki.intermediate, thisUpdate, nextUpdate, revoked, crlNumber }));
}
