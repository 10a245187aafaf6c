/**
 * The bureau's SM2 PKI: root CA -> device CA (intermediate) -> device certificates, a
 * receipt-signing certificate under the same intermediate, and the CRL the intermediate
 * publishes. Keys come from the run's Rng, times from its clock: one seed, one PKI.
 */
import {
  buildCertificate, createCrl, createIntermediateCa, createRootCa, issueDeviceCertificate, parseCertificate, parseCrl,
  randomSerial, sm2GenerateKeyPair, sm2PublicKeyFromPrivate, type CertificateAuthority, type CertificateInfo, type CrlInfo, type RevokedEntry, type Sm2KeyPair,
} from "../crypto/index.ts";
import { MS_PER_DAY, type Rng } from "../sim/index.ts";

export const ROOT_VALIDITY_DAYS = 20 * 365;
export const INTERMEDIATE_VALIDITY_DAYS = 10 * 365;
export const DEVICE_VALIDITY_DAYS = 2 * 365;
/** CRLs are valid for 24 h (the article: published within 24 h) and re-published every 12 h. */
export const CRL_VALIDITY_MS = MS_PER_DAY;
export const CRL_REPUBLISH_MS = MS_PER_DAY / 2;
/** Certificates start a day early so that a host clock slightly behind still accepts them. */
const BACKDATE_MS = MS_PER_DAY;
const KEY_USAGE_DIGITAL_SIGNATURE = 1;

export interface ReceiptSigner {
  keyPair: Sm2KeyPair;
  der: Uint8Array;
  certificate: CertificateInfo;
}

export interface BureauPki {
  root: CertificateAuthority;
  intermediate: CertificateAuthority;
  signer: ReceiptSigner;
}

function dayStart(ms: number): number {
  return Math.floor(ms / MS_PER_DAY) * MS_PER_DAY;
}

export function createBureauPki(rng: Rng, now: number): BureauPki {
  const start = dayStart(now) - BACKDATE_MS;
  const organization = "State Taxation Administration (ukeysim)";
  const root = createRootCa({ rng, subject: { country: "CN", organization, commonName: "ukeysim Tax Root CA" }, notBefore: start, notAfter: start + ROOT_VALIDITY_DAYS * MS_PER_DAY });
  const intermediate = createIntermediateCa({
    rng, issuer: root, subject: { country: "CN", organization, commonName: "ukeysim Tax Device CA" },
    notBefore: start, notAfter: start + INTERMEDIATE_VALIDITY_DAYS * MS_PER_DAY,
  });
  const keyPair = sm2GenerateKeyPair(rng);
  const der = buildCertificate({
    serial: randomSerial(rng),
    issuer: { country: "CN", organization, commonName: "ukeysim Tax Device CA" },
    subject: { country: "CN", organization, commonName: "ukeysim Bureau Receipt Signer" },
    notBefore: start, notAfter: start + INTERMEDIATE_VALIDITY_DAYS * MS_PER_DAY,
    publicKey: keyPair.publicKey, issuerPublicKey: intermediate.keyPair.publicKey, issuerPrivateKey: intermediate.keyPair.privateKey,
    ca: undefined, keyUsage: KEY_USAGE_DIGITAL_SIGNATURE,
  });
  return { root, intermediate, signer: { keyPair, der, certificate: parseCertificate(der) } };
}

export interface DeviceCertificateRequest {
  publicKey: Uint8Array;
  taxpayerId: string;
  deviceSerial: string;
  /** Default: from `now` minus a day to DEVICE_VALIDITY_DAYS later. */
  notBefore?: number;
  notAfter?: number;
}

export function issueDevice(pki: BureauPki, rng: Rng, now: number, request: DeviceCertificateRequest): Uint8Array {
  const notBefore = request.notBefore ?? dayStart(now) - BACKDATE_MS;
  return issueDeviceCertificate({
    rng, issuer: pki.intermediate, publicKey: request.publicKey, taxpayerId: request.taxpayerId, deviceSerial: request.deviceSerial,
    notBefore, notAfter: request.notAfter ?? notBefore + DEVICE_VALIDITY_DAYS * MS_PER_DAY,
  });
}

export function publishCrl(pki: BureauPki, now: number, revoked: readonly RevokedEntry[], crlNumber: number): CrlInfo {
  const thisUpdate = Math.floor(now / 1000) * 1000;
  return parseCrl(createCrl({ issuer: pki.intermediate, thisUpdate, nextUpdate: thisUpdate + CRL_VALIDITY_MS, revoked, crlNumber }));
}

/** The PKI as stored in the bureau's database: DER and private keys, hex. */
interface StoredPki {
  version: 1;
  root: { der: string; privateKey: string };
  intermediate: { der: string; privateKey: string };
  signer: { der: string; privateKey: string };
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

function unhex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "hex"));
}

export function serializePki(pki: BureauPki): string {
  const entry = (der: Uint8Array, keyPair: Sm2KeyPair) => ({ der: hex(der), privateKey: hex(keyPair.privateKey) });
  const stored: StoredPki = {
    version: 1, root: entry(pki.root.der, pki.root.keyPair), intermediate: entry(pki.intermediate.der, pki.intermediate.keyPair),
    signer: entry(pki.signer.der, pki.signer.keyPair),
  };
  return JSON.stringify(stored);
}

/** Loads a PKI saved by serializePki, checking that each key matches its certificate. */
export function deserializePki(text: string): BureauPki {
  const stored = JSON.parse(text) as StoredPki;
  if (stored.version !== 1) throw new Error(`stored bureau PKI has version ${String(stored.version)}, expected 1`);
  const load = (entry: { der: string; privateKey: string }, what: string) => {
    const der = unhex(entry.der);
    const certificate = parseCertificate(der);
    const privateKey = unhex(entry.privateKey);
    const publicKey = sm2PublicKeyFromPrivate(privateKey);
    if (!certificate.publicKey || hex(certificate.publicKey) !== hex(publicKey)) throw new Error(`stored bureau PKI: the ${what} key does not match its certificate`);
    return { der, certificate, keyPair: { privateKey, publicKey } };
  };
  return { root: load(stored.root, "root"), intermediate: load(stored.intermediate, "intermediate"), signer: load(stored.signer, "receipt signer") };
}
