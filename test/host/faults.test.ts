/**
 * Network faults during upload leave the bureau with every invoice exactly once; lost
 * Ukey answers are settled by reconciliation (nothing lost, nothing issued twice, nothing
 * printed that the Ukey did not commit); malformed input and bureau answers change nothing.
 */
import { afterEach, describe, expect, it } from "vitest";
import { E, formatInvoiceNumber, INS, FACTORY_ISSUER_KEY } from "../../src/tax/index.ts";
import { ChannelError, type ApduChannel } from "../../src/transport/index.ts";
import {
  BureauHttp, BureauHttpError, HostError, OfflineIssuer, UkeyClient, UkeyError, parseInvoiceInput, parseInvoiceJson, LocalIssuerAgent,
} from "../../src/host/index.ts";
import { newRig, input, PASSWORD, PROFILE, type Rig } from "./support/rig.ts";

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

async function issueMany(r: Rig, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await r.issuer.issue(input(1000 + i));
}

/** Every invoice in the DB is at the bureau exactly once, with the Ukey's bytes. */
function assertExactlyOnce(r: Rig): void {
  const rows = r.db.invoices();
  expect(r.bureau.store.invoiceCount()).toBe(rows.length);
  for (const row of rows) {
    const stored = r.bureau.store.invoice(row.invoiceCode, formatInvoiceNumber(row.invoiceNumber));
    expect(stored, `${row.invoiceCode}/${row.invoiceNumber}`).toBeDefined();
    expect(Buffer.from(stored!.signature)).toEqual(Buffer.from(row.signature));
  }
}

describe("upload under network faults", () => {
  it("502s then recovery: retried with exponential backoff, every invoice exactly once", async () => {
    rig = await newRig();
    await issueMany(rig, 5);
    let sleeps = 0;
    rig.sleeps.length = 0;
    const { Rng } = await import("../../src/sim/index.ts");
    const issuer = new OfflineIssuer({
      client: rig.client, db: rig.db, clock: rig.clock, rng: new Rng(3),
      bureau: new BureauHttp({ serverUrl: rig.bureau.url, caPem: rig.bureau.caCertPem }), agent: new LocalIssuerAgent(PROFILE.bureauMasterKey),
      sleep: async (ms) => {
        rig!.sleeps.push(ms);
        if (++sleeps === 3) await rig!.bureau.setFaults({ http502: false });
      },
    });
    await issuer.login({ password: PASSWORD, pin: PROFILE.userPin });
    await issuer.bureauPki();
    await rig.bureau.setFaults({ http502: true });
    const report = await issuer.upload();
    expect(rig.sleeps).toEqual([200, 400, 800]);
    expect(report.uploaded).toBe(5);
    expect(report.attempts).toBe(4);
    assertExactlyOnce(rig);
  });

  it("server stopped mid-upload (connection refused on the second batch), resumed: exactly once", async () => {
    rig = await newRig();
    await issueMany(rig, 40);
    const { Rng } = await import("../../src/sim/index.ts");
    let sleeps = 0;
    const issuer = new OfflineIssuer({
      client: rig.client, db: rig.db, clock: rig.clock, rng: new Rng(3), agent: new LocalIssuerAgent(PROFILE.bureauMasterKey),
      bureau: new (class extends BureauHttp {
        n = 0;
        override async post<T>(path: string, body: unknown): Promise<T> {
          if (++this.n === 2) await rig!.bureau.setFaults({ refuseConnections: true });
          return super.post<T>(path, body);
        }
      })({ serverUrl: rig.bureau.url, caPem: rig.bureau.caCertPem }),
      retry: { attempts: 3 },
      sleep: async () => void sleeps++,
    });
    await issuer.login({ password: PASSWORD, pin: PROFILE.userPin });
    const e = await issuer.upload().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BureauHttpError);
    expect((e as BureauHttpError).code).toBe("NETWORK");
    expect(sleeps).toBe(2);
    expect(rig.bureau.store.invoiceCount()).toBe(16);
    expect(rig.db.countPendingUpload()).toBe(24);
    expect((await issuer.status()).pendingOnUkey).toBe(24);
    await rig.bureau.setFaults({ refuseConnections: false });
    const report = await rig.issuer.upload();
    expect(report.uploaded).toBe(24);
    assertExactlyOnce(rig);
    expect((await rig.issuer.status()).pendingOnUkey).toBe(0);
  });

  it("answer lost after the bureau stored the batch (timeout): the retry gets the replayed receipt, no second row", async () => {
    rig = await newRig();
    await issueMany(rig, 3);
    const { Rng } = await import("../../src/sim/index.ts");
    // The first POST reaches the bureau, but the host's answer is dropped: simulate by uploading
    // the same batch through the bureau first, then letting the host upload it again.
    let first = true;
    const issuer = new OfflineIssuer({
      client: rig.client, db: rig.db, clock: rig.clock, rng: new Rng(3), agent: new LocalIssuerAgent(PROFILE.bureauMasterKey),
      bureau: new (class extends BureauHttp {
        override async post<T>(path: string, body: unknown): Promise<T> {
          const answer = await super.post<T>(path, body);
          if (first) {
            first = false;
            throw new BureauHttpError("TIMEOUT", "answer lost");
          }
          return answer;
        }
      })({ serverUrl: rig.bureau.url, caPem: rig.bureau.caCertPem }),
      sleep: async () => undefined,
    });
    await issuer.login({ password: PASSWORD, pin: PROFILE.userPin });
    const report = await issuer.upload();
    expect(report.uploaded).toBe(3);
    expect(report.attempts).toBe(2);
    expect(rig.bureau.store.receiptCount()).toBe(1);
    assertExactlyOnce(rig);
  });

  it("slow server beyond the timeout: retried, then exactly once", async () => {
    rig = await newRig();
    await issueMany(rig, 2);
    await rig.bureau.setFaults({ delayMs: 600 });
    const { Rng } = await import("../../src/sim/index.ts");
    let sleeps = 0;
    const issuer = new OfflineIssuer({
      client: rig.client, db: rig.db, clock: rig.clock, rng: new Rng(3), agent: new LocalIssuerAgent(PROFILE.bureauMasterKey),
      bureau: new BureauHttp({ serverUrl: rig.bureau.url, caPem: rig.bureau.caCertPem, timeoutMs: 300 }),
      sleep: async () => {
        if (++sleeps === 1) await rig!.bureau.setFaults({ delayMs: 0 });
      },
    });
    await issuer.login({ password: PASSWORD, pin: PROFILE.userPin }).catch(() => undefined);
    const report = await issuer.upload();
    expect(report.uploaded).toBe(2);
    assertExactlyOnce(rig);
  });

  it("host clock more than 5 minutes off: the bureau refuses the upload (CLOCK_SKEW), not retried, nothing changes", async () => {
    rig = await newRig();
    await issueMany(rig, 1);
    const { Rng, VirtualClock } = await import("../../src/sim/index.ts");
    const issuer = new OfflineIssuer({
      client: rig.client, db: rig.db, clock: new VirtualClock(rig.clock.now() + 6 * 60_000), rng: new Rng(3),
      bureau: new BureauHttp({ serverUrl: rig.bureau.url, caPem: rig.bureau.caCertPem }), sleep: async () => undefined,
    });
    await issuer.login({ password: PASSWORD, pin: PROFILE.userPin });
    const e = await issuer.upload().catch((x: unknown) => x);
    expect(e).toMatchObject({ code: "HTTP", status: 409, bureauCode: "CLOCK_SKEW" });
    expect(rig.bureau.store.invoiceCount()).toBe(0);
    expect((await issuer.status()).pendingOnUkey).toBe(1);
  });

  it("upload on reconnection: offline while the bureau is down, everything uploaded once it answers", async () => {
    rig = await newRig({ issuer: { retry: { attempts: 1 } } });
    await issueMany(rig, 3);
    await rig.bureau.setFaults({ refuseConnections: true });
    const offline = await rig.issuer.uploadIfOnline();
    expect(offline).toMatchObject({ offline: expect.stringContaining("ECONNREFUSED") });
    expect((await rig.issuer.status()).pendingOnUkey).toBe(3);
    await rig.bureau.setFaults({ refuseConnections: false });
    expect(await rig.issuer.uploadIfOnline()).toMatchObject({ uploaded: 3 });
    assertExactlyOnce(rig);
  });

  it("TLS errors are not retried and change nothing", async () => {
    rig = await newRig();
    await issueMany(rig, 2);
    await rig.issuer.bureauPki(); // cached PKI: the TLS failure hits the upload itself
    for (const fault of [{ interception: true }, { serverCertificate: "expired" as const }, { missingIntermediate: true }]) {
      await rig.bureau.setFaults(fault);
      rig.sleeps.length = 0;
      const e = await rig.issuer.upload().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(BureauHttpError);
      expect((e as BureauHttpError).code).toBe("TLS");
      expect(rig.sleeps).toEqual([]);
      expect(rig.bureau.store.invoiceCount()).toBe(0);
      expect((await rig.issuer.status()).pendingOnUkey).toBe(2);
      await rig.bureau.setFaults({ interception: false, serverCertificate: "valid", missingIntermediate: false });
    }
    await rig.issuer.upload();
    assertExactlyOnce(rig);
  });
});

describe("bad bureau answers change nothing", () => {
  it("a sync payload with a bad signature is refused before the Ukey is touched", async () => {
    rig = await newRig();
    const before = await rig.client.getLimits();
    const { Rng } = await import("../../src/sim/index.ts");
    const issuer = new OfflineIssuer({
      client: rig.client, db: rig.db, clock: rig.clock, rng: new Rng(3), agent: new LocalIssuerAgent(PROFILE.bureauMasterKey),
      bureau: new (class extends BureauHttp {
        override async get<T>(path: string, query: Record<string, string> = {}): Promise<T> {
          const a = await super.get<Record<string, unknown>>(path, query);
          if (path === "/sync") return { ...a, payloadText: String(a.payloadText).replace('"offlineHours":72', '"offlineHours":9999') } as T;
          return a as T;
        }
      })({ serverUrl: rig.bureau.url, caPem: rig.bureau.caCertPem }),
    });
    await issuer.login({ password: PASSWORD, pin: PROFILE.userPin });
    const e = await issuer.sync().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HostError);
    expect((e as HostError).code).toBe("BAD_BUREAU_ANSWER");
    expect((await rig.client.getLimits()).limits).toEqual(before.limits);
    expect(rig.db.meta("sync")).toBeUndefined();
  });

  it("a forged upload receipt confirms nothing", async () => {
    rig = await newRig();
    await issueMany(rig, 2);
    const { Rng } = await import("../../src/sim/index.ts");
    const issuer = new OfflineIssuer({
      client: rig.client, db: rig.db, clock: rig.clock, rng: new Rng(3), agent: new LocalIssuerAgent(PROFILE.bureauMasterKey),
      bureau: new (class extends BureauHttp {
        override async post<T>(path: string, body: unknown): Promise<T> {
          const a = await super.post<Record<string, unknown>>(path, body);
          return { ...a, receiptText: String(a.receiptText).replace('"rejected":[]', '"rejected": []') } as T;
        }
      })({ serverUrl: rig.bureau.url, caPem: rig.bureau.caCertPem }),
    });
    await issuer.login({ password: PASSWORD, pin: PROFILE.userPin });
    expect(((await issuer.upload().catch((x: unknown) => x)) as HostError).code).toBe("BAD_BUREAU_ANSWER");
    expect((await issuer.status()).pendingOnUkey).toBe(2);
    expect(rig.db.countPendingUpload()).toBe(2);
  });
});

describe("malformed invoice input", () => {
  const cases: [string, unknown, RegExp][] = [
    ["not an object", [], /invoice: must be a JSON object/],
    ["unknown key", { ...input(), price: 1 }, /unknown field\(s\) price/],
    ["no lines", { ...input(), lines: [] }, /invoice.lines: must be an array of 1-100/],
    ["float money", { ...input(), lines: [{ name: "x", quantityMilli: 1000, unitPriceFen: 12.5, taxRatePermille: 130 }] }, /unitPriceFen: must be an integer/],
    ["negative quantity", { ...input(), lines: [{ name: "x", quantityMilli: -1, unitPriceFen: 1, taxRatePermille: 130 }] }, /quantityMilli/],
    ["rate over 1000", { ...input(), lines: [{ name: "x", quantityMilli: 1, unitPriceFen: 1, taxRatePermille: 1001 }] }, /taxRatePermille/],
    ["wrong amount", { ...input(), lines: [{ name: "x", quantityMilli: 2000, unitPriceFen: 100, taxRatePermille: 130, amountFen: 100 }] }, /amountFen: is 100 but quantity x price gives 200/],
    ["bad type code", { ...input(), typeCode: "026" }, /typeCode/],
    ["empty buyer", { ...input(), buyerName: " " }, /buyerName: must not be empty/],
    ["bad buyer tax id", { ...input(), buyerTaxId: "abc" }, /buyerTaxId/],
  ];
  for (const [name, value, message] of cases) {
    it(name, () => {
      expect(() => parseInvoiceInput(value)).toThrow(message);
      try {
        parseInvoiceInput(value);
      } catch (e) {
        expect((e as HostError).code).toBe("BAD_INVOICE_INPUT");
      }
    });
  }
  it("not JSON", () => expect(() => parseInvoiceJson("{")).toThrow(/BAD_INVOICE_INPUT: invoice: not JSON/));
  it("a valid input computes amounts and tax in integer fen", () => {
    const v = parseInvoiceInput({ typeCode: "02601", buyerName: "李四", lines: [{ name: "纸", unit: "包", quantityMilli: 2500, unitPriceFen: 333, taxRatePermille: 130 }] });
    expect(v.lines[0]).toMatchObject({ amountFen: 833, taxFen: 108 });
  });
  it("an invoice the Ukey refuses changes nothing in the DB", async () => {
    rig = await newRig();
    const tooManyLines = input(100, { lines: Array.from({ length: 9 }, () => input(100).lines[0]!) });
    expect(((await rig.issuer.issue(tooManyLines).catch((x: unknown) => x)) as UkeyError).code).toBe(E.PARAM);
    expect(rig.db.invoices()).toEqual([]);
    expect(rig.db.openIntents()).toEqual([]);
    expect(rig.printed).toEqual([]);
  });
});

/** A channel that can lose the answer of one command (the card ran it) or refuse to send it. */
class FlakyChannel implements ApduChannel {
  mode: "ok" | "lose-answer" | "fail-before" = "ok";
  onIns = -1;
  constructor(private readonly inner: ApduChannel) {}
  get target() {
    return this.inner.target;
  }
  powerOn() {
    return this.inner.powerOn();
  }
  powerOff() {
    return this.inner.powerOff();
  }
  close() {
    return this.inner.close();
  }
  async transmit(apdu: Uint8Array): Promise<Uint8Array> {
    if (this.mode !== "ok" && apdu[1] === this.onIns) {
      const mode = this.mode;
      this.mode = "ok";
      if (mode === "fail-before") throw new ChannelError("DISCONNECTED", "unplugged before the command");
      await this.inner.transmit(apdu);
      throw new ChannelError("DISCONNECTED", "unplugged before the answer");
    }
    return this.inner.transmit(apdu);
  }
}

describe("lost Ukey answers and reconciliation", () => {
  async function flakyIssuer(r: Rig) {
    const flaky = new FlakyChannel(r.channel);
    const { Rng } = await import("../../src/sim/index.ts");
    const printed: string[] = [];
    const issuer = new OfflineIssuer({ client: new UkeyClient(flaky), db: r.db, clock: r.clock, rng: new Rng(9), printer: (h) => void printed.push(h) });
    await issuer.login({ password: PASSWORD, pin: PROFILE.userPin });
    return { flaky, issuer, printed };
  }

  it("the Ukey committed but the answer was lost: reconciled, not printed twice, the retry returns the same invoice", async () => {
    rig = await newRig();
    const { flaky, issuer, printed } = await flakyIssuer(rig);
    flaky.mode = "lose-answer";
    flaky.onIns = INS.ISSUE;
    const e = await issuer.issue(input(), { requestId: "r1" }).catch((x: unknown) => x);
    expect((e as UkeyError).code).toBe(E.NOT_FOUND);
    expect(printed).toEqual([]);
    // reconciliation ran after the lost answer: the invoice is in the DB, the intent settled
    expect(rig.db.openIntents()).toEqual([]);
    expect(rig.db.invoices()).toHaveLength(1);
    const again = await issuer.issue(input(), { requestId: "r1" });
    expect(again.invoiceNumber).toBe(1001);
    expect(rig.db.invoices()).toHaveLength(1);
    expect((await issuer.status()).pendingOnUkey).toBe(1);
  });

  it("the prediction missed (another program issued on the Ukey) and the answer was lost: found by its draft, not issued twice", async () => {
    rig = await newRig();
    const { flaky, issuer } = await flakyIssuer(rig);
    await issuer.issue(input(100), { requestId: "a" }); // 1001; the issuer now predicts 1002
    await rig.client.issue(issuer.draft(input(200))); // someone else takes 1002
    flaky.mode = "lose-answer";
    flaky.onIns = INS.ISSUE;
    await issuer.issue(input(300), { requestId: "b" }).catch(() => undefined); // the card commits 1003
    const b = await issuer.issue(input(300), { requestId: "b" });
    expect(b.invoiceNumber).toBe(1003);
    expect(rig.db.invoices().map((r) => [r.invoiceNumber, r.requestId])).toEqual([[1001, "a"], [1002, null], [1003, "b"]]);
    expect((await issuer.status()).pendingOnUkey).toBe(3);
  });

  it("the command never reached the Ukey: the intent is aborted, the retry issues once", async () => {
    rig = await newRig();
    const { flaky, issuer } = await flakyIssuer(rig);
    flaky.mode = "fail-before";
    flaky.onIns = INS.ISSUE;
    await issuer.issue(input(), { requestId: "r2" }).catch(() => undefined);
    expect(rig.db.invoices()).toHaveLength(0);
    expect(rig.db.openIntents()).toEqual([]);
    const row = await issuer.issue(input(), { requestId: "r2" });
    expect(row.invoiceNumber).toBe(1001);
    expect((await issuer.status()).pendingOnUkey).toBe(1);
  });

  it("a void whose answer was lost is settled from the Ukey's state", async () => {
    rig = await newRig();
    const { flaky, issuer } = await flakyIssuer(rig);
    const row = await issuer.issue(input());
    flaky.mode = "lose-answer";
    flaky.onIns = INS.VOID;
    await issuer.voidInvoice(row.invoiceCode, row.invoiceNumber).catch(() => undefined);
    const voided = rig.db.invoice(row.invoiceCode, row.invoiceNumber);
    expect(voided?.voidedAt).not.toBeNull();
    expect(voided?.voidSignature?.length).toBeGreaterThan(60); // the card's signed void event, adopted
  });

  it("invoices the DB never heard of (host died before writing) are adopted from the Ukey at login", async () => {
    rig = await newRig();
    // issue straight on the card, as if the host died right after the Ukey committed
    const draft = rig.issuer.draft(input());
    await rig.client.issue(draft);
    await rig.client.issue(draft);
    const { Rng } = await import("../../src/sim/index.ts");
    const fresh = new OfflineIssuer({ client: rig.client, db: rig.db, clock: rig.clock, rng: new Rng(4) });
    const report = await fresh.login({ password: PASSWORD, pin: PROFILE.userPin });
    expect(report.adopted).toBe(2);
    expect(rig.db.invoices().map((r) => r.invoiceNumber)).toEqual([1001, 1002]);
    expect(rig.db.invoices().every((r) => r.printedAt === null)).toBe(true);
  });
});

describe("Ukey client errors", () => {
  it("maps channel failures to +1 and garbage to +2, status words to their codes", async () => {
    const absent = new UkeyClient({ target: "x", powerOn: async () => { throw new ChannelError("NO_CARD", "absent"); }, transmit: async () => { throw new ChannelError("DISCONNECTED", "gone"); }, powerOff: async () => {}, close: async () => {} });
    const e1 = await absent.connect().catch((x: unknown) => x);
    expect(e1).toMatchObject({ code: E.NOT_FOUND, errorName: "TYUKEY_DEVICE_NOT_FOUND", sw: null });
    const garbage = new UkeyClient({ target: "x", powerOn: async () => new Uint8Array(0), transmit: async () => Uint8Array.of(1), powerOff: async () => {}, close: async () => {} });
    expect(await garbage.getDeviceInfo().catch((x: unknown) => x)).toMatchObject({ code: E.COMM, errorName: "TYUKEY_DEVICE_COMM_ERROR" });
    const short = new UkeyClient({ target: "x", powerOn: async () => new Uint8Array(0), transmit: async () => Uint8Array.of(1, 2, 3, 0x90, 0x00), powerOff: async () => {}, close: async () => {} });
    expect(await short.getDeviceInfo().catch((x: unknown) => x)).toMatchObject({ code: E.COMM });
    rig = await newRig();
    expect(await rig.client.readInvoice("137001900111", 5).catch((x: unknown) => x)).toMatchObject({ code: E.DATA_NOT_EXIST, sw: 0x6a83 });
    expect(await rig.client.readInvoice("12", 5).catch((x: unknown) => x)).toMatchObject({ code: E.PARAM, sw: null });
    await rig.client.clearSecurityState();
    expect(await rig.client.getTaxpayer().catch((x: unknown) => x)).toMatchObject({ code: E.NEED_AUTH, sw: 0x6982 });
    expect((await rig.client.getSecureTime()).clockState).toBe(1);
    expect((await rig.client.exportPublicKey()).length).toBe(65);
    expect(await rig.client.sign(Uint8Array.of(1, 2, 3)).catch((x: unknown) => x)).toMatchObject({ code: E.NEED_AUTH });
    await rig.client.verifyPin(PROFILE.userPin);
    const { sm2VerifyStrict } = await import("../../src/crypto/index.ts");
    expect(sm2VerifyStrict(await rig.client.exportPublicKey(), Uint8Array.of(1, 2, 3), await rig.client.sign(Uint8Array.of(1, 2, 3)))).toBe(true);
    await rig.client.changePin(PROFILE.userPin, "24681357");
    expect(await rig.client.verifyPin(PROFILE.userPin).catch((x: unknown) => x)).toMatchObject({ code: E.PIN_ERROR, tries: 5 });
    expect(await rig.client.pinState()).toMatchObject({ verified: false, locked: false, triesLeft: 5 });
    await rig.client.unblockPin(PROFILE.soPin, "13572468");
    await rig.client.verifyPin("13572468");
    expect(await rig.client.pinState()).toMatchObject({ verified: true });
    expect(await rig.client.bureauSession(FACTORY_ISSUER_KEY).catch((x: unknown) => x)).toMatchObject({ code: E.MAC, sw: 0x6988 });
    const { deriveCardKey } = await import("../../src/tax/index.ts");
    const session = await rig.client.bureauSession(deriveCardKey(PROFILE.bureauMasterKey, "UK00000000000001"));
    expect(await rig.client.setClock(session, 1).catch((x: unknown) => x)).toMatchObject({ code: E.STATE, sw: 0x6985 });
  });
});

describe("Ukey power cuts (the host survives)", () => {
  it("a cut at any flash operation of ISSUE: after re-login the DB matches the Ukey and the retried request issues once", async () => {
    const { createUkeyOnFlash } = await import("../../src/cos/index.ts");
    const { NandChip, DEFAULT_GEOMETRY } = await import("../../src/flash-store/index.ts");
    const { Rng, VirtualClock } = await import("../../src/sim/index.ts");
    const { InProcessChannel } = await import("../../src/transport/index.ts");
    const { HostDb, setPassword } = await import("../../src/host/index.ts");
    const { newBureau, personalizeWithCert, ISSUE_TIME_MS } = await import("./support/rig.ts");
    const clock = new VirtualClock(ISSUE_TIME_MS);
    const bureau = await newBureau(clock);
    const chip = NandChip.memory({ geometry: DEFAULT_GEOMETRY });
    const { card } = createUkeyOnFlash({ chip, clock, rng: new Rng(21), serial: "UK00000000000001" });
    const client = new UkeyClient(new InProcessChannel(card));
    const db = new HostDb(":memory:");
    try {
      await personalizeWithCert(client, bureau, clock);
      setPassword(db, new Rng(1), PASSWORD);
      const issuer = new OfflineIssuer({ client, db, clock, rng: new Rng(2) });
      await issuer.login({ password: PASSWORD, pin: PROFILE.userPin });
      const before = chip.opCount;
      await issuer.issue(input(), { requestId: "warm" });
      const opsPerIssue = chip.opCount - before;
      expect(opsPerIssue).toBeGreaterThan(0);
      const cutRng = new Rng(77);
      let cutsHit = 0;
      for (let k = 0; k < opsPerIssue; k += Math.max(1, Math.floor(opsPerIssue / 10))) {
        const requestId = `cut-${k}`;
        chip.armPowerCut(chip.opCount + k, cutRng.fork(requestId));
        const e = await issuer.issue(input(2000 + k), { requestId }).catch((x: unknown) => x);
        chip.disarmPowerCut();
        if (e instanceof UkeyError) {
          cutsHit++;
          expect(e.code).toBe(E.NOT_FOUND);
        }
        await issuer.login({ password: PASSWORD, pin: PROFILE.userPin }); // power on, re-mount, reconcile
        await issuer.issue(input(2000 + k), { requestId }); // the retry: returns the committed one or issues it now
        const { status } = await client.getLimits();
        expect(db.openIntents()).toEqual([]);
        expect(db.invoices()).toHaveLength(status.issuedTotal);
        expect(db.invoices().filter((r) => r.requestId === requestId)).toHaveLength(1);
      }
      expect(cutsHit, `ops per issue ${opsPerIssue}`).toBeGreaterThanOrEqual(Math.min(3, opsPerIssue));
      // every card invoice is in the DB, byte for byte
      for (const row of db.invoices()) {
        const s = await client.readInvoice(row.invoiceCode, row.invoiceNumber);
        expect(Buffer.from(s.issued.signature)).toEqual(Buffer.from(row.signature));
      }
    } finally {
      db.close();
      await bureau.stop();
    }
  });
});
