/**
 * The offline issuer end to end: a real bureau over HTTPS on loopback, an in-process Ukey,
 * the local SQLite DB. Sync, offline issue within and beyond each limit, void, red-letter,
 * upload with signed receipts confirmed to the Ukey, rollover marks, online issuing only
 * after everything is uploaded, login with two passwords.
 */
import { afterEach, describe, expect, it } from "vitest";
import { E, decodeInvoice, InvoiceState, formatInvoiceNumber } from "../../src/tax/index.ts";
import { RT } from "../../src/cos/index.ts";
import { HostError, UkeyError } from "../../src/host/index.ts";
import { newRig, input, PASSWORD, PROFILE, taxpayerRegistration, BUREAU_LIMITS, type Rig } from "./support/rig.ts";

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

async function codeOf(p: Promise<unknown>): Promise<string | number> {
  try {
    await p;
  } catch (e) {
    if (e instanceof UkeyError) return e.code;
    if (e instanceof HostError) return e.code;
    throw e;
  }
  throw new Error("expected a refusal");
}

function snapshot(r: Rig) {
  return { invoices: r.db.invoices().length, open: r.db.openIntents().length, bureau: r.bureau.store.invoiceCount() };
}

describe("login", () => {
  it("needs the host system password and the Ukey PIN", async () => {
    rig = await newRig({ login: false });
    expect(await codeOf(rig.issuer.login({ password: "wrong-password", pin: PROFILE.userPin }))).toBe("BAD_PASSWORD");
    const e = await rig.issuer.login({ password: PASSWORD, pin: "00000000" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UkeyError);
    expect((e as UkeyError).code).toBe(E.PIN_ERROR);
    expect((e as UkeyError).sw).toBe(0x63c5);
    expect((e as UkeyError).tries).toBe(5);
    expect(() => rig!.issuer.who).toThrow(/NOT_LOGGED_IN/);
    await rig.issuer.login({ password: PASSWORD, pin: PROFILE.userPin });
    expect(rig.issuer.who.serial).toBe("UK00000000000001");
    expect(rig.issuer.who.taxpayer.taxpayerId).toBe(PROFILE.taxpayer.taxpayerId);
  });
});

describe("sync", () => {
  it("applies the bureau's stock and limits to the Ukey and keeps the CRL", async () => {
    rig = await newRig();
    rig.bureau.service.registerTaxpayer(taxpayerRegistration({ ...BUREAU_LIMITS, maxOfflineCount: 7, maxInvoiceFen: 500_000 }));
    const report = await rig.issuer.sync();
    expect(report.messagesApplied).toBe(3);
    const { limits } = await rig.client.getLimits();
    expect(limits.maxOfflineCount).toBe(7);
    expect(limits.singleLimitFen).toBe(500_000);
    expect(limits.offlineAllowed).toBe(1);
    expect(limits.validUntil).toBe(Math.floor(rig.clock.now() / 1000) + 72 * 3600);
    expect(rig.db.meta("crl")).toMatch(/^30/);
    const purchases = (await rig.client.getPurchases()).filter((p) => p.status !== 0);
    expect(purchases.map((p) => p.invoiceCode)).toEqual(PROFILE.purchases.map((p) => p.invoiceCode));
  });

  it("locks offline issuing when the bureau restricts the taxpayer", async () => {
    rig = await newRig();
    rig.bureau.service.registerTaxpayer({ ...taxpayerRegistration(), restrictions: { issuingLocked: true, allowedKinds: ["normal", "red"] } });
    await rig.issuer.sync();
    expect(await codeOf(rig.issuer.issue(input()))).toBe(E.OFFLINE_EXPIRED);
  });
});

describe("offline issuing", () => {
  it("commits on the Ukey, then the DB, then prints", async () => {
    rig = await newRig();
    await rig.issuer.sync();
    const row = await rig.issuer.issue(input(12_345));
    expect(row.invoiceCode).toBe("137001900111");
    expect(row.invoiceNumber).toBe(1001);
    expect(row.mode).toBe("offline");
    expect(row.grandTotalFen).toBe(12_345 + 1605);
    expect(row.printedAt).not.toBeNull();
    const onCard = await rig.client.readInvoice(row.invoiceCode, row.invoiceNumber);
    expect(Buffer.from(onCard.issued.invoice)).toEqual(Buffer.from(row.invoice));
    expect(onCard.issued.taxCode).toBe(row.taxCode);
    expect(rig.printed).toHaveLength(1);
    expect(rig.printed[0]).toContain(row.taxCode);
    expect(rig.printed[0]).toContain(formatInvoiceNumber(1001));
    expect(rig.printed[0]).toContain("<svg");
    const inv = decodeInvoice(row.invoice);
    expect(inv.sellerName).toBe(PROFILE.taxpayer.taxpayerName);
    expect(inv.issuedAt).toBe(Math.floor(rig.clock.now() / 1000));
    const second = await rig.issuer.issue(input());
    expect(second.invoiceNumber).toBe(1002);
  });

  it("the same request id never issues twice", async () => {
    rig = await newRig();
    const a = await rig.issuer.issue(input(), { requestId: "req-1" });
    const b = await rig.issuer.issue(input(), { requestId: "req-1" });
    expect(b.invoiceNumber).toBe(a.invoiceNumber);
    expect(rig.db.invoices()).toHaveLength(1);
    expect((await rig.issuer.status()).pendingOnUkey).toBe(1);
    expect(await codeOf(rig.issuer.issue(input(20_000), { requestId: "req-1" }))).toBe("BAD_ARGUMENT");
  });

  it("single-invoice limit: at the limit passes, one fen over is refused and changes nothing", async () => {
    rig = await newRig();
    rig.bureau.service.registerTaxpayer(taxpayerRegistration({ ...BUREAU_LIMITS, maxInvoiceFen: 113_000 }));
    await rig.issuer.sync();
    await rig.issuer.issue(input(100_000)); // 100000 + 13000 tax = 113000
    const before = snapshot(rig);
    const e = await rig.issuer.issue(input(100_001)).catch((x: unknown) => x);
    expect((e as UkeyError).code).toBe(E.AMOUNT_LIMIT);
    expect((e as UkeyError).sw).toBe(0x9419);
    expect(snapshot(rig)).toEqual(before);
    expect(rig.printed).toHaveLength(1);
  });

  it("offline count limit", async () => {
    rig = await newRig();
    rig.bureau.service.registerTaxpayer(taxpayerRegistration({ ...BUREAU_LIMITS, maxOfflineCount: 3 }));
    await rig.issuer.sync();
    for (let i = 0; i < 3; i++) await rig.issuer.issue(input());
    expect(await codeOf(rig.issuer.issue(input()))).toBe(E.OFFLINE_COUNT);
    expect(rig.db.invoices()).toHaveLength(3);
  });

  it("cumulative offline amount limit", async () => {
    rig = await newRig();
    rig.bureau.service.registerTaxpayer(taxpayerRegistration({ ...BUREAU_LIMITS, maxOfflineTotalFen: 226_000 }));
    await rig.issuer.sync();
    await rig.issuer.issue(input(100_000));
    await rig.issuer.issue(input(100_000));
    expect(await codeOf(rig.issuer.issue(input(1)))).toBe(E.OFFLINE_AMOUNT);
  });

  it("offline time window: refused after the bureau's offline hours", async () => {
    rig = await newRig();
    await rig.issuer.sync();
    rig.clock.advance(71 * 3600_000);
    await rig.issuer.issue(input());
    rig.clock.advance(2 * 3600_000);
    expect(await codeOf(rig.issuer.issue(input()))).toBe(E.OFFLINE_EXPIRED);
  });

  it("stock used up", async () => {
    rig = await newRig();
    rig.bureau.service.registerTaxpayer({ ...taxpayerRegistration(), stock: [{ invoiceCode: "137001900333", startNumber: 1, count: 3 }] });
    await rig.issuer.sync();
    for (let i = 0; i < 3; i++) expect((await rig.issuer.issue(input())).invoiceCode).toBe("137001900333");
    expect(await codeOf(rig.issuer.issue(input()))).toBe(E.NO_STOCK);
    expect(rig.db.invoices()).toHaveLength(3);
  });
});

describe("void and red-letter", () => {
  it("voids on the Ukey first, then in the DB; a second void is refused by the Ukey", async () => {
    rig = await newRig();
    const row = await rig.issuer.issue(input());
    const voided = await rig.issuer.voidInvoice(row.invoiceCode, row.invoiceNumber);
    expect(voided.voidedAt).not.toBeNull();
    expect((await rig.client.readInvoice(row.invoiceCode, row.invoiceNumber)).state).toBe(InvoiceState.VOIDED);
    expect(await codeOf(rig.client.voidInvoice(row.invoiceCode, row.invoiceNumber))).toBe(E.INVOICE_STATE);
    expect(await codeOf(rig.issuer.voidInvoice("137001900111", 9999))).toBe("UNKNOWN_INVOICE");
    const html = await rig.issuer.print(rig.db.invoice(row.invoiceCode, row.invoiceNumber)!);
    expect(html).toContain("VOID");
  });

  it("red-letter credit against an original, not beyond its remainder", async () => {
    rig = await newRig();
    const original = await rig.issuer.issue(input(10_000));
    const red = await rig.issuer.red(original.invoiceCode, original.invoiceNumber);
    expect(red.kind).toBe("red");
    expect(red.originalNumber).toBe(original.invoiceNumber);
    expect(red.grandTotalFen).toBe(original.grandTotalFen);
    expect((await rig.client.readInvoice(original.invoiceCode, original.invoiceNumber)).creditedFen).toBe(original.grandTotalFen);
    expect(await codeOf(rig.issuer.red(original.invoiceCode, original.invoiceNumber))).toBe(E.INVOICE_STATE);
    expect(await codeOf(rig.issuer.voidInvoice(original.invoiceCode, original.invoiceNumber))).toBe(E.INVOICE_STATE);
    expect(rig.printed.at(-1)).toContain("红字");
  });
});

describe("upload", () => {
  it("uploads in batches, verifies the signed receipts, confirms to the Ukey; online issuing only afterwards", async () => {
    rig = await newRig();
    await rig.issuer.sync();
    const rows = [];
    for (let i = 0; i < 20; i++) rows.push(await rig.issuer.issue(input(1000 + i)));
    expect(await codeOf(rig.issuer.issue(input(), { online: true }))).toBe("OFFLINE_DATA_PENDING");
    const report = await rig.issuer.upload();
    expect(report.uploaded).toBe(20);
    expect(report.batches).toBe(2);
    expect(report.receipts).toHaveLength(2);
    expect(report.stopped).toBeUndefined();
    expect(rig.bureau.store.invoiceCount()).toBe(20);
    expect(rig.db.countPendingUpload()).toBe(0);
    expect(rig.db.receiptCount()).toBe(2);
    const status = await rig.issuer.status();
    expect(status.pendingOnUkey).toBe(0);
    expect(status.offlineCount).toBe(0);
    for (const r of rows) expect(rig.store.isReclaimable(RT.INVOICE, r.seq)).toBe(true);
    const stored = rig.bureau.store.invoice(rows[0]!.invoiceCode, formatInvoiceNumber(rows[0]!.invoiceNumber));
    expect(Buffer.from(stored!.signature)).toEqual(Buffer.from(rows[0]!.signature));
    const online = await rig.issuer.issue(input(), { online: true });
    expect(online.mode).toBe("online");
    expect(await rig.issuer.upload()).toMatchObject({ uploaded: 1 });
    expect(rig.bureau.store.invoiceCount()).toBe(21);
    expect((await rig.issuer.upload()).uploaded).toBe(0);
    // the host died between CONFIRM UPLOAD and its DB write: the next login learns it from the Ukey
    rig.db.db.prepare("UPDATE invoices SET uploaded = 0, receipt_id = NULL").run();
    const rec = await rig.issuer.login({ password: PASSWORD, pin: PROFILE.userPin });
    expect(rec.uploadsSettled).toBe(21);
    expect(rig.db.countPendingUpload()).toBe(0);
  });

  it("uploads red-letter invoices and voids (the Ukey's signed export): the bureau marks the void", async () => {
    rig = await newRig();
    const a = await rig.issuer.issue(input());
    await rig.issuer.red(a.invoiceCode, a.invoiceNumber);
    const b = await rig.issuer.issue(input());
    await rig.issuer.voidInvoice(b.invoiceCode, b.invoiceNumber);
    const report = await rig.issuer.upload();
    expect(report.uploaded).toBe(3);
    expect(report.confirmedThrough).toBe(4);
    expect(report.stopped).toBeUndefined();
    expect(rig.bureau.store.invoiceCount()).toBe(3);
    expect(rig.bureau.store.invoice(b.invoiceCode, formatInvoiceNumber(b.invoiceNumber))?.voidedAt).toBeDefined();
    expect(rig.bureau.store.invoice(a.invoiceCode, formatInvoiceNumber(a.invoiceNumber))?.voidedAt).toBeUndefined();
    expect((await rig.issuer.status()).pendingOnUkey).toBe(0);
    const seqB = rig.db.invoice(b.invoiceCode, b.invoiceNumber)!.seq;
    expect(rig.store.isReclaimable(RT.INVOICE, seqB)).toBe(true);
  });

  it("rollover: a full Ukey refuses, the upload confirms, rollover reclaims confirmed invoices and issuing goes on; the DB keeps them all", async () => {
    const probe = await newRig();
    const base = probe.store.stats().usedBytes;
    await probe.issuer.issue(input());
    const perInvoice = probe.store.stats().usedBytes - base;
    await probe.stop();
    rig = await newRig({ capacityBytes: base + Math.floor(perInvoice * 6.5) });
    let issued = 0;
    for (; issued < 20; issued++) {
      const e = await rig.issuer.issue(input(1000 + issued)).catch((x: unknown) => x);
      if (e instanceof UkeyError) {
        expect(e.code).toBe(E.STORAGE_FULL);
        break;
      }
    }
    expect(issued).toBeGreaterThanOrEqual(5);
    expect(issued).toBeLessThan(20);
    expect((await rig.issuer.upload()).uploaded).toBe(issued);
    for (let i = 0; i < issued; i++) await rig.issuer.issue(input(5000 + i));
    expect((await rig.client.getDeviceInfo()).reclaimedRecords).toBeGreaterThan(0);
    expect(rig.db.invoices()).toHaveLength(2 * issued);
    const first = rig.db.invoices()[0]!;
    expect(await codeOf(rig.client.readInvoice(first.invoiceCode, first.invoiceNumber))).toBe(E.DATA_NOT_EXIST);
    expect(await rig.issuer.print(first)).toContain(first.taxCode);
    const rec = await rig.issuer.login({ password: PASSWORD, pin: PROFILE.userPin });
    expect(rec).toMatchObject({ committed: 0, aborted: 0, adopted: 0 });
    expect((await rig.issuer.upload()).uploaded).toBe(issued);
    expect(rig.bureau.store.invoiceCount()).toBe(2 * issued);
  });

  it("an invoice the bureau rejects stays pending and stops the upload", async () => {
    rig = await newRig();
    await rig.issuer.issue(input(100_000));
    rig.bureau.service.registerTaxpayer(taxpayerRegistration({ ...BUREAU_LIMITS, maxInvoiceFen: 1000 }));
    const report = await rig.issuer.upload();
    expect(report.uploaded).toBe(0);
    expect(report.stopped?.code).toBe("UPLOAD_REJECTED");
    expect(report.stopped?.message).toContain("OVER_LIMIT");
    expect((await rig.issuer.status()).pendingOnUkey).toBe(1);
    expect(rig.db.countPendingUpload()).toBe(1);
  });
});

describe("over USB/IP", () => {
  it("issues and uploads with the Ukey served over USB/IP + CCID (src/transport)", async () => {
    const { serveUsbip, openChannel } = await import("../../src/transport/index.ts");
    const { UkeyClient, HostDb, OfflineIssuer, BureauHttp, setPassword } = await import("../../src/host/index.ts");
    const { Rng } = await import("../../src/sim/index.ts");
    rig = await newRig({ login: false });
    const server = await serveUsbip(rig.card, { host: "127.0.0.1", port: 0 });
    const channel = await openChannel(server.target);
    const db = new HostDb(":memory:");
    try {
      setPassword(db, new Rng(1), PASSWORD);
      const issuer = new OfflineIssuer({ client: new UkeyClient(channel), db, clock: rig.clock, rng: new Rng(2), bureau: new BureauHttp({ serverUrl: rig.bureau.url, caPem: rig.bureau.caCertPem }) });
      await issuer.login({ password: PASSWORD, pin: PROFILE.userPin });
      await issuer.sync();
      const row = await issuer.issue(input());
      expect(row.invoiceNumber).toBe(1001);
      expect((await issuer.upload()).uploaded).toBe(1);
      expect(rig.bureau.store.invoiceCount()).toBe(1);
    } finally {
      db.close();
      await channel.close();
      await server.close();
    }
  });
});
