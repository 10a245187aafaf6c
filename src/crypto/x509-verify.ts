/**
 * Verification of SM2 certificates and CRLs: one link at a time and the whole chain
 * root -> intermediate -> device, at a time the caller gives. Every failure has its own
 * reason code, so a host can tell the user what the troubleshooting article would:
 * expired, not yet valid, broken chain, missing intermediate, revoked, stale CRL, or an
 * older non-SM2 certificate.
 */
import { bytesEqual, sm2VerifyStrict, type CertificateInfo, type CrlInfo } from "./x509.ts";

export const CHAIN_FAILURES = [
  "MALFORMED",
  "LEGACY_ALGORITHM",
  "BAD_SIGNATURE",
  "UNKNOWN_ISSUER",
  "MISSING_INTERMEDIATE",
  "EXPIRED",
  "NOT_YET_VALID",
  "NOT_A_CA",
  "PATH_LEN_EXCEEDED",
  "KEY_USAGE",
  "CHAIN_TOO_LONG",
  "REVOKED",
  "CRL_MISSING",
  "CRL_STALE",
  "CRL_NOT_YET_VALID",
  "CRL_BAD_SIGNATURE",
] as const;
export type ChainFailure = (typeof CHAIN_FAILURES)[number];

export interface VerifyFailure {
  ok: false;
  reason: ChainFailure;
  message: string;
  /** Subject of the certificate (or issuer of the CRL) the failure is about. */
  subject: string;
}
export type VerifyResult = { ok: true; chain: CertificateInfo[] } | VerifyFailure;
export type CheckResult = { ok: true } | VerifyFailure;

/** Root, intermediate, device: three; allow one more level for a cross-signed intermediate. */
export const MAX_CHAIN_DEPTH = 4;

const OK: CheckResult = { ok: true };

function fail(reason: ChainFailure, subject: string, message: string): VerifyFailure {
  return { ok: false, reason, message, subject };
}

/** Certificate time check: notBefore <= at <= notAfter (RFC 5280 section 4.1.2.5). */
export function checkValidity(cert: CertificateInfo, at: number): CheckResult {
  if (at < cert.notBefore) return fail("NOT_YET_VALID", cert.subject.text, `not valid before ${iso(cert.notBefore)} (checked at ${iso(at)})`);
  if (at > cert.notAfter) return fail("EXPIRED", cert.subject.text, `expired at ${iso(cert.notAfter)} (checked at ${iso(at)})`);
  return OK;
}

/** Could `issuer` have issued `child`? Same name, and matching key identifiers when both are present. */
export function isIssuerOf(issuer: CertificateInfo, child: CertificateInfo): boolean {
  if (!bytesEqual(issuer.subject.der, child.issuer.der)) return false;
  if (child.authorityKeyId && issuer.subjectKeyId) return child.authorityKeyId === issuer.subjectKeyId;
  return true;
}

/** The signature of `child` under `issuer`'s SM2 key, and nothing else. */
export function checkSignature(child: CertificateInfo, issuer: CertificateInfo): CheckResult {
  for (const cert of [child, issuer]) {
    if (cert.legacy) return legacy(cert);
  }
  if (!issuer.publicKey) return fail("LEGACY_ALGORITHM", issuer.subject.text, `issuer key is not SM2 (${issuer.publicKeyAlgorithm})`);
  if (!sm2VerifyStrict(issuer.publicKey, child.tbs, child.signature)) {
    return fail("BAD_SIGNATURE", child.subject.text, `signature does not verify under ${issuer.subject.text}`);
  }
  return OK;
}

function legacy(cert: CertificateInfo): VerifyFailure {
  return fail("LEGACY_ALGORITHM", cert.subject.text, `legacy algorithm ${cert.signatureAlgorithmName}: only SM2-with-SM3 certificates are accepted`);
}

/**
 * One link: `child` issued by `issuer`, checked at `at`. Checks the name/key-ID match, the
 * signature, the child's validity, and that the issuer is a CA allowed to sign certificates.
 */
export function verifyLink(child: CertificateInfo, issuer: CertificateInfo, at: number): CheckResult {
  if (!isIssuerOf(issuer, child)) {
    return fail("UNKNOWN_ISSUER", child.subject.text, `issued by ${child.issuer.text}, not by ${issuer.subject.text}`);
  }
  const signature = checkSignature(child, issuer);
  if (!signature.ok) return signature;
  const validity = checkValidity(child, at);
  if (!validity.ok) return validity;
  if (!issuer.isCa) return fail("NOT_A_CA", issuer.subject.text, "issuer certificate is not a CA (basicConstraints)");
  if (issuer.keyUsage && !issuer.keyUsage.includes("keyCertSign")) {
    return fail("KEY_USAGE", issuer.subject.text, "issuer key usage lacks keyCertSign");
  }
  return OK;
}

/** A trust anchor: self-issued, self-signature valid, within its validity. */
export function verifyRoot(root: CertificateInfo, at: number): CheckResult {
  if (!root.selfIssued) return fail("UNKNOWN_ISSUER", root.subject.text, "trust anchor is not self-issued");
  const signature = checkSignature(root, root);
  if (!signature.ok) return signature;
  return checkValidity(root, at);
}

/** A CRL signed by `issuer`, current at `at`: thisUpdate <= at <= nextUpdate. */
export function verifyCrl(crl: CrlInfo, issuer: CertificateInfo, at: number): CheckResult {
  const who = crl.issuer.text;
  if (crl.legacy) return fail("LEGACY_ALGORITHM", who, "CRL is not signed with SM2-with-SM3");
  if (!bytesEqual(crl.issuer.der, issuer.subject.der) || (crl.authorityKeyId && issuer.subjectKeyId && crl.authorityKeyId !== issuer.subjectKeyId)) {
    return fail("UNKNOWN_ISSUER", who, `CRL issued by ${who}, not by ${issuer.subject.text}`);
  }
  if (!issuer.publicKey || !sm2VerifyStrict(issuer.publicKey, crl.tbs, crl.signature)) {
    return fail("CRL_BAD_SIGNATURE", who, `CRL signature does not verify under ${issuer.subject.text}`);
  }
  if (issuer.keyUsage && !issuer.keyUsage.includes("crlSign")) return fail("KEY_USAGE", issuer.subject.text, "issuer key usage lacks cRLSign");
  if (at < crl.thisUpdate) return fail("CRL_NOT_YET_VALID", who, `CRL thisUpdate ${iso(crl.thisUpdate)} is after ${iso(at)}`);
  if (crl.nextUpdate === undefined) return fail("CRL_STALE", who, "CRL has no nextUpdate, so its freshness cannot be judged");
  if (at > crl.nextUpdate) return fail("CRL_STALE", who, `CRL expired at its nextUpdate ${iso(crl.nextUpdate)} (checked at ${iso(at)})`);
  return OK;
}

/** Whether `cert` is on `crl` (the caller has verified the CRL and its issuer). */
export function isRevoked(cert: CertificateInfo, crl: CrlInfo): boolean {
  return crl.revoked.some((entry) => entry.serial === cert.serial);
}

export interface ChainInput {
  /** Trusted roots (the trust store). */
  roots: readonly CertificateInfo[];
  /** Untrusted intermediates supplied with the leaf. */
  intermediates: readonly CertificateInfo[];
  leaf: CertificateInfo;
  at: number;
  /** CRLs to consult; each applies to the certificates its issuer signed. */
  crls?: readonly CrlInfo[];
  /** Fail with CRL_MISSING when no CRL covers the leaf. Default: true when `crls` is given. */
  requireLeafCrl?: boolean;
}

/**
 * Builds and verifies the path leaf -> ... -> trusted root, then checks revocation of every
 * non-root certificate for which a CRL from its issuer is present.
 */
export function verifyChain(input: ChainInput): VerifyResult {
  const path = buildPath(input);
  if (!path.ok) return path;
  const chain = path.chain;
  const root = chain[chain.length - 1] as CertificateInfo;
  const rootCheck = verifyRoot(root, input.at);
  if (!rootCheck.ok) return rootCheck;
  for (let i = 0; i + 1 < chain.length; i++) {
    const issuer = chain[i + 1] as CertificateInfo;
    // pathLen bounds the intermediates below the issuer: chain[1..i] (RFC 5280 6.1.4 (m)).
    if (issuer.pathLen !== undefined && i > issuer.pathLen) {
      return fail("PATH_LEN_EXCEEDED", issuer.subject.text, `pathLen ${issuer.pathLen} exceeded by a chain of ${chain.length}`);
    }
  }
  const revocation = checkRevocation(chain, input);
  return revocation.ok ? { ok: true, chain } : revocation;
}

function buildPath(input: ChainInput): VerifyResult {
  const chain: CertificateInfo[] = [input.leaf];
  const used = new Set<CertificateInfo>();
  let current = input.leaf;
  for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth++) {
    if (current.legacy) return legacy(current);
    const root = input.roots.find((r) => isIssuerOf(r, current));
    if (root) {
      const link = verifyLink(current, root, input.at);
      if (!link.ok) return link;
      if (!bytesEqual(root.der, current.der)) chain.push(root);
      return { ok: true, chain };
    }
    const next = input.intermediates.find((c) => !used.has(c) && isIssuerOf(c, current));
    if (!next) {
      if (current === input.leaf && input.intermediates.length === 0) {
        return fail("MISSING_INTERMEDIATE", current.subject.text, `no certificate for its issuer ${current.issuer.text} was supplied (intermediate CA missing)`);
      }
      return fail("UNKNOWN_ISSUER", current.subject.text, `issuer ${current.issuer.text} is neither a trusted root nor a supplied intermediate`);
    }
    const link = verifyLink(current, next, input.at);
    if (!link.ok) return link;
    used.add(next);
    chain.push(next);
    current = next;
  }
  return fail("CHAIN_TOO_LONG", input.leaf.subject.text, `no trusted root within ${MAX_CHAIN_DEPTH} certificates`);
}

function checkRevocation(chain: readonly CertificateInfo[], input: ChainInput): CheckResult {
  const crls = input.crls ?? [];
  const requireLeaf = input.requireLeafCrl ?? input.crls !== undefined;
  for (let i = 0; i + 1 < chain.length; i++) {
    const cert = chain[i] as CertificateInfo;
    const issuer = chain[i + 1] as CertificateInfo;
    const candidates = crls.filter((c) => bytesEqual(c.issuer.der, issuer.subject.der));
    if (candidates.length === 0) {
      if (i === 0 && requireLeaf) return fail("CRL_MISSING", cert.subject.text, `no CRL from ${issuer.subject.text}`);
      continue;
    }
    // The newest CRL by thisUpdate decides; an older one may not be used to un-revoke.
    const crl = candidates.reduce((a, b) => (b.thisUpdate > a.thisUpdate ? b : a));
    const check = verifyCrl(crl, issuer, input.at);
    if (!check.ok) return check;
    if (isRevoked(cert, crl)) return fail("REVOKED", cert.subject.text, `serial ${cert.serial} is on the CRL of ${issuer.subject.text}`);
  }
  return OK;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
