import { describe, expect, it } from "vitest";
import {
  E, INS, call, encodeLayout, LIMITS_LAYOUT, TAXPAYER_LAYOUT, issuer, decodeInvoice, encodeInvoice, type LayoutValues, type OfflineLimits, type Invoice,
} from "../../src/tax/index.ts";
import { ISSUE_RULES, RT, encodeCounters } from "../../src/cos/index.ts";
import { MS_PER_DAY } from "../../src/sim/index.ts";
import { readyCard, issue, draft, bureau, swOf, PROFILE, ISSUE_TIME, cmd, blankCard, personalize, login, type Rig } from "./helpers.ts";

async function setLimits(r: Rig, over: Partial<OfflineLimits>): Promise<void> {
  const s = await bureau(r);
  await issuer.setLimits(r.send, s, { ...PROFILE.limits, ...over });
}

const fails = (r: Rig, inv: Invoice = draft()) => swOf(issue(r, inv));

describe("the issuing order (paper): each check fires, the first failing one wins", () => {
  it("the machine's rules are in the paper's order", () => {
    expect(ISSUE_RULES.map((x) => x[0])).toEqual([
      "taxpayer", "original exists", "original creditable", "certificate", "stock", "clock", "offline flag", "validity period", "valid days",
      "offline ratio", "un-uploaded (online)", "un-uploaded (offline count)", "single-invoice limit", "offline amount", "key usage",
    ]);
  });

  it("with every check broken, fixing them one by one reveals each error in order", async () => {
    const r = await readyCard(11);
    // un-uploaded data present for the online check
    await issue(r, draft({}, 100));
    const s = await bureau(r);
    // break: certificate (revoked), offline flag off, amount over the single limit, online with pending
    await issuer.setTaxpayer(r.send, s, { ...PROFILE.taxpayer, certStatus: 1 });
    await setLimits(r, { offlineAllowed: 0 });
    const big = 2_000_000;
    const order: Array<[number, () => Promise<void> | void, Invoice]> = [];
    let inv = draft({ taxpayerId: "X" }, big);
    expect(await fails(r, inv)).toBe(E.TAXPAYER_MISMATCH);
    inv = draft({ typeCode: "09999" }, big);
    expect(await fails(r, inv)).toBe(E.BAD_CERT);
    await issuer.setTaxpayer(r.send, await bureau(r), PROFILE.taxpayer);
    expect(await fails(r, inv)).toBe(E.NO_STOCK);
    inv = draft({}, big);
    expect(await fails(r, inv)).toBe(E.OFFLINE_EXPIRED);
    inv = draft({ mode: 1 }, big);
    expect(await fails(r, inv)).toBe(E.HAVE_NOTRANCE_DATA);
    inv = draft({ mode: 0 }, big);
    await setLimits(r, { offlineAllowed: 1 });
    expect(await fails(r, inv)).toBe(E.AMOUNT_LIMIT);
    expect(await fails(r, draft({}, 100))).toBe(0);
    void order;
  });
});

describe("each limit at its boundary", () => {
  it("single-invoice limit: the limit itself is allowed, one fen more is refused", async () => {
    const r = await readyCard(12);
    const limit = PROFILE.invoiceTypes[0]!.singleLimitFen; // 1,000,000 fen incl. tax
    const at: Invoice = { ...draft({}, limit, 0) };
    expect(await fails(r, at)).toBe(0);
    expect(await fails(r, draft({}, limit + 1, 0))).toBe(E.AMOUNT_LIMIT);
  });
  it("offline count: maxOfflineCount invoices allowed, the next refused", async () => {
    const r = await readyCard(13);
    await setLimits(r, { maxOfflineCount: 3 });
    for (let i = 0; i < 3; i++) expect(await fails(r, draft({}, 100))).toBe(0);
    expect(await fails(r, draft({}, 100))).toBe(E.OFFLINE_COUNT);
  });
  it("cumulative offline amount: up to the limit allowed, one fen over refused", async () => {
    const r = await readyCard(14);
    await setLimits(r, { maxOfflineAmountFen: 30_000 });
    expect(await fails(r, draft({}, 20_000, 0))).toBe(0);
    expect(await fails(r, draft({}, 10_001, 0))).toBe(E.OFFLINE_AMOUNT);
    expect(await fails(r, draft({}, 10_000, 0))).toBe(0);
  });
  it("offline ratio: 20 per mille of a 100-invoice batch is 2 invoices", async () => {
    const r = await readyCard(15);
    await setLimits(r, { maxOfflineRatioPermille: 20 });
    expect(await fails(r, draft({}, 100))).toBe(0);
    expect(await fails(r, draft({}, 100))).toBe(0);
    expect(await fails(r, draft({}, 100))).toBe(E.OFFLINE_RATIO);
  });
  it("offline window: default 3 days after the last bureau contact; at 3 days allowed, 1 s later refused", async () => {
    const r = await readyCard(16);
    const last = r.card.data.counters.lastOnlineAt;
    r.clock.set((last + 3 * 86_400) * 1000);
    expect(await fails(r, draft({}, 100))).toBe(0);
    r.clock.advance(1000);
    expect(await fails(r, draft({}, 100))).toBe(E.OFFLINE_EXPIRED);
    // online issuing is not bound by the offline window, but needs everything uploaded
    expect(await fails(r, draft({ mode: 1 }, 100))).toBe(E.HAVE_NOTRANCE_DATA);
    // bureau contact reopens the window
    await setLimits(r, {});
    expect(await fails(r, draft({}, 100))).toBe(0);
  });
  it("offline validity period: validUntil itself allowed, later refused", async () => {
    const r = await readyCard(17);
    await setLimits(r, { validUntil: ISSUE_TIME + 60 });
    r.clock.set((ISSUE_TIME + 60) * 1000);
    expect(await fails(r, draft({}, 100))).toBe(0);
    r.clock.advance(1000);
    expect(await fails(r, draft({}, 100))).toBe(E.OFFLINE_EXPIRED);
  });
  it("stock: the last number of a batch is issued, then the type has no stock", async () => {
    const r = blankCard(18);
    await personalize(r, { ...PROFILE, purchases: [{ ...PROFILE.purchases[0]!, count: 2 }] });
    await login(r);
    expect(decodeInvoice((await issue(r, draft({}, 100))).invoice).invoiceNumber).toBe(1001);
    expect(decodeInvoice((await issue(r, draft({}, 100))).invoice).invoiceNumber).toBe(1002);
    expect(await fails(r, draft({}, 100))).toBe(E.NO_STOCK);
    expect(r.card.data.purchases![0]!.status).toBe(2);
  });
  it("certificate: missing, revoked or expired is BAD_CERT", async () => {
    const noCert = blankCard(19);
    await personalize(noCert, PROFILE, { cert: false });
    await login(noCert);
    expect(await fails(noCert)).toBe(E.BAD_CERT);
    const r = await readyCard(20);
    await issuer.setTaxpayer(r.send, await bureau(r), { ...PROFILE.taxpayer, certNotAfter: ISSUE_TIME + 10 });
    r.clock.advance(10_000);
    expect(await fails(r)).toBe(0);
    r.clock.advance(1000);
    expect(await fails(r)).toBe(E.BAD_CERT);
  });
  it("clock: a rolled-back time source or an exhausted battery stops issuing (CLOCK_INVALID)", async () => {
    const r = await readyCard(21);
    r.clock.advance(60_000);
    await issue(r);
    r.clock.set(r.clock.now() - 30_000);
    expect(await fails(r)).toBe(E.CLOCK_INVALID);
    r.clock.advance(60_000);
    expect(await fails(r)).toBe(0);
    const b = await readyCard(22);
    b.clock.advance(4 * 365 * MS_PER_DAY);
    expect(await fails(b)).toBe(E.CLOCK_INVALID); // certificate expiry cannot be judged without a clock: the clock check fires
  });
  it("key usage: at 1,000,000 signatures signing and issuing stop until the key pair is renewed", async () => {
    const r = await readyCard(23);
    r.store.commit([r.card.put(RT.COUNTERS, 0, encodeCounters({ ...r.card.data.counters, signCount: 999_999 }))]);
    r.card.powerOn();
    await login(r);
    expect(await fails(r)).toBe(0); // the 1,000,000th signature
    expect(await fails(r)).toBe(E.KEY_EXPIRED);
    expect(await swOf(call(r.send, cmd(INS.SIGN, Uint8Array.of(1), 256)))).toBe(E.KEY_EXPIRED);
    await call(r.send, cmd(INS.GENERATE_KEY_PAIR, undefined, 256));
    expect(await fails(r)).toBe(0);
  });
  it("taxpayer, login account and machine number must each match", async () => {
    const r = await readyCard(24);
    for (const over of [{ taxpayerId: "91370100MA3C000000" }, { loginAccount: "other" }, { machineNumber: "000000000002" }]) expect(await fails(r, draft(over))).toBe(E.TAXPAYER_MISMATCH);
  });
  it("a draft with code, number or time filled in, or the wrong kind, is bad data and changes nothing", async () => {
    const r = await readyCard(25);
    const before = r.card.data.counters.invoiceSeq;
    for (const over of [{ invoiceNumber: 5 }, { issuedAt: 5 }, { invoiceCode: "137001900111" }]) expect(await fails(r, draft(over))).toBe(E.PARAM);
    expect(await swOf(call(r.send, cmd(INS.RED, encodeInvoice(draft()), 256)))).toBe(E.PARAM);
    expect(await swOf(call(r.send, cmd(INS.ISSUE, Uint8Array.of(1, 2, 3), 256)))).toBe(E.PARAM);
    expect(r.card.data.counters.invoiceSeq).toBe(before);
    void encodeLayout; void LIMITS_LAYOUT; void TAXPAYER_LAYOUT;
    const x: LayoutValues = {};
    void x;
  });
});

describe("invoice size", () => {
  it("an invoice too large for a flash record is refused as a length error and changes nothing", async () => {
    const r = blankCard(26);
    await personalize(r, { ...PROFILE, invoiceTypes: [{ ...PROFILE.invoiceTypes[0]!, maxLines: 0 }] });
    await login(r);
    const line = { name: "名".repeat(66), unit: "件".repeat(66), quantityMilli: 1000, unitPriceFen: 1, amountFen: 1, taxRatePermille: 0, taxFen: 0 };
    const big = draft({ lines: Array.from({ length: 12 }, () => line), totalAmountFen: 12, totalTaxFen: 0 });
    expect(await swOf(issue(r, big))).toBe(E.LENGTH);
    expect(r.card.data.counters.invoiceSeq).toBe(0);
    expect(await swOf(issue(r, draft({}, 100)))).toBe(0);
  });
});
