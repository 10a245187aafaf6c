import "reflect-metadata";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { webcrypto } from "node:crypto";
import * as px509 from "@peculiar/x509";
import {
  buildCertificate, certificateToPem, createCrl, createIntermediateCa, crlToPem, fromPem, issueDeviceCertificate, parseCertificate,
  parseCrl, pemToDer, sm2GenerateKeyPair, verifyChain, verifyCrl, verifyLink, verifyRoot, X509Error, CHAIN_FAILURES,
  type CertificateInfo, type ChainFailure,
} from "../../src/crypto/index.ts";
import { DAY, makeCrl, makeDevice, makePki, T0, YEAR } from "../support/pki.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function flipByte(der: Uint8Array, index: number): Uint8Array {
  const copy = der.slice();
  copy[index] = (copy[index] as number) ^ 0x01;
  return copy;
}

function reason(result: { ok: boolean } & Partial<{ reason: ChainFailure }>): ChainFailure | "OK" {
  return result.ok ? "OK" : (result.reason as ChainFailure);
}

describe("SM2 X.509 certificates", () => {
  const pki = makePki(1);
  const device = makeDevice(pki);
  const root = pki.root.certificate;
  const intermediate = pki.intermediate.certificate;

  it("builds root, intermediate and device certificates with the right fields", () => {
    expect(root.signatureAlgorithmName).toBe("SM2-with-SM3");
    expect(root.version).toBe(3);
    expect(root.isCa).toBe(true);
    expect(root.pathLen).toBeUndefined();
    expect(root.selfIssued).toBe(true);
    expect(root.keyUsage).toEqual(["crlSign", "keyCertSign"]);
    expect(intermediate.isCa).toBe(true);
    expect(intermediate.pathLen).toBe(0);
    expect(intermediate.authorityKeyId).toBe(root.subjectKeyId);
    expect(intermediate.issuer.text).toBe(root.subject.text);
    const leaf = device.certificate;
    expect(leaf.isCa).toBe(false);
    expect(leaf.keyUsage).toEqual(["digitalSignature"]);
    expect(leaf.subject.fields.organizationIdentifier).toBe("91370100MA3C0000X1");
    expect(leaf.subject.fields.serialNumber).toBe("UK0001");
    expect(hex(leaf.publicKey as Uint8Array)).toBe(hex(device.keyPair.publicKey));
    expect(leaf.authorityKeyId).toBe(intermediate.subjectKeyId);
    expect(leaf.notBefore).toBe(T0);
    expect(leaf.notAfter).toBe(T0 + 2 * YEAR);
    expect(leaf.serial).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set([root.serial, intermediate.serial, leaf.serial]).size).toBe(3);
  });

  it("is deterministic: the same seed gives byte-identical certificates and CRLs", () => {
    const again = makePki(1);
    const againDevice = makeDevice(again);
    expect(hex(again.root.der)).toBe(hex(pki.root.der));
    expect(hex(again.intermediate.der)).toBe(hex(pki.intermediate.der));
    expect(hex(againDevice.der)).toBe(hex(device.der));
    expect(hex(makeCrl(again).der)).toBe(hex(makeCrl(pki).der));
    expect(hex(makePki(2).root.der)).not.toBe(hex(pki.root.der));
  });

  it("verifies each link and the whole chain root -> intermediate -> device", () => {
    const at = T0 + DAY / 2;
    expect(verifyRoot(root, at)).toEqual({ ok: true });
    expect(verifyLink(intermediate, root, at)).toEqual({ ok: true });
    expect(verifyLink(device.certificate, intermediate, at)).toEqual({ ok: true });
    const result = verifyChain({ roots: [root], intermediates: [intermediate], leaf: device.certificate, at, crls: [makeCrl(pki)] });
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.chain.map((c) => c.subject.fields.commonName)).toEqual(["Ukey UK0001", "Tax Device CA 1", "Tax Root CA"]);
  });

  describe("gives a distinct reason for each failure", () => {
    const at = T0 + DAY / 2;
    const crl = makeCrl(pki);
    const chain = (over: Partial<Parameters<typeof verifyChain>[0]>) =>
      reason(verifyChain({ roots: [root], intermediates: [intermediate], leaf: device.certificate, at, crls: [crl], ...over }));

    it("EXPIRED and NOT_YET_VALID, with the boundaries inclusive", () => {
      expect(chain({ at: T0 + 2 * YEAR })).toBe("CRL_STALE"); // the CRL goes stale first
      expect(chain({ at: T0 + 2 * YEAR + 1000, crls: [makeCrl(pki, [], T0 + 2 * YEAR, T0 + 3 * YEAR)] })).toBe("EXPIRED");
      expect(chain({ at: T0 + 2 * YEAR, crls: [makeCrl(pki, [], T0 + 2 * YEAR, T0 + 3 * YEAR)] })).toBe("OK");
      expect(chain({ at: T0 - 1000 })).toBe("NOT_YET_VALID");
      expect(chain({ at: T0 })).toBe("OK");
    });

    it("BAD_SIGNATURE for a tampered signature or TBS", () => {
      const der = device.der;
      const badSignature = parseCertificate(flipByte(der, der.length - 3));
      expect(chain({ leaf: badSignature })).toBe("BAD_SIGNATURE");
      const subjectByte = hex(der).indexOf(Buffer.from("UK0001").toString("hex")) / 2;
      const badTbs = parseCertificate(flipByte(der, subjectByte));
      expect(badTbs.subject.fields.serialNumber).toBe("TK0001");
      expect(chain({ leaf: badTbs })).toBe("BAD_SIGNATURE");
    });

    it("UNKNOWN_ISSUER for a device from another CA, MISSING_INTERMEDIATE without the intermediate", () => {
      const other = makePki(9, "Rogue");
      const rogue = makeDevice(other);
      expect(chain({ leaf: rogue.certificate })).toBe("UNKNOWN_ISSUER");
      expect(chain({ intermediates: [] })).toBe("MISSING_INTERMEDIATE");
      expect(chain({ intermediates: [other.intermediate.certificate] })).toBe("UNKNOWN_ISSUER");
      expect(chain({ roots: [other.root.certificate] })).toBe("UNKNOWN_ISSUER");
      // Same names, different keys: the key identifiers do not match.
      const lookalike = makePki(10);
      expect(chain({ roots: [lookalike.root.certificate] })).toBe("UNKNOWN_ISSUER");
    });

    it("REVOKED, CRL_STALE, CRL_NOT_YET_VALID, CRL_BAD_SIGNATURE, CRL_MISSING", () => {
      expect(chain({ crls: [makeCrl(pki, [{ serial: device.certificate.serial, revokedAt: T0 }])] })).toBe("REVOKED");
      expect(chain({ crls: [makeCrl(pki, [{ serial: "01", revokedAt: T0 }])] })).toBe("OK");
      expect(chain({ at: T0 + DAY + 1000 })).toBe("CRL_STALE");
      expect(chain({ crls: [makeCrl(pki, [], T0 + DAY, T0 + 2 * DAY)] })).toBe("CRL_NOT_YET_VALID");
      expect(chain({ crls: [parseCrl(flipByte(crl.der, crl.der.length - 3))] })).toBe("CRL_BAD_SIGNATURE");
      expect(chain({ crls: [] })).toBe("CRL_MISSING");
      expect(chain({ crls: undefined })).toBe("OK");
      // A newer CRL wins over an older one.
      const revoking = makeCrl(pki, [{ serial: device.certificate.serial, revokedAt: T0 }], T0 + 1000, T0 + DAY, 2);
      expect(chain({ crls: [crl, revoking] })).toBe("REVOKED");
    });

    it("NOT_A_CA when a device key signs a certificate, PATH_LEN_EXCEEDED under a pathLen-0 intermediate", () => {
      const victim = sm2GenerateKeyPair(pki.rng);
      const leafFields = device.certificate.subject.fields;
      const forged = parseCertificate(buildCertificate({
        serial: "77", issuer: { ...leafFields, commonName: leafFields.commonName as string }, subject: { commonName: "forged" },
        notBefore: T0, notAfter: T0 + YEAR, publicKey: victim.publicKey,
        issuerPublicKey: device.keyPair.publicKey, issuerPrivateKey: device.keyPair.privateKey, ca: undefined, keyUsage: 1,
      }));
      expect(chain({ leaf: forged, intermediates: [intermediate, device.certificate], crls: undefined })).toBe("NOT_A_CA");
      const sub = createIntermediateCa({ rng: pki.rng, issuer: pki.intermediate, subject: { commonName: "Sub CA" }, notBefore: T0, notAfter: T0 + YEAR });
      const subLeaf = parseCertificate(issueDeviceCertificate({ rng: pki.rng, issuer: sub, publicKey: victim.publicKey, taxpayerId: "X", deviceSerial: "S", notBefore: T0, notAfter: T0 + YEAR }));
      expect(chain({ leaf: subLeaf, intermediates: [sub.certificate, intermediate], crls: undefined })).toBe("PATH_LEN_EXCEEDED");
    });

    it("verifyCrl alone: right issuer required", () => {
      expect(reason(verifyCrl(crl, intermediate, at))).toBe("OK");
      expect(reason(verifyCrl(crl, root, at))).toBe("UNKNOWN_ISSUER");
    });

    it("every reason code is one of the documented ones", () => {
      expect(new Set(CHAIN_FAILURES).size).toBe(CHAIN_FAILURES.length);
    });
  });

  it("rejects malformed DER and PEM with X509Error, never another exception", () => {
    expect(() => parseCertificate(new Uint8Array(0))).toThrow(X509Error);
    expect(() => parseCertificate(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01))).toThrow(/certificate/);
    expect(() => parseCertificate(new Uint8Array(20_000))).toThrow(/exceeds the limit/);
    expect(() => parseCrl(Uint8Array.of(1, 2, 3))).toThrow(X509Error);
    expect(() => fromPem("no pem here")).toThrow(/no -----BEGIN/);
    expect(() => fromPem("-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----")).toThrow(/bad base64/);
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (bytes) => {
      try {
        parseCertificate(bytes);
      } catch (error) {
        return error instanceof X509Error;
      }
      return true;
    }), { numRuns: 300 });
  });

  it("rejects any single-byte corruption of the device certificate: parse error or failed verification", () => {
    const crl = makeCrl(pki);
    fc.assert(fc.property(fc.nat({ max: device.der.length - 1 }), fc.integer({ min: 1, max: 255 }), (index, mask) => {
      const bad = device.der.slice();
      bad[index] = (bad[index] as number) ^ mask;
      let leaf: CertificateInfo;
      try {
        leaf = parseCertificate(bad);
      } catch (error) {
        return error instanceof X509Error;
      }
      return !verifyChain({ roots: [root], intermediates: [intermediate], leaf, at: T0 + 1000, crls: [crl] }).ok;
    }), { numRuns: 150 });
  });

  it("rejects any single-byte corruption of a CRL: parse error or failed CRL verification", () => {
    const crl = makeCrl(pki, [{ serial: "0abc", revokedAt: T0 }]);
    fc.assert(fc.property(fc.nat({ max: crl.der.length - 1 }), fc.integer({ min: 1, max: 255 }), (index, mask) => {
      const bad = crl.der.slice();
      bad[index] = (bad[index] as number) ^ mask;
      try {
        return !verifyCrl(parseCrl(bad), intermediate, T0 + 1000).ok;
      } catch (error) {
        return error instanceof X509Error;
      }
    }), { numRuns: 150 });
  });

  it("round-trips PEM for certificates and CRLs", () => {
    const pem = certificateToPem(device.der) + certificateToPem(pki.intermediate.der);
    const blocks = fromPem(pem);
    expect(blocks.map((b) => b.label)).toEqual(["CERTIFICATE", "CERTIFICATE"]);
    expect(hex(blocks[0]!.der)).toBe(hex(device.der));
    const crlDer = createCrl({ issuer: pki.intermediate, thisUpdate: T0, nextUpdate: T0 + DAY, revoked: [], crlNumber: 3 });
    expect(hex(pemToDer(crlToPem(crlDer), "X509 CRL"))).toBe(hex(crlDer));
    expect(parseCrl(crlDer).crlNumber).toBe(3);
    expect(() => pemToDer(pem, "CERTIFICATE")).toThrow(/expected one CERTIFICATE block, found 2/);
  });

  it("rejects bad builder input clearly", () => {
    const base = { rng: pki.rng, issuer: pki.intermediate, publicKey: device.keyPair.publicKey, taxpayerId: "X", deviceSerial: "S" };
    expect(() => issueDeviceCertificate({ ...base, notBefore: T0, notAfter: T0 })).toThrow(/notAfter must be after/);
    expect(() => issueDeviceCertificate({ ...base, publicKey: new Uint8Array(64), notBefore: T0, notAfter: T0 + DAY })).toThrow(/65 bytes/);
    expect(() => issueDeviceCertificate({ ...base, deviceSerial: "序列", notBefore: T0, notAfter: T0 + DAY })).toThrow(/printable/);
    expect(() => createCrl({ issuer: pki.intermediate, thisUpdate: T0, nextUpdate: T0 + DAY, revoked: [{ serial: "xyz", revokedAt: T0 }], crlNumber: 1 })).toThrow(/hex/);
  });
});

describe("legacy (non-SM2) certificates", () => {
  it("recognises an RSA-2048 certificate and reports LEGACY_ALGORITHM instead of crashing", async () => {
    px509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof px509.cryptoProvider.set>[0]);
    const algorithm = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
    const keys = await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
    const old = await px509.X509CertificateGenerator.createSelfSigned({
      serialNumber: "01", name: "CN=Old Tax CA RSA", notBefore: new Date(T0), notAfter: new Date(T0 + YEAR), signingAlgorithm: algorithm,
      keys: keys as unknown as Parameters<typeof px509.X509CertificateGenerator.createSelfSigned>[0]["keys"], extensions: [new px509.BasicConstraintsExtension(true, undefined, true)],
    });
    const info = parseCertificate(new Uint8Array(old.rawData));
    expect(info.legacy).toBe(true);
    expect(info.signatureAlgorithmName).toBe("sha256WithRSAEncryption");
    expect(info.publicKey).toBeUndefined();
    const result = verifyChain({ roots: [info], intermediates: [], leaf: info, at: T0 + DAY });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toBe("LEGACY_ALGORITHM");
      expect(result.message).toMatch(/sha256WithRSAEncryption/);
    }
    const pki = makePki(3);
    expect(reason(verifyLink(pki.intermediate.certificate, info, T0 + DAY))).toBe("UNKNOWN_ISSUER");
    expect(reason(verifyRoot(info, T0 + DAY))).toBe("LEGACY_ALGORITHM");
  });
});
