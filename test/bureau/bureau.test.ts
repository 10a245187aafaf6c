import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  parseCertificate, parseCrl, pemToDer, sm2GenerateKeyPair, sm2Verify, verifyCrl, createRootCa, createIntermediateCa,
  issueDeviceCertificate,
} from "../../src/crypto/index.ts";
import { Rng, MS_PER_DAY, type VirtualClock } from "../../src/sim/index.ts";
import { signInvoiceAsDevice, MAX_INVOICES_PER_BATCH, type Bureau } from "../../src/bureau/index.ts";
import { boot, call, makeInvoice, registerDevice, DEVICE, INVOICE_CODE, START, TAXPAYER, type Device } from "./fixture.ts";

let bureau: Bureau;
let clock: VirtualClock;
let device: Device;
const rng = new Rng(77);

beforeAll(async () => {
  ({ bureau, clock } = await boot());
  device = registerDevice(bureau, clock, rng);
});
afterAll(async () => bureau.stop());

function b64ToBytes(b64: string): Uint8Array {
  return new Uint8Array(Buffer.from(b64, "base64"));
}

function signerKey(): Uint8Array {
  return parseCertificate(pemToDer(bureau.sm2.receiptSignerPem, "CERTIFICATE")).publicKey as Uint8Array;
}

function counts() {
  return { invoices: bureau.store.invoiceCount(), receipts: bureau.store.receiptCount(), faults: JSON.stringify(bureau.faults()) };
}

describe("bureau endpoints over HTTPS on 127.0.0.1", () => {
  it("listens on loopback with an ephemeral port", () => {
    expect(bureau.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(bureau.port).toBeGreaterThan(0);
  });

  it("GET /health and /time report the bureau's clock", async () => {
    const health = await call(bureau, "/api/v1/health");
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ status: "ok", serverTime: START });
    clock.advance(1234);
    const time = await call(bureau, "/api/v1/time");
    expect(time.json).toEqual({ serverTime: START + 1234, iso: new Date(START + 1234).toISOString() });
  });

  it("GET /pki gives the SM2 chain; GET /crl the current CRL as DER and PEM, signed by the device CA", async () => {
    const pki = await call(bureau, "/api/v1/pki");
    const root = parseCertificate(pemToDer(pki.json.root, "CERTIFICATE"));
    const intermediate = parseCertificate(pemToDer(pki.json.intermediate, "CERTIFICATE"));
    expect(root.selfIssued).toBe(true);
    expect(intermediate.issuer.text).toBe(root.subject.text);
    const der = await call(bureau, "/api/v1/crl");
    expect(der.headers["content-type"]).toBe("application/pkix-crl");
    const crl = parseCrl(new Uint8Array(der.body));
    expect(verifyCrl(crl, intermediate, clock.now())).toEqual({ ok: true });
    expect(crl.nextUpdate! - crl.thisUpdate).toBe(MS_PER_DAY);
    const pem = await call(bureau, "/api/v1/crl?format=pem");
    expect(Buffer.from(pemToDer(pem.text, "X509 CRL")).equals(der.body)).toBe(true);
    expect((await call(bureau, "/api/v1/crl?format=xml")).json.code).toBe("BAD_REQUEST");
  });

  it("GET /sync returns stock, limits and restrictions, signed by the bureau", async () => {
    const sync = await call(bureau, `/api/v1/sync?taxpayerId=${TAXPAYER}&deviceSerial=${DEVICE}`);
    expect(sync.status).toBe(200);
    expect(sync.json.payload.stock).toEqual([{ typeCode: "02601", invoiceCode: INVOICE_CODE, startNumber: 1, count: 100_000, purchasedOn: "20260101" }]);
    expect(sync.json.issuerMessages).toEqual([]);
    // No master key and no registered card key: the bureau cannot speak to the card, even given a challenge.
    const blind = await call(bureau, `/api/v1/sync?taxpayerId=${TAXPAYER}&deviceSerial=${DEVICE}&challenge=${"ab".repeat(16)}`);
    expect(blind.status).toBe(200);
    expect(blind.json.issuerMessages).toEqual([]);
    expect(sync.json.payload.limits.offlineHours).toBe(72);
    expect(sync.json.payload.restrictions).toEqual({ issuingLocked: false, allowedKinds: ["normal", "red"] });
    expect(JSON.parse(sync.json.payloadText)).toEqual(sync.json.payload);
    expect(sm2Verify(signerKey(), new TextEncoder().encode(sync.json.payloadText), b64ToBytes(sync.json.signature))).toBe(true);
    expect((await call(bureau, `/api/v1/sync?taxpayerId=91000000000000000X&deviceSerial=${DEVICE}`)).json.code).toBe("UNKNOWN_TAXPAYER");
    expect((await call(bureau, `/api/v1/sync?taxpayerId=${TAXPAYER}&deviceSerial=NOPE`)).status).toBe(404);
    expect((await call(bureau, `/api/v1/sync?taxpayerId=bad`)).status).toBe(400);
  });

  it("answers unknown paths 404 and wrong methods 405, as JSON", async () => {
    const missing = await call(bureau, "/api/v1/nothing");
    expect(missing.status).toBe(404);
    expect(missing.json.code).toBe("NOT_FOUND");
    const wrong = await call(bureau, "/api/v1/upload");
    expect(wrong.status).toBe(405);
    expect(wrong.json.code).toBe("METHOD_NOT_ALLOWED");
  });
});

describe("upload", () => {
  it("verifies and stores a batch, returning a receipt signed by the bureau", async () => {
    const before = bureau.store.invoiceCount();
    const reply = await call(bureau, "/api/v1/upload", { json: device.batch([1, 2, 3], { clientTime: clock.now() + 60_000 }) });
    expect(reply.status).toBe(200);
    const { receipt, receiptText, signature, replayed } = reply.json;
    expect(replayed).toBe(false);
    expect(receipt.accepted).toEqual([1, 2, 3].map((n) => ({ invoiceCode: INVOICE_CODE, invoiceNumber: String(n).padStart(8, "0") })));
    expect(receipt.rejected).toEqual([]);
    expect(JSON.parse(receiptText)).toEqual(receipt);
    expect(sm2Verify(signerKey(), new TextEncoder().encode(receiptText), b64ToBytes(signature))).toBe(true);
    expect(bureau.store.invoiceCount()).toBe(before + 3);
    const stored = bureau.store.invoice(INVOICE_CODE, "00000002");
    expect(stored?.totalFen).toBe(11_300 + 2 * 113);
    expect(stored?.receiptId).toBe(receipt.receiptId);
  });

  it("stores a re-uploaded batch once and returns the same receipt; overlapping batches store only the new invoices", async () => {
    const batch = device.batch([10, 11]);
    const eleven = (batch.invoices as unknown[])[1];
    const first = await call(bureau, "/api/v1/upload", { json: batch });
    const before = counts();
    clock.advance(60_000);
    const again = await call(bureau, "/api/v1/upload", { json: batch });
    expect(again.json.replayed).toBe(true);
    expect(again.json.receiptText).toBe(first.json.receiptText);
    expect(again.json.signature).toBe(first.json.signature);
    expect(counts()).toEqual(before);
    const overlap = await call(bureau, "/api/v1/upload", { json: { ...batch, invoices: [eleven, device.invoice(12)] } });
    expect(overlap.json.receipt.accepted.map((a: { invoiceNumber: string }) => a.invoiceNumber)).toEqual(["00000011", "00000012"]);
    expect(overlap.json.receipt.receiptId).not.toBe(first.json.receipt.receiptId);
    expect(bureau.store.invoiceCount()).toBe(before.invoices + 1);
    expect(bureau.store.invoice(INVOICE_CODE, "00000011")?.receiptId).toBe(first.json.receipt.receiptId);
  });

  it("rejects a tampered invoice, a wrong tax control code, a reused number and a number outside the stock", async () => {
    const good = device.invoice(20);
    const goodBytes = Buffer.from(good.data, "base64");
    const at = goodBytes.indexOf("Buyer A");
    expect(at).toBeGreaterThan(0);
    goodBytes[at + 6] = "B".charCodeAt(0);
    const tampered = { data: goodBytes.toString("base64"), signature: good.signature };
    const wrongKey = new Uint8Array(16).fill(7);
    const badTccSigned = signInvoiceAsDevice(makeInvoice(TAXPAYER, 21, clock.now()), wrongKey, device.keyPair);
    const badTcc = { data: Buffer.from(badTccSigned.data).toString("base64"), signature: Buffer.from(badTccSigned.signature).toString("base64") };
    const reused = device.invoice(1, { remark: "other content" }); // number 1 was stored with another remark
    const outside = device.invoice(200_000);
    const garbage = { data: Buffer.from("not an invoice").toString("base64"), signature: good.signature };
    const reply = await call(bureau, "/api/v1/upload", {
      json: { taxpayerId: TAXPAYER, deviceSerial: DEVICE, certificates: device.chain, invoices: [tampered, badTcc, reused, outside, garbage, device.invoice(22)] },
    });
    expect(reply.status).toBe(200);
    expect(reply.json.receipt.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
      [0, "BAD_SIGNATURE"], [1, "BAD_TAX_CONTROL_CODE"], [2, "DUPLICATE_NUMBER"], [3, "NOT_IN_STOCK"], [4, "MALFORMED_INVOICE"],
    ]);
    expect(reply.json.receipt.accepted).toEqual([{ invoiceCode: INVOICE_CODE, invoiceNumber: "00000022" }]);
    expect(bureau.store.invoice(INVOICE_CODE, "00000001")?.totalFen).toBe(11_300 + 113);
    expect(bureau.store.invoice(INVOICE_CODE, "00000020")).toBeUndefined();
  });

  it("refuses a batch whose device chain is bad, with the chain's reason, and stores nothing", async () => {
    const before = counts();
    const noIntermediate = await call(bureau, "/api/v1/upload", { json: device.batch([30], { certificates: [device.chain[0]] }) });
    expect(noIntermediate.status).toBe(403);
    expect(noIntermediate.json.code).toBe("MISSING_INTERMEDIATE");

    const rogueRng = new Rng(99);
    const rogueRoot = createRootCa({ rng: rogueRng, subject: { commonName: "ukeysim Tax Root CA" }, notBefore: START - MS_PER_DAY, notAfter: START + 1000 * MS_PER_DAY });
    const rogueCa = createIntermediateCa({ rng: rogueRng, issuer: rogueRoot, subject: { commonName: "Rogue CA" }, notBefore: START - MS_PER_DAY, notAfter: START + 1000 * MS_PER_DAY });
    const rogueLeaf = issueDeviceCertificate({ rng: rogueRng, issuer: rogueCa, publicKey: device.keyPair.publicKey, taxpayerId: TAXPAYER, deviceSerial: DEVICE, notBefore: START - MS_PER_DAY, notAfter: START + 100 * MS_PER_DAY });
    const rogue = await call(bureau, "/api/v1/upload", { json: device.batch([30], { certificates: [Buffer.from(rogueLeaf).toString("base64"), Buffer.from(rogueCa.der).toString("base64")] }) });
    expect(rogue.status).toBe(403);
    expect(rogue.json.code).toBe("UNKNOWN_ISSUER");

    const otherKey = sm2GenerateKeyPair(rng);
    const other = bureau.service.issueDeviceCertificate({ publicKey: Buffer.from(otherKey.publicKey).toString("hex"), taxpayerId: "91110000000000000A", deviceSerial: "UK0009" });
    const mismatch = await call(bureau, "/api/v1/upload", { json: device.batch([30], { certificates: other.chain }) });
    expect(mismatch.json.code).toBe("CERT_SUBJECT_MISMATCH");

    const bad = await call(bureau, "/api/v1/upload", { json: device.batch([30], { certificates: ["MIIB"] }) });
    expect(bad.status).toBe(400);
    expect(bad.json.code).toBe("BAD_CERTIFICATE");
    expect(counts()).toEqual(before);
  });

  it("refuses a revoked device after the bureau publishes its revocation", async () => {
    const local = await boot({}, 5);
    try {
      const d = registerDevice(local.bureau, local.clock, new Rng(5));
      expect((await call(local.bureau, "/api/v1/upload", { json: d.batch([1]) })).status).toBe(200);
      const serial = parseCertificate(b64ToBytes(d.chain[0]!)).serial;
      const revoked = await call(local.bureau, "/api/v1/admin/revocations", { json: { serial } });
      expect(revoked.json.crlNumber).toBe(2);
      const crl = parseCrl(new Uint8Array((await call(local.bureau, "/api/v1/crl")).body));
      expect(crl.revoked.map((r) => r.serial)).toEqual([serial]);
      const refused = await call(local.bureau, "/api/v1/upload", { json: d.batch([2]) });
      expect(refused.status).toBe(403);
      expect(refused.json.code).toBe("REVOKED");
      expect(local.bureau.store.invoiceCount()).toBe(1);
    } finally {
      await local.bureau.stop();
    }
  });

  it("refuses an expired device certificate and, with CRL publication stopped, a stale CRL", async () => {
    const local = await boot({}, 6);
    try {
      const d = registerDevice(local.bureau, local.clock, new Rng(6));
      local.clock.advance(3 * 365 * MS_PER_DAY);
      const expired = await call(local.bureau, "/api/v1/upload", { json: d.batch([1]) });
      expect(expired.json.code).toBe("EXPIRED");
      const fresh = await boot({}, 7);
      try {
        const e = registerDevice(fresh.bureau, fresh.clock, new Rng(7));
        await fresh.bureau.setFaults({ crlPublicationStopped: true });
        fresh.clock.advance(MS_PER_DAY + 1000);
        const stale = await call(fresh.bureau, "/api/v1/upload", { json: e.batch([1]) });
        expect(stale.json.code).toBe("CRL_STALE");
        await fresh.bureau.setFaults({ crlPublicationStopped: false });
        expect((await call(fresh.bureau, "/api/v1/upload", { json: e.batch([1]) })).status).toBe(200);
      } finally {
        await fresh.bureau.stop();
      }
    } finally {
      await local.bureau.stop();
    }
  });

  it("refuses a client whose clock is more than 5 minutes off", async () => {
    const reply = await call(bureau, "/api/v1/upload", { json: device.batch([40], { clientTime: clock.now() - 6 * 60_000 }) });
    expect(reply.status).toBe(409);
    expect(reply.json.code).toBe("CLOCK_SKEW");
    expect(reply.json.serverTime).toBe(clock.now());
  });
});

describe("bad HTTP input gets a 4xx JSON error and changes nothing", () => {
  const cases: [string, Parameters<typeof call>[2], number, string][] = [
    ["not JSON", { raw: "{not json" }, 400, "BAD_JSON"],
    ["not UTF-8", { raw: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) }, 400, "BAD_JSON"],
    ["wrong content type", { raw: "{}", contentType: "text/plain" }, 415, "UNSUPPORTED_MEDIA_TYPE"],
    ["an array", { json: [] }, 400, "BAD_REQUEST"],
    ["missing fields", { json: { taxpayerId: TAXPAYER } }, 400, "BAD_REQUEST"],
    ["unknown field", { json: { taxpayerId: TAXPAYER, deviceSerial: DEVICE, certificates: ["AA=="], invoices: [{ data: "AA==", signature: "AA==" }], admin: true } }, 400, "BAD_REQUEST"],
    ["bad base64", { json: { taxpayerId: TAXPAYER, deviceSerial: DEVICE, certificates: ["@@@@"], invoices: [{ data: "AA==", signature: "AA==" }] } }, 400, "BAD_REQUEST"],
    ["no invoices", { json: { taxpayerId: TAXPAYER, deviceSerial: DEVICE, certificates: ["AA=="], invoices: [] } }, 400, "BAD_REQUEST"],
    ["too many invoices", { json: { taxpayerId: TAXPAYER, deviceSerial: DEVICE, certificates: ["AA=="], invoices: Array(MAX_INVOICES_PER_BATCH + 1).fill({ data: "AA==", signature: "AA==" }) } }, 400, "BAD_REQUEST"],
    ["fractional clientTime", { json: { taxpayerId: TAXPAYER, deviceSerial: DEVICE, certificates: ["AA=="], invoices: [{ data: "AA==", signature: "AA==" }], clientTime: 1.5 } }, 400, "BAD_REQUEST"],
  ];
  for (const [name, options, status, code] of cases) {
    it(`upload: ${name} -> ${status} ${code}`, async () => {
      const before = counts();
      const reply = await call(bureau, "/api/v1/upload", options);
      expect(reply.status).toBe(status);
      expect(reply.json).toMatchObject({ code });
      expect(typeof reply.json.message).toBe("string");
      expect(counts()).toEqual(before);
    });
  }

  it("an oversized body -> 413 BODY_TOO_LARGE, declared or streamed", async () => {
    const before = counts();
    const big = JSON.stringify({ pad: "x".repeat(3 * 1024 * 1024) });
    const reply = await call(bureau, "/api/v1/upload", { raw: big });
    expect(reply.status).toBe(413);
    expect(reply.json.code).toBe("BODY_TOO_LARGE");
    expect(counts()).toEqual(before);
  });

  it("bad admin input: taxpayer, device, certificate request, revocation, faults", async () => {
    const before = { ...counts(), crl: (await call(bureau, "/api/v1/crl")).body.toString("hex") };
    const expectations: [string, unknown, string][] = [
      ["/api/v1/admin/taxpayers", { taxpayerId: "x" }, "BAD_REQUEST"],
      ["/api/v1/admin/taxpayers", { taxpayerId: "91999999999999999Z", name: "n", limits: { offlineHours: 1, maxInvoiceFen: 1, maxOfflineTotalFen: 1, maxOfflineCount: 1 }, stock: [{ invoiceCode: INVOICE_CODE, startNumber: 5, count: 1 }] }, "STOCK_CONFLICT"],
      ["/api/v1/admin/devices", { deviceSerial: "UK2", taxpayerId: "91999999999999999Z", taxControlKey: "00".repeat(16) }, "UNKNOWN_TAXPAYER"],
      ["/api/v1/admin/devices", { deviceSerial: "UK2", taxpayerId: TAXPAYER, taxControlKey: "00" }, "BAD_REQUEST"],
      ["/api/v1/admin/device-certificates", { publicKey: "04" + "00".repeat(64), taxpayerId: TAXPAYER, deviceSerial: "UK2" }, "BAD_REQUEST"],
      ["/api/v1/admin/revocations", { serial: "xyz" }, "BAD_REQUEST"],
      ["/api/v1/admin/faults", { http502: "yes" }, "BAD_FAULTS"],
      ["/api/v1/admin/faults", { teleport: true }, "BAD_FAULTS"],
    ];
    for (const [path, json, code] of expectations) {
      const reply = await call(bureau, path, { json });
      expect(reply.status, `${path} ${JSON.stringify(json)}`).toBeGreaterThanOrEqual(400);
      expect(reply.status, `${path} ${JSON.stringify(json)} ${reply.text}`).toBeLessThan(500);
      expect(reply.json.code, path).toBe(code);
    }
    expect({ ...counts(), crl: (await call(bureau, "/api/v1/crl")).body.toString("hex") }).toEqual(before);
    expect(bureau.store.taxpayer("91999999999999999Z")).toBeUndefined();
  });
});
