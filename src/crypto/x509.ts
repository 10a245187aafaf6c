/**
 * X.509 v3 certificates and v2 CRLs signed with SM2-with-SM3 (GM/T 0015), built and parsed
 * with @peculiar/asn1-x509; the signature over the TBS bytes is ours (sm2Sign/sm2Verify),
 * because WebCrypto has no SM2.
 *
 * - Signature algorithm: 1.2.156.10197.1.501 (SM2-with-SM3), parameters absent.
 * - SM2 public keys: id-ecPublicKey (1.2.840.10045.2.1) with the named curve 1.2.156.10197.1.301;
 *   the key is the 65-byte uncompressed point.
 * - SM2 user ID for every signature: the default 1234567812345678 (OpenSSL 3.0 needs
 *   `-vfyopt distid:1234567812345678`, see docs/bureau-api.md).
 * - Key identifiers: the first 20 bytes of SM3 over the subjectPublicKey bits (RFC 5280
 *   section 4.2.1.2 allows any method that yields unique values).
 * - Deterministic: keys come from an Rng, times from the caller; SM2 nonces are derived.
 *
 * Chain verification is in x509-verify.ts.
 */
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, AuthorityKeyIdentifier, BasicConstraints,
  Certificate, CertificateList, CRLNumber, Extension, Extensions, KeyIdentifier, KeyUsage, KeyUsageFlags,
  Name, RelativeDistinguishedName, RevokedCertificate, SubjectKeyIdentifier, SubjectPublicKeyInfo,
  TBSCertificate, TBSCertList, Time, Validity, Version,
  id_ce_authorityKeyIdentifier, id_ce_basicConstraints, id_ce_cRLNumber, id_ce_keyUsage, id_ce_subjectKeyIdentifier,
} from "@peculiar/asn1-x509";
import type { Rng } from "../sim/index.ts";
import { encodeSm2SignatureDer, isValidSm2PublicKey, sm2GenerateKeyPair, sm2Sign, sm2Verify, SM2_PUBLIC_KEY_BYTES, type Sm2KeyPair } from "./sm2.ts";
import { sm3 } from "./sm3.ts";

export const OID_SM2_WITH_SM3 = "1.2.156.10197.1.501";
export const OID_SM2_CURVE = "1.2.156.10197.1.301";
export const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
/** DER of OBJECT IDENTIFIER 1.2.156.10197.1.301: the namedCurve parameter of an SM2 key. */
const SM2_CURVE_OID_DER = Uint8Array.of(0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d);

/** Names of signature algorithms we recognise but do not verify (older bureau certificates). */
export const LEGACY_SIGNATURE_ALGORITHMS: Readonly<Record<string, string>> = {
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
  "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
  "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
  "1.2.840.113549.1.1.10": "rsassaPss",
  "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
  "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
  "1.3.101.112": "ed25519",
};

/** Attribute types of a distinguished name that we write and read by name. */
const NAME_ATTRIBUTES = {
  country: "2.5.4.6",
  organization: "2.5.4.10",
  organizationalUnit: "2.5.4.11",
  commonName: "2.5.4.3",
  serialNumber: "2.5.4.5",
  /** X.520 organizationIdentifier: the taxpayer ID (统一社会信用代码) of a device certificate. */
  organizationIdentifier: "2.5.4.97",
} as const;

export type NameField = keyof typeof NAME_ATTRIBUTES;
export type DistinguishedName = Partial<Record<NameField, string>> & { commonName: string };

/** Upper bounds that keep a malformed or hostile input from costing us much. */
export const MAX_CERTIFICATE_BYTES = 16 * 1024;
export const MAX_CRL_BYTES = 4 * 1024 * 1024;
export const MAX_NAME_VALUE_CHARS = 64;
export const SERIAL_BYTES = 16;
export const KEY_ID_BYTES = 20;

export class X509Error extends Error {
  constructor(readonly code: "MALFORMED" | "BAD_INPUT", message: string) {
    super(message);
    this.name = "X509Error";
  }
}

/** A certification authority: its certificate and its key pair. */
export interface CertificateAuthority {
  der: Uint8Array;
  certificate: CertificateInfo;
  keyPair: Sm2KeyPair;
}

/** What we read out of a certificate. Times in milliseconds since the epoch. */
export interface CertificateInfo {
  der: Uint8Array;
  tbs: Uint8Array;
  version: number;
  /** Lower-case hex of the serial's magnitude, without leading zero bytes. */
  serial: string;
  issuer: DistinguishedNameInfo;
  subject: DistinguishedNameInfo;
  notBefore: number;
  notAfter: number;
  signatureAlgorithm: string;
  signatureAlgorithmName: string;
  /** True when the certificate is not SM2-with-SM3 (e.g. an older RSA-2048 certificate). */
  legacy: boolean;
  signature: Uint8Array;
  /** The 65-byte SM2 point, or undefined for a non-SM2 key. */
  publicKey: Uint8Array | undefined;
  publicKeyAlgorithm: string;
  isCa: boolean;
  pathLen: number | undefined;
  keyUsage: string[] | undefined;
  subjectKeyId: string | undefined;
  authorityKeyId: string | undefined;
  selfIssued: boolean;
}

export interface DistinguishedNameInfo {
  fields: Partial<Record<NameField, string>>;
  /** The DER of the Name, for exact comparison. */
  der: Uint8Array;
  /** One-line text, "C=CN, O=..., CN=...", for messages. */
  text: string;
}

export interface RevokedEntry {
  serial: string;
  revokedAt: number;
}

export interface CrlInfo {
  der: Uint8Array;
  tbs: Uint8Array;
  issuer: DistinguishedNameInfo;
  thisUpdate: number;
  nextUpdate: number | undefined;
  crlNumber: number | undefined;
  authorityKeyId: string | undefined;
  revoked: RevokedEntry[];
  signatureAlgorithm: string;
  legacy: boolean;
  signature: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function u8(buffer: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (buffer instanceof Uint8Array) return buffer;
  if (ArrayBuffer.isView(buffer)) return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  return new Uint8Array(buffer);
}

/** A fresh ArrayBuffer holding exactly `bytes` (a Buffer's .buffer may be a shared pool). */
function arrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy.buffer;
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** Canonical serial text: hex of the magnitude without leading zero bytes ("00" for zero). */
export function serialToHex(serial: Uint8Array): string {
  let start = 0;
  while (start < serial.length - 1 && serial[start] === 0) start++;
  return toHex(serial.subarray(start));
}

function serialFromHex(serial: string): ArrayBuffer {
  if (!/^[0-9a-f]{1,40}$/i.test(serial)) throw new X509Error("BAD_INPUT", `serial must be 1-40 hex digits, got "${serial}"`);
  const padded = serial.length % 2 ? "0" + serial : serial;
  let bytes = Buffer.from(padded, "hex");
  if ((bytes[0] as number) & 0x80) bytes = Buffer.concat([Buffer.of(0), bytes]); // keep INTEGER positive
  return arrayBuffer(bytes);
}

/** A positive 16-byte serial drawn from the run's PRNG (top bit clear, never leading zero). */
export function randomSerial(rng: Rng): string {
  const bytes = rng.bytes(SERIAL_BYTES);
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x10;
  return toHex(bytes);
}

/** Key identifier: first 20 bytes of SM3 over the subjectPublicKey bits. */
export function keyIdentifier(publicKey: Uint8Array): Uint8Array {
  return sm3(publicKey).subarray(0, KEY_ID_BYTES);
}

function checkTime(ms: number, what: string): Date {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new X509Error("BAD_INPUT", `${what} must be a non-negative integer of ms, got ${ms}`);
  return new Date(Math.floor(ms / 1000) * 1000);
}

function sm2Algorithm(): AlgorithmIdentifier {
  return new AlgorithmIdentifier({ algorithm: OID_SM2_WITH_SM3 });
}

function sm2PublicKeyInfo(publicKey: Uint8Array): SubjectPublicKeyInfo {
  if (publicKey.length !== SM2_PUBLIC_KEY_BYTES || publicKey[0] !== 0x04) {
    throw new X509Error("BAD_INPUT", `SM2 public key must be ${SM2_PUBLIC_KEY_BYTES} bytes 04||x||y`);
  }
  if (!isValidSm2PublicKey(publicKey)) throw new X509Error("BAD_INPUT", "SM2 public key is not a point on the curve");
  return new SubjectPublicKeyInfo({
    algorithm: new AlgorithmIdentifier({ algorithm: OID_EC_PUBLIC_KEY, parameters: arrayBuffer(SM2_CURVE_OID_DER) }),
    subjectPublicKey: arrayBuffer(publicKey),
  });
}


function buildName(name: DistinguishedName): Name {
  const order: NameField[] = ["country", "organization", "organizationalUnit", "organizationIdentifier", "serialNumber", "commonName"];
  const rdns: RelativeDistinguishedName[] = [];
  for (const field of order) {
    const value = name[field];
    if (value === undefined) continue;
    if (value.length === 0 || value.length > MAX_NAME_VALUE_CHARS) {
      throw new X509Error("BAD_INPUT", `name field ${field} must be 1-${MAX_NAME_VALUE_CHARS} characters`);
    }
    // Country and serialNumber are PrintableString by X.520; everything else UTF8String.
    const printable = field === "country" || field === "serialNumber";
    if (printable && !/^[A-Za-z0-9 '()+,\-./:=?]+$/.test(value)) {
      throw new X509Error("BAD_INPUT", `name field ${field} must be printable ASCII, got "${value}"`);
    }
    const attributeValue = new AttributeValue(printable ? { printableString: value } : { utf8String: value });
    rdns.push(new RelativeDistinguishedName([new AttributeTypeAndValue({ type: NAME_ATTRIBUTES[field], value: attributeValue })]));
  }
  return new Name(rdns);
}

function readName(name: Name): DistinguishedNameInfo {
  const fields: Partial<Record<NameField, string>> = {};
  const parts: string[] = [];
  const byOid = new Map<string, NameField>(Object.entries(NAME_ATTRIBUTES).map(([k, v]) => [v, k as NameField]));
  const short: Record<NameField, string> = {
    country: "C", organization: "O", organizationalUnit: "OU", commonName: "CN", serialNumber: "serialNumber", organizationIdentifier: "organizationIdentifier",
  };
  for (const rdn of name) {
    for (const attribute of rdn) {
      const field = byOid.get(attribute.type);
      const value = attribute.value.toString();
      if (field) fields[field] = value;
      parts.push(`${field ? short[field] : attribute.type}=${value}`);
    }
  }
  return { fields, der: u8(AsnConvert.serialize(name)), text: parts.join(", ") };
}

function extension(id: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID: id, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

// ---------------------------------------------------------------------------------------------
// Building

export interface CertificateTemplate {
  serial: string;
  issuer: DistinguishedName;
  subject: DistinguishedName;
  notBefore: number;
  notAfter: number;
  publicKey: Uint8Array;
  issuerPublicKey: Uint8Array;
  issuerPrivateKey: Uint8Array;
  ca: { pathLen?: number } | undefined;
  keyUsage: number;
  /** Omit the authority key identifier (a self-signed root may). */
  omitAuthorityKeyId?: boolean;
}

/** Builds the TBS, signs it with SM2 (user ID 1234567812345678) and returns the DER. */
export function buildCertificate(t: CertificateTemplate): Uint8Array {
  const notBefore = checkTime(t.notBefore, "notBefore");
  const notAfter = checkTime(t.notAfter, "notAfter");
  if (notAfter.getTime() <= notBefore.getTime()) throw new X509Error("BAD_INPUT", "notAfter must be after notBefore");
  const extensions: Extension[] = [
    extension(id_ce_basicConstraints, true, new BasicConstraints(t.ca ? { cA: true, pathLenConstraint: t.ca.pathLen } : {})),
    extension(id_ce_keyUsage, true, new KeyUsage(t.keyUsage)),
    extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(keyIdentifier(t.publicKey))),
  ];
  if (!t.omitAuthorityKeyId) {
    extensions.push(extension(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({
      keyIdentifier: new KeyIdentifier(keyIdentifier(t.issuerPublicKey)),
    })));
  }
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialFromHex(t.serial),
    signature: sm2Algorithm(),
    issuer: buildName(t.issuer),
    validity: new Validity({ notBefore, notAfter }),
    subject: buildName(t.subject),
    subjectPublicKeyInfo: sm2PublicKeyInfo(t.publicKey),
    extensions: new Extensions(extensions),
  });
  const tbsDer = u8(AsnConvert.serialize(tbs));
  const signature = sm2Sign(t.issuerPrivateKey, tbsDer, { publicKey: t.issuerPublicKey });
  const certificate = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: sm2Algorithm(), signatureValue: arrayBuffer(signature) });
  return u8(AsnConvert.serialize(certificate));
}

export interface CaOptions {
  rng: Rng;
  subject: DistinguishedName;
  notBefore: number;
  notAfter: number;
  /** Drawn from `rng` when absent. */
  keyPair?: Sm2KeyPair;
  serial?: string;
}

/** A self-signed root CA (basicConstraints CA, no path length limit). */
export function createRootCa(options: CaOptions): CertificateAuthority {
  const keyPair = options.keyPair ?? sm2GenerateKeyPair(options.rng);
  const der = buildCertificate({
    serial: options.serial ?? randomSerial(options.rng),
    issuer: options.subject,
    subject: options.subject,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    publicKey: keyPair.publicKey,
    issuerPublicKey: keyPair.publicKey,
    issuerPrivateKey: keyPair.privateKey,
    ca: {},
    keyUsage: KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign,
    omitAuthorityKeyId: true,
  });
  return { der, certificate: parseCertificate(der), keyPair };
}

/** An intermediate CA under `issuer` (basicConstraints CA, pathLen 0: it issues only end entities). */
export function createIntermediateCa(options: CaOptions & { issuer: CertificateAuthority }): CertificateAuthority {
  const keyPair = options.keyPair ?? sm2GenerateKeyPair(options.rng);
  const der = buildCertificate({
    serial: options.serial ?? randomSerial(options.rng),
    issuer: issuerName(options.issuer),
    subject: options.subject,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    publicKey: keyPair.publicKey,
    issuerPublicKey: options.issuer.keyPair.publicKey,
    issuerPrivateKey: options.issuer.keyPair.privateKey,
    ca: { pathLen: 0 },
    keyUsage: KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign,
  });
  return { der, certificate: parseCertificate(der), keyPair };
}

export interface DeviceCertificateOptions {
  rng: Rng;
  issuer: CertificateAuthority;
  /** The device's 65-byte uncompressed SM2 public key (generated on the card). */
  publicKey: Uint8Array;
  taxpayerId: string;
  deviceSerial: string;
  notBefore: number;
  notAfter: number;
  serial?: string;
  organization?: string;
}

/** An end-entity device certificate: subject carries the taxpayer ID and the device serial. */
export function issueDeviceCertificate(options: DeviceCertificateOptions): Uint8Array {
  return buildCertificate({
    serial: options.serial ?? randomSerial(options.rng),
    issuer: issuerName(options.issuer),
    subject: {
      country: "CN",
      ...(options.organization ? { organization: options.organization } : {}),
      organizationIdentifier: options.taxpayerId,
      serialNumber: options.deviceSerial,
      commonName: `Ukey ${options.deviceSerial}`,
    },
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    publicKey: options.publicKey,
    issuerPublicKey: options.issuer.keyPair.publicKey,
    issuerPrivateKey: options.issuer.keyPair.privateKey,
    ca: undefined,
    keyUsage: KeyUsageFlags.digitalSignature,
  });
}

function issuerName(issuer: CertificateAuthority): DistinguishedName {
  const fields = issuer.certificate.subject.fields;
  if (fields.commonName === undefined) throw new X509Error("BAD_INPUT", "issuer certificate has no common name");
  return { ...fields, commonName: fields.commonName };
}

export interface CrlOptions {
  issuer: CertificateAuthority;
  thisUpdate: number;
  nextUpdate: number;
  revoked: readonly RevokedEntry[];
  crlNumber: number;
}

/** A v2 CRL signed by `issuer` (the intermediate), with CRL number and authority key ID. */
export function createCrl(options: CrlOptions): Uint8Array {
  const thisUpdate = checkTime(options.thisUpdate, "thisUpdate");
  const nextUpdate = checkTime(options.nextUpdate, "nextUpdate");
  if (nextUpdate.getTime() <= thisUpdate.getTime()) throw new X509Error("BAD_INPUT", "nextUpdate must be after thisUpdate");
  if (!Number.isSafeInteger(options.crlNumber) || options.crlNumber < 0) throw new X509Error("BAD_INPUT", "crlNumber must be a non-negative integer");
  const revoked = [...options.revoked]
    .sort((a, b) => a.serial.localeCompare(b.serial))
    .map((entry) => new RevokedCertificate({
      userCertificate: serialFromHex(entry.serial),
      revocationDate: new Time(checkTime(entry.revokedAt, "revokedAt")),
    }));
  const tbs = new TBSCertList({
    version: Version.v2,
    signature: sm2Algorithm(),
    issuer: buildName(issuerName(options.issuer)),
    thisUpdate: new Time(thisUpdate),
    nextUpdate: new Time(nextUpdate),
    ...(revoked.length ? { revokedCertificates: revoked } : {}),
    crlExtensions: [
      extension(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({
        keyIdentifier: new KeyIdentifier(keyIdentifier(options.issuer.keyPair.publicKey)),
      })),
      extension(id_ce_cRLNumber, false, new CRLNumber(options.crlNumber)),
    ],
  });
  const tbsDer = u8(AsnConvert.serialize(tbs));
  const signature = sm2Sign(options.issuer.keyPair.privateKey, tbsDer, { publicKey: options.issuer.keyPair.publicKey });
  return u8(AsnConvert.serialize(new CertificateList({ tbsCertList: tbs, signatureAlgorithm: sm2Algorithm(), signature: arrayBuffer(signature) })));
}

// ---------------------------------------------------------------------------------------------
// Parsing

function parseDer<T>(der: Uint8Array, target: new () => T, what: string, limit: number): T {
  if (!(der instanceof Uint8Array) || der.length === 0) throw new X509Error("MALFORMED", `${what}: empty input`);
  if (der.length > limit) throw new X509Error("MALFORMED", `${what}: ${der.length} bytes exceeds the limit of ${limit}`);
  if (!outerLengthExact(der)) throw new X509Error("MALFORMED", `${what}: not one DER SEQUENCE spanning the whole input`);
  try {
    return AsnConvert.parse(der, target);
  } catch (error) {
    throw new X509Error("MALFORMED", `${what}: not valid DER (${error instanceof Error ? error.message : String(error)})`);
  }
}

/** The outer TLV is a SEQUENCE whose minimal-form length covers exactly the input, no more, no less. */
function outerLengthExact(der: Uint8Array): boolean {
  if (der[0] !== 0x30 || der.length < 2) return false;
  const first = der[1] as number;
  if (first < 0x80) return 2 + first === der.length;
  const count = first & 0x7f;
  if (count === 0 || count > 4 || der[2] === 0 || der.length < 2 + count) return false;
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + (der[2 + i] as number);
  return length >= 0x80 && 2 + count + length === der.length;
}

/**
 * An SM2 certificate or CRL must be exactly DER (it re-encodes to the same bytes) and name
 * the same algorithm inside and outside the signed part (RFC 5280 4.1.1.2): the ASN.1 reader
 * is lenient, and an unsigned byte that could vary would give one object several identities.
 * Legacy (non-SM2) objects are only reported, never trusted, so they are not held to this.
 */
function checkStrictSm2(der: Uint8Array, parsed: object, outer: AlgorithmIdentifier, inner: AlgorithmIdentifier, what: string): void {
  if (outer.algorithm !== OID_SM2_WITH_SM3 && inner.algorithm !== OID_SM2_WITH_SM3) return;
  if (outer.algorithm !== inner.algorithm || !bytesEqual(u8(AsnConvert.serialize(outer)), u8(AsnConvert.serialize(inner)))) {
    throw new X509Error("MALFORMED", `${what}: signature algorithm differs between the signed part and the envelope`);
  }
  let again: Uint8Array;
  try {
    again = u8(AsnConvert.serialize(parsed));
  } catch {
    throw new X509Error("MALFORMED", `${what}: does not re-encode`);
  }
  if (!bytesEqual(again, der)) throw new X509Error("MALFORMED", `${what}: not canonical DER`);
}

function findExtension(extensions: readonly Extension[] | undefined, id: string): Uint8Array | undefined {
  const found = extensions?.find((e) => e.extnID === id);
  return found ? u8(found.extnValue.buffer) : undefined;
}

function algorithmName(oid: string): string {
  return oid === OID_SM2_WITH_SM3 ? "SM2-with-SM3" : LEGACY_SIGNATURE_ALGORITHMS[oid] ?? oid;
}

function readSm2PublicKey(spki: SubjectPublicKeyInfo): Uint8Array | undefined {
  if (spki.algorithm.algorithm !== OID_EC_PUBLIC_KEY || !spki.algorithm.parameters) return undefined;
  if (!bytesEqual(u8(spki.algorithm.parameters), SM2_CURVE_OID_DER)) return undefined;
  const point = u8(spki.subjectPublicKey);
  return point.length === SM2_PUBLIC_KEY_BYTES && point[0] === 0x04 ? point.slice() : undefined;
}

function keyUsageNames(bits: Uint8Array | undefined): string[] | undefined {
  if (!bits) return undefined;
  return AsnConvert.parse(bits, KeyUsage).toJSON();
}

/** Parses a DER certificate. Non-SM2 certificates parse too, with `legacy: true`. */
export function parseCertificate(der: Uint8Array): CertificateInfo {
  const certificate = parseDer(der, Certificate, "certificate", MAX_CERTIFICATE_BYTES);
  const tbs = certificate.tbsCertificate;
  checkStrictSm2(der, certificate, certificate.signatureAlgorithm, tbs.signature, "certificate");
  const extensions = tbs.extensions;
  try {
    const basic = findExtension(extensions, id_ce_basicConstraints);
    const constraints = basic ? AsnConvert.parse(basic, BasicConstraints) : undefined;
    const ski = findExtension(extensions, id_ce_subjectKeyIdentifier);
    const aki = findExtension(extensions, id_ce_authorityKeyIdentifier);
    const akiValue = aki ? AsnConvert.parse(aki, AuthorityKeyIdentifier).keyIdentifier : undefined;
    const issuer = readName(tbs.issuer);
    const subject = readName(tbs.subject);
    const signatureAlgorithm = certificate.signatureAlgorithm.algorithm;
    return {
      der: der.slice(),
      tbs: u8(certificate.tbsCertificateRaw ?? AsnConvert.serialize(tbs)).slice(),
      version: tbs.version + 1,
      serial: serialToHex(u8(tbs.serialNumber)),
      issuer,
      subject,
      notBefore: tbs.validity.notBefore.getTime().getTime(),
      notAfter: tbs.validity.notAfter.getTime().getTime(),
      signatureAlgorithm,
      signatureAlgorithmName: algorithmName(signatureAlgorithm),
      legacy: signatureAlgorithm !== OID_SM2_WITH_SM3,
      signature: u8(certificate.signatureValue).slice(),
      publicKey: readSm2PublicKey(tbs.subjectPublicKeyInfo),
      publicKeyAlgorithm: tbs.subjectPublicKeyInfo.algorithm.algorithm,
      isCa: constraints?.cA ?? false,
      pathLen: constraints?.pathLenConstraint,
      keyUsage: keyUsageNames(findExtension(extensions, id_ce_keyUsage)),
      subjectKeyId: ski ? toHex(u8(AsnConvert.parse(ski, SubjectKeyIdentifier).buffer)) : undefined,
      authorityKeyId: akiValue ? toHex(u8(akiValue.buffer)) : undefined,
      selfIssued: bytesEqual(issuer.der, subject.der),
    };
  } catch (error) {
    if (error instanceof X509Error) throw error;
    throw new X509Error("MALFORMED", `certificate: bad extension or field (${error instanceof Error ? error.message : String(error)})`);
  }
}

/** Parses a DER CRL. */
export function parseCrl(der: Uint8Array): CrlInfo {
  const crl = parseDer(der, CertificateList, "CRL", MAX_CRL_BYTES);
  const tbs = crl.tbsCertList;
  checkStrictSm2(der, crl, crl.signatureAlgorithm, tbs.signature, "CRL");
  try {
    const aki = findExtension(tbs.crlExtensions, id_ce_authorityKeyIdentifier);
    const akiValue = aki ? AsnConvert.parse(aki, AuthorityKeyIdentifier).keyIdentifier : undefined;
    const number = findExtension(tbs.crlExtensions, id_ce_cRLNumber);
    const signatureAlgorithm = crl.signatureAlgorithm.algorithm;
    return {
      der: der.slice(),
      tbs: u8(crl.tbsCertListRaw ?? AsnConvert.serialize(tbs)).slice(),
      issuer: readName(tbs.issuer),
      thisUpdate: tbs.thisUpdate.getTime().getTime(),
      nextUpdate: tbs.nextUpdate?.getTime().getTime(),
      crlNumber: number ? AsnConvert.parse(number, CRLNumber).value : undefined,
      authorityKeyId: akiValue ? toHex(u8(akiValue.buffer)) : undefined,
      revoked: (tbs.revokedCertificates ?? []).map((entry) => ({
        serial: serialToHex(u8(entry.userCertificate)),
        revokedAt: entry.revocationDate.getTime().getTime(),
      })),
      signatureAlgorithm,
      legacy: signatureAlgorithm !== OID_SM2_WITH_SM3,
      signature: u8(crl.signature).slice(),
    };
  } catch (error) {
    throw new X509Error("MALFORMED", `CRL: bad extension or field (${error instanceof Error ? error.message : String(error)})`);
  }
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

// ---------------------------------------------------------------------------------------------
// Strict signatures

const SM2_ORDER_N = BigInt("0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123");
const MAX_SM2_SIGNATURE_DER_BYTES = 72;

function readDerInteger(der: Uint8Array, offset: number): { value: bigint; next: number } | undefined {
  if (der[offset] !== 0x02) return undefined;
  const length = der[offset + 1];
  if (length === undefined || length < 1 || length > 33 || offset + 2 + length > der.length) return undefined;
  const body = der.subarray(offset + 2, offset + 2 + length);
  return { value: BigInt("0x" + toHex(body)), next: offset + 2 + length };
}

/**
 * True when `der` is exactly the canonical DER SEQUENCE { r, s } with 1 <= r, s < n. The
 * SM2 library's decoder is lenient (it ignores tags), so without this check one signature
 * would have many byte forms: a signed object's identity must not depend on which.
 */
export function isCanonicalSm2Signature(der: Uint8Array): boolean {
  if (der.length < 8 || der.length > MAX_SM2_SIGNATURE_DER_BYTES || der[0] !== 0x30 || der[1] !== der.length - 2) return false;
  const r = readDerInteger(der, 2);
  const s = r && readDerInteger(der, r.next);
  if (!r || !s || s.next !== der.length) return false;
  if (r.value < 1n || r.value >= SM2_ORDER_N || s.value < 1n || s.value >= SM2_ORDER_N) return false;
  return bytesEqual(encodeSm2SignatureDer(r.value, s.value), der);
}

/** sm2Verify (user ID 1234567812345678) that also insists on the canonical DER form. */
export function sm2VerifyStrict(publicKey: Uint8Array, message: Uint8Array, signatureDer: Uint8Array): boolean {
  return isCanonicalSm2Signature(signatureDer) && sm2Verify(publicKey, message, signatureDer);
}

// ---------------------------------------------------------------------------------------------
// PEM

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
export const MAX_PEM_CHARS = 8 * 1024 * 1024;

export function toPem(label: "CERTIFICATE" | "X509 CRL" | string, der: Uint8Array): string {
  const base64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

/** Every PEM block in `text`, in order. Throws on text with no block or a bad body. */
export function fromPem(text: string): PemBlock[] {
  if (typeof text !== "string" || text.length > MAX_PEM_CHARS) throw new X509Error("MALFORMED", "PEM: not a string or too large");
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const body = (match[2] as string).replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) throw new X509Error("MALFORMED", `PEM: bad base64 in ${match[1]} block`);
    blocks.push({ label: match[1] as string, der: u8(Buffer.from(body, "base64")) });
  }
  if (blocks.length === 0) throw new X509Error("MALFORMED", "PEM: no -----BEGIN ...----- block found");
  return blocks;
}

export function certificateToPem(der: Uint8Array): string {
  return toPem("CERTIFICATE", der);
}

export function crlToPem(der: Uint8Array): string {
  return toPem("X509 CRL", der);
}

/** DER of the one block labelled `label` in `text`. */
export function pemToDer(text: string, label: string): Uint8Array {
  const found = fromPem(text).filter((b) => b.label === label);
  if (found.length !== 1) throw new X509Error("MALFORMED", `PEM: expected one ${label} block, found ${found.length}`);
  return (found[0] as PemBlock).der;
}
