/**
 * The bureau's own test TLS PKI. Node's OpenSSL cannot do SM2 in TLS, so the HTTPS layer uses
 * ECDSA P-256 certificates made with @peculiar/x509 over WebCrypto:
 *
 *   TLS root CA -> TLS intermediate CA -> server leaf (127.0.0.1, ::1, localhost)
 *
 * plus the variants the fault switches present (expired leaf, leaf for another host) and a
 * separate "SSL deep inspection" CA with a leaf for the same host, which a client that trusts
 * only the bureau's CA must refuse.
 *
 * Keys are derived from the run's Rng (private scalar from the PRNG, public point by node:crypto
 * ECDH), so a seed gives the same keys. ECDSA signatures in WebCrypto draw a random nonce, so
 * the certificate bytes differ between runs: that is the one non-seeded thing in the bureau.
 * Validity comes from the TLS clock, which must follow the wall clock, because the client
 * (OpenSSL in Node) checks TLS certificates against real time.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createECDH, webcrypto } from "node:crypto";
import { MS_PER_DAY, type Rng } from "../sim/index.ts";

type WebCrypto = Parameters<typeof x509.cryptoProvider.set>[0];
const CRYPTO = webcrypto as unknown as WebCrypto;
type Key = Parameters<typeof x509.X509CertificateGenerator.create>[0] extends infer P ? P extends { signingKey: infer K } ? K : never : never;

const EC_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;
const P256_ORDER = BigInt("0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
const CA_VALIDITY_DAYS = 10 * 365;
const LEAF_VALIDITY_DAYS = 30;
export const SERVER_HOSTS = { ips: ["127.0.0.1", "::1"], dns: ["localhost"] } as const;
export const WRONG_HOST = "wrong-host.invalid";

interface KeyPair {
  privateKey: Key;
  publicKey: Key;
}

/** A P-256 key pair whose private scalar comes from `rng`. */
async function deriveKeyPair(rng: Rng): Promise<KeyPair> {
  let d = 0n;
  while (d === 0n) d = BigInt("0x" + Buffer.from(rng.bytes(32)).toString("hex")) % P256_ORDER;
  const scalar = Buffer.from(d.toString(16).padStart(64, "0"), "hex");
  const ecdh = createECDH("prime256v1");
  ecdh.setPrivateKey(scalar);
  const point = ecdh.getPublicKey();
  const jwk = { kty: "EC", crv: "P-256", x: point.subarray(1, 33).toString("base64url"), y: point.subarray(33, 65).toString("base64url") };
  const subtle = webcrypto.subtle;
  const privateKey = await subtle.importKey("jwk", { ...jwk, d: scalar.toString("base64url") }, EC_ALGORITHM, true, ["sign"]);
  const publicKey = await subtle.importKey("jwk", jwk, EC_ALGORITHM, true, ["verify"]);
  return { privateKey: privateKey as unknown as Key, publicKey: publicKey as unknown as Key };
}

function serial(rng: Rng): string {
  const bytes = rng.bytes(12);
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x10;
  return Buffer.from(bytes).toString("hex");
}

async function caCertificate(rng: Rng, name: string, keys: KeyPair, issuer: { name: string; keys: KeyPair } | undefined, notBefore: number, pathLength: number | undefined): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: serial(rng),
    subject: name,
    issuer: issuer?.name ?? name,
    notBefore: new Date(notBefore),
    notAfter: new Date(notBefore + CA_VALIDITY_DAYS * MS_PER_DAY),
    signingAlgorithm: SIGNING_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: (issuer?.keys ?? keys).privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, pathLength, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, CRYPTO),
      await x509.AuthorityKeyIdentifierExtension.create((issuer?.keys ?? keys).publicKey, false, CRYPTO),
    ],
  }, CRYPTO);
}

async function leafCertificate(rng: Rng, hosts: { ips: readonly string[]; dns: readonly string[] }, keys: KeyPair, issuer: { name: string; keys: KeyPair }, notBefore: number, notAfter: number): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: serial(rng),
    subject: `CN=${hosts.dns[0] ?? hosts.ips[0]}, O=ukeysim bureau`,
    issuer: issuer.name,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    signingAlgorithm: SIGNING_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([...hosts.ips.map((value) => ({ type: "ip" as const, value })), ...hosts.dns.map((value) => ({ type: "dns" as const, value }))]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, CRYPTO),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.keys.publicKey, false, CRYPTO),
    ],
  }, CRYPTO);
}

async function privateKeyPem(keys: KeyPair): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey as unknown as webcrypto.CryptoKey);
  return x509.PemConverter.encode(pkcs8, "PRIVATE KEY");
}

/** Key and certificate chain (PEM) for one TLS server identity. */
export interface TlsIdentity {
  key: string;
  /** Leaf first, then the intermediate when it is served. */
  cert: string;
}

export interface TlsMaterial {
  /** The bureau's TLS root CA: what a correctly configured client trusts. */
  caCertPem: string;
  intermediatePem: string;
  valid: TlsIdentity;
  expired: TlsIdentity;
  wrongHost: TlsIdentity;
  /** The same three leaves served without the intermediate. */
  validNoIntermediate: TlsIdentity;
  expiredNoIntermediate: TlsIdentity;
  wrongHostNoIntermediate: TlsIdentity;
  /** The inspection proxy's own CA and its leaf for the bureau's host. */
  interceptionCaPem: string;
  interception: TlsIdentity;
}

/** Makes every TLS certificate the bureau can present; `now` is wall-clock time (see the header). */
export async function createTlsMaterial(rng: Rng, now: number): Promise<TlsMaterial> {
  const start = Math.floor(now / MS_PER_DAY) * MS_PER_DAY - MS_PER_DAY;
  const rootKeys = await deriveKeyPair(rng);
  const intermediateKeys = await deriveKeyPair(rng);
  const leafKeys = await deriveKeyPair(rng);
  const interceptionKeys = await deriveKeyPair(rng);
  const interceptionLeafKeys = await deriveKeyPair(rng);
  const rootName = "CN=ukeysim Bureau TLS Root CA, O=ukeysim bureau";
  const intermediateName = "CN=ukeysim Bureau TLS Intermediate CA, O=ukeysim bureau";
  const interceptionName = "CN=Corporate SSL Inspection CA, O=Example Firewall";
  const root = await caCertificate(rng, rootName, rootKeys, undefined, start, undefined);
  const intermediate = await caCertificate(rng, intermediateName, intermediateKeys, { name: rootName, keys: rootKeys }, start, 0);
  const issuer = { name: intermediateName, keys: intermediateKeys };
  const valid = await leafCertificate(rng, SERVER_HOSTS, leafKeys, issuer, start, start + LEAF_VALIDITY_DAYS * MS_PER_DAY);
  const expired = await leafCertificate(rng, SERVER_HOSTS, leafKeys, issuer, start - 2 * LEAF_VALIDITY_DAYS * MS_PER_DAY, start - LEAF_VALIDITY_DAYS * MS_PER_DAY);
  const wrongHost = await leafCertificate(rng, { ips: [], dns: [WRONG_HOST] }, leafKeys, issuer, start, start + LEAF_VALIDITY_DAYS * MS_PER_DAY);
  const interceptionCa = await caCertificate(rng, interceptionName, interceptionKeys, undefined, start, undefined);
  const interceptionLeaf = await leafCertificate(rng, SERVER_HOSTS, interceptionLeafKeys, { name: interceptionName, keys: interceptionKeys }, start, start + LEAF_VALIDITY_DAYS * MS_PER_DAY);
  const key = await privateKeyPem(leafKeys);
  const intermediatePem = intermediate.toString("pem");
  const identity = (leaf: x509.X509Certificate, withIntermediate: boolean): TlsIdentity => ({
    key, cert: leaf.toString("pem") + "\n" + (withIntermediate ? intermediatePem + "\n" : ""),
  });
  return {
    caCertPem: root.toString("pem") + "\n",
    intermediatePem,
    valid: identity(valid, true),
    expired: identity(expired, true),
    wrongHost: identity(wrongHost, true),
    validNoIntermediate: identity(valid, false),
    expiredNoIntermediate: identity(expired, false),
    wrongHostNoIntermediate: identity(wrongHost, false),
    interceptionCaPem: interceptionCa.toString("pem") + "\n",
    interception: { key: await privateKeyPem(interceptionLeafKeys), cert: interceptionLeaf.toString("pem") + "\n" + interceptionCa.toString("pem") + "\n" },
  };
}
