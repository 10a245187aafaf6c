/**
 * The suites: conformance, tax-rules, power-cut, differential, performance. Each reaches
 * the device through ctx.send (the target's ApduChannel) only; power cuts go through the
 * target's PowerControl, clock moves through the simulator's extras (cases that need them
 * are reported as skipped on hardware, with the reason).
 */
import {
  INS, CLA_ISO, CLA_PROPRIETARY, CLA_SM, CLA_CHAIN_BIT, PinRef, TAX_AID, TAX_ERRORS, SW, E, encodeCommand, issuer, call, bureauAuthenticate,
  decodeInvoice, hexSw, errorForSw, concatBytes, authCryptogram, getChallenge, decodeTable, PURCHASE_LAYOUT, type OfflineLimits, type PurchaseRecord,
} from "../src/tax/index.ts";
import { MS_PER_DAY } from "../src/sim/index.ts";
import { ChannelError } from "../src/transport/index.ts";
import type { CaseResult } from "./report.ts";
import { runCase, check, raw, expectSw, codeOf, readyCard, type Suite, type SuiteContext } from "./suite-kit.ts";
import { cmd, draft, issue, issueApdu, verifyApdu, changePinApdu, voidApdu, readInvoiceApdu, exportApdu, fingerprint, describeFingerprint, deviceInfo, login } from "./ukey-ops.ts";
import { runDifferential } from "./differential.ts";

const SELECT = encodeCommand({ cla: CLA_ISO, ins: INS.SELECT, p1: 4, p2: 0, data: TAX_AID });

function skipped(suite: string, name: string, why: string): CaseResult {
  return { suite, name, status: "skip", durationMs: 0, message: why };
}

// ------------------------------------------------------------------ conformance

export const conformance: Suite = async (ctx) => {
  const S = "conformance";
  const out: CaseResult[] = [];
  const p = ctx.target.keys.profile;
  const c = (name: string, body: () => Promise<void | Record<string, number>>) => runCase(ctx, S, name, body).then((r) => void out.push(r));
  await readyCard(ctx);
  await c("ATR and SELECT by AID", async () => {
    const atr = await ctx.target.channel.powerOn();
    check(atr.length >= 2 && atr[0] === 0x3b, `ATR must start with 3B, got ${Buffer.from(atr).toString("hex")}`);
    await expectSw(ctx, cmd(INS.GET_TAXPAYER, undefined, 256), SW.CONDITIONS_NOT_SATISFIED, "a command before SELECT");
    await expectSw(ctx, SELECT, SW.OK, "SELECT tax AID");
    await expectSw(ctx, encodeCommand({ cla: CLA_ISO, ins: INS.SELECT, p1: 4, p2: 0, data: Uint8Array.of(0xa0, 0, 0, 0, 1) }), [SW.FILE_NOT_FOUND, SW.RECORD_NOT_FOUND], "SELECT unknown AID");
    await expectSw(ctx, SELECT, SW.OK, "SELECT again");
  });
  await c("general status words: length, P1P2, INS, CLA, malformed APDU", async () => {
    await expectSw(ctx, Uint8Array.of(0x80, 0x7c, 0), SW.WRONG_LENGTH, "3-byte APDU");
    await expectSw(ctx, encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.GET_DEVICE_INFO, p1: 1, p2: 0, le: 256 }), SW.WRONG_P1P2, "GET DEVICE INFO P1=01");
    await expectSw(ctx, encodeCommand({ cla: CLA_PROPRIETARY, ins: 0x02, le: 0 }), SW.INS_NOT_SUPPORTED, "unknown INS 02");
    await expectSw(ctx, encodeCommand({ cla: 0xa0, ins: INS.GET_DEVICE_INFO, le: 256 }), SW.CLA_NOT_SUPPORTED, "CLA A0");
    await expectSw(ctx, encodeCommand({ cla: 0x81, ins: INS.GET_DEVICE_INFO, le: 256 }), SW.LOGICAL_CHANNEL_NOT_SUPPORTED, "logical channel 1");
    await expectSw(ctx, verifyApdu("123"), SW.WRONG_LENGTH, "VERIFY with a 3-byte PIN");
    await login(ctx.send, p.userPin);
    await expectSw(ctx, cmd(INS.ISSUE, Uint8Array.of(1, 2, 3), 256), SW.WRONG_DATA, "ISSUE with a malformed draft");
  });
  await c("APDU cases 1-4, short and extended lengths, GET RESPONSE", async () => {
    await expectSw(ctx, encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.CLEAR_SECURITY_STATE }), SW.OK, "case 1 CLEAR SECURITY STATE");
    await login(ctx.send, p.userPin);
    const info = await expectSw(ctx, cmd(INS.GET_DEVICE_INFO, undefined, 256), SW.OK, "case 2 GET DEVICE INFO");
    check(info.length === 64, `device info is 64 bytes, got ${info.length}`);
    await expectSw(ctx, verifyApdu(p.userPin), SW.OK, "case 3 VERIFY");
    const sig = await expectSw(ctx, cmd(INS.SIGN, Uint8Array.of(1, 2, 3), 256), SW.OK, "case 4 SIGN");
    check(sig[0] === 0x30, "SIGN returns a DER signature");
    const whole = await expectSw(ctx, encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.GET_PURCHASES, le: 65536, extended: true }), SW.OK, "extended Le GET PURCHASES");
    check(whole.length === 480, `purchases are 10 x 48 bytes, got ${whole.length}`);
    const first = await raw(ctx, encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.GET_PURCHASES, le: 16 }));
    check((first.sw & 0xff00) === SW.MORE_DATA, `short Le 16 on 480 bytes answers 61xx, got ${hexSw(first.sw)}`);
    const parts = [first.data];
    let sw = first.sw;
    while ((sw & 0xff00) === SW.MORE_DATA) {
      const r = await raw(ctx, encodeCommand({ cla: CLA_ISO, ins: INS.GET_RESPONSE, le: sw & 0xff || 256 }));
      parts.push(r.data);
      sw = r.sw;
    }
    check(sw === SW.OK && Buffer.from(concatBytes(...parts)).equals(Buffer.from(whole)), "GET RESPONSE chunks reassemble the extended answer");
    await expectSw(ctx, encodeCommand({ cla: CLA_ISO, ins: INS.GET_RESPONSE, le: 16 }), SW.CONDITIONS_NOT_SATISFIED, "GET RESPONSE with nothing pending");
  });
  await c("command chaining", async () => {
    const msg = new Uint8Array(600).map((_, i) => i & 0xff);
    await expectSw(ctx, encodeCommand({ cla: CLA_PROPRIETARY | CLA_CHAIN_BIT, ins: INS.SIGN, data: msg.subarray(0, 250) }), SW.OK, "chain part 1");
    await expectSw(ctx, encodeCommand({ cla: CLA_PROPRIETARY | CLA_CHAIN_BIT, ins: INS.SIGN, data: msg.subarray(250, 500) }), SW.OK, "chain part 2");
    const sig = await expectSw(ctx, cmd(INS.SIGN, msg.subarray(500), 256), SW.OK, "chain last part");
    check(sig[0] === 0x30, "a chained SIGN returns a signature");
    await expectSw(ctx, encodeCommand({ cla: CLA_PROPRIETARY | CLA_CHAIN_BIT, ins: INS.SIGN, data: msg.subarray(0, 10) }), SW.OK, "chain start");
    await expectSw(ctx, cmd(INS.GET_DEVICE_INFO, undefined, 256), SW.LAST_COMMAND_EXPECTED, "another command inside a chain");
  });
  await c("PIN rules: tries, lockout, unblock, change", async () => {
    await expectSw(ctx, SELECT, SW.OK, "SELECT");
    await expectSw(ctx, cmd(INS.GET_TAXPAYER, undefined, 256), SW.SECURITY_NOT_SATISFIED, "GET TAXPAYER without PIN");
    const before = await raw(ctx, verifyApdu(undefined));
    check((before.sw & 0xfff0) === SW.PIN_WRONG, `empty VERIFY reports tries as 63Cx, got ${hexSw(before.sw)}`);
    const tries = before.sw & 0x0f;
    for (let i = tries - 1; i >= 1; i--) await expectSw(ctx, verifyApdu("00000000"), SW.PIN_WRONG | i, `wrong PIN with ${i} tries left`);
    await expectSw(ctx, verifyApdu("00000000"), [SW.PIN_WRONG, SW.AUTH_METHOD_BLOCKED], "last wrong PIN");
    await expectSw(ctx, verifyApdu(p.userPin), SW.AUTH_METHOD_BLOCKED, "right PIN once blocked");
    const so = new TextEncoder().encode(p.soPin);
    const user = new TextEncoder().encode(p.userPin);
    await expectSw(ctx, encodeCommand({ cla: CLA_ISO, ins: INS.UNBLOCK_PIN, p1: 0, p2: PinRef.USER, data: Uint8Array.from([so.length, ...new TextEncoder().encode("99999999"), ...user]) }), (SW.PIN_WRONG | 9) as number, "UNBLOCK with a wrong SO PIN");
    await expectSw(ctx, encodeCommand({ cla: CLA_ISO, ins: INS.UNBLOCK_PIN, p1: 0, p2: PinRef.USER, data: Uint8Array.from([so.length, ...so, ...user]) }), SW.OK, "UNBLOCK with the SO PIN");
    await expectSw(ctx, verifyApdu(p.userPin), SW.OK, "VERIFY after unblock");
    await expectSw(ctx, changePinApdu(p.userPin, "13572468"), SW.OK, "CHANGE PIN");
    await expectSw(ctx, verifyApdu(p.userPin), SW.PIN_WRONG | (tries - 1), "old PIN after change");
    await expectSw(ctx, changePinApdu("13572468", p.userPin), SW.OK, "CHANGE PIN back");
    await expectSw(ctx, verifyApdu(p.userPin), SW.OK, "VERIFY restores the tries");
  });
  await c("secure messaging: access, wrong key, MAC forgery, replay", async () => {
    await login(ctx.send, p.userPin);
    await expectSw(ctx, encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.SET_LIMITS, data: new Uint8Array(40) }), SW.SECURITY_NOT_SATISFIED, "SET LIMITS in plain");
    const ch = await getChallenge(ctx.send);
    const wrong = new Uint8Array(16).fill(7);
    await expectSw(ctx, encodeCommand({ cla: CLA_ISO, ins: INS.EXTERNAL_AUTHENTICATE, p1: 0, p2: 1, data: authCryptogram(wrong, ch) }), SW.SM_DATA_INCORRECT, "EXTERNAL AUTHENTICATE with a wrong key");
    let s = await bureauAuthenticate(ctx.send, ctx.cardKey!);
    const good = s.wrap(INS.SET_LIMITS, 0, 0, encodeLimits(p.limits));
    await expectSw(ctx, good, SW.OK, "a wrapped SET LIMITS");
    await expectSw(ctx, good, [0x940d], "the same secure message replayed");
    const forged = s.wrap(INS.SET_LIMITS, 0, 0, encodeLimits(p.limits));
    forged[forged.length - 1]! ^= 1;
    await expectSw(ctx, forged, SW.SM_DATA_INCORRECT, "a secure message with a forged MAC");
    await expectSw(ctx, s.wrap(INS.SET_LIMITS, 0, 0, encodeLimits(p.limits)), SW.SECURITY_NOT_SATISFIED, "the session ends after a bad MAC");
    s = await bureauAuthenticate(ctx.send, ctx.cardKey!);
    await expectSw(ctx, s.wrap(INS.SET_PINS, 0, 0, Uint8Array.of(4, 49, 50, 51, 52, 4, 49, 50, 51, 52)), SW.CONDITIONS_NOT_SATISFIED, "SET PINS after personalization");
    await expectSw(ctx, s.wrap(INS.SET_LIMITS, 0, 0, Uint8Array.of(1, 2, 3)), [SW.WRONG_DATA, SW.WRONG_LENGTH], "SET LIMITS with a malformed record");
  });
  await c("every command of docs/interface.md answers", async () => {
    await login(ctx.send, p.userPin);
    const reads = [INS.GET_TAXPAYER, INS.GET_INVOICE_TYPES, INS.GET_PURCHASES, INS.GET_LIMITS, INS.GET_SECURE_TIME, INS.GET_DEVICE_INFO, INS.EXPORT_PUBLIC_KEY];
    for (const ins of reads) await expectSw(ctx, cmd(ins, undefined, 65536), SW.OK, `INS ${ins.toString(16)}`);
    await expectSw(ctx, encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.READ_CERT, p1: 0, p2: 0, le: 65536 }), SW.OK, "READ CERT device");
    // A card issued with its chain holds the root in slot 2; one issued with the device certificate only has none.
    await expectSw(ctx, encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.READ_CERT, p1: 2, p2: 0, le: 65536 }), [SW.OK, SW.RECORD_NOT_FOUND], "READ CERT root");
    await expectSw(ctx, readInvoiceApdu(p.purchases[0]!.invoiceCode, 999_999), SW.RECORD_NOT_FOUND, "READ INVOICE unknown");
    await expectSw(ctx, exportApdu(0), [SW.OK, SW.RECORD_NOT_FOUND], "EXPORT with nothing pending");
    const iss = await issue(ctx.send, draft(p, {}, 100));
    const inv = decodeInvoice(iss.invoice);
    await expectSw(ctx, readInvoiceApdu(inv.invoiceCode, inv.invoiceNumber), SW.OK, "READ INVOICE issued");
    await expectSw(ctx, voidApdu(inv.invoiceCode, inv.invoiceNumber), SW.OK, "VOID");
    await expectSw(ctx, voidApdu(inv.invoiceCode, inv.invoiceNumber), SW_TAX(27), "VOID twice");
    await expectSw(ctx, exportApdu(0), SW.OK, "EXPORT pending");
    await expectSw(ctx, encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.GENERATE_KEY_PAIR, le: 256 }), SW.OK, "GENERATE KEY PAIR");
  });
  await c("power off: no answer is TYUKEY_DEVICE_NOT_FOUND (+1)", async () => {
    await ctx.target.channel.powerOff();
    let code = 0;
    try {
      await ctx.send(SELECT);
    } catch (e) {
      code = e instanceof ChannelError ? E.NOT_FOUND : -1;
    }
    check(code === E.NOT_FOUND, "a transmit to an unpowered card must fail with a channel error (host maps it to +1)");
    await ctx.target.channel.powerOn();
  });
  return out;
};

const SW_TAX = (n: number) => 0x9400 | n;

function encodeLimits(l: OfflineLimits): Uint8Array {
  // the layout encoder lives in src/tax; issuer.setLimits would send it itself
  return limitsBytes(l);
}
import { encodeLayout, LIMITS_LAYOUT, type LayoutValues } from "../src/tax/index.ts";
function limitsBytes(l: OfflineLimits): Uint8Array {
  return encodeLayout(LIMITS_LAYOUT, l as unknown as LayoutValues);
}

// ------------------------------------------------------------------ tax rules

export const taxRules: Suite = async (ctx) => {
  const S = "tax-rules";
  const out: CaseResult[] = [];
  const p = ctx.target.keys.profile;
  const sim = ctx.target.sim;
  const c = async (name: string, body: () => Promise<void>, needsClock = false) => {
    if (needsClock && ctx.target.uri !== "sim:memory") return void out.push(skipped(S, name, "moves the device's clock: only on sim:memory (hardware has no clock control; an image keeps its clock checkpoint across runs)"));
    out.push(await runCase(ctx, S, name, async () => {
      await readyCard(ctx);
      await body();
    }));
  };
  const fails = async (over: Parameters<typeof draft>[1] = {}, amount = 100, rate = 130) => {
    const code = await codeOf(ctx, issue(ctx.send, draft(p, over, amount, rate)));
    return code;
  };
  const want = (got: number, n: number, what: string) => check(got === (n === 0 ? 0 : E.NOT_FOUND - 1 + n), `${what}: expected ${n === 0 ? "success" : `TYUKEY+${n} (${TAX_ERRORS[n - 1]!.name})`}, got ${got === 0 ? "success" : `TYUKEY+${got - (E.NOT_FOUND - 1)}`}`);
  const limits = async (over: Partial<OfflineLimits>) => issuer.setLimits(ctx.send, await bureauAuthenticate(ctx.send, ctx.cardKey!), { ...p.limits, ...over });

  await c("issuing order: each check fires, the first failing one wins", async () => {
    await issue(ctx.send, draft(p, {}, 100));
    const s = await bureauAuthenticate(ctx.send, ctx.cardKey!);
    await issuer.setTaxpayer(ctx.send, s, { ...p.taxpayer, certStatus: 1 }).catch(() => undefined);
    await limits({ offlineAllowed: 0 });
    const big = 2_000_000;
    want(await fails({ taxpayerId: "X" }, big), 20, "taxpayer mismatch first");
    want(await fails({ typeCode: "09999" }, big), 17, "then the certificate");
    await issuer.setTaxpayer(ctx.send, await bureauAuthenticate(ctx.send, ctx.cardKey!), p.taxpayer);
    want(await fails({ typeCode: "09999" }, big), 21, "then the stock");
    want(await fails({}, big), 22, "then the offline flag");
    want(await fails({ mode: 1 }, big), 18, "online with un-uploaded data");
    await limits({ offlineAllowed: 1 });
    want(await fails({}, big), 25, "then the amount");
    want(await fails({}, 100), 0, "all fixed");
  });
  await c("single-invoice limit at its boundary", async () => {
    const limit = p.invoiceTypes[0]!.singleLimitFen;
    want(await fails({}, limit, 0), 0, "at the limit");
    want(await fails({}, limit + 1, 0), 25, "one fen over");
  });
  await c("offline count at its boundary", async () => {
    await limits({ maxOfflineCount: 3 });
    for (let i = 0; i < 3; i++) want(await fails(), 0, `invoice ${i + 1} of 3`);
    want(await fails(), 23, "the 4th");
  });
  await c("cumulative offline amount at its boundary", async () => {
    await limits({ maxOfflineAmountFen: 30_000 });
    want(await fails({}, 20_000, 0), 0, "20,000 of 30,000");
    want(await fails({}, 10_001, 0), 26, "one fen over");
    want(await fails({}, 10_000, 0), 0, "exactly up to the limit");
  });
  await c("offline ratio at its boundary", async () => {
    await limits({ maxOfflineRatioPermille: 20 });
    want(await fails(), 0, "1st of 2 allowed");
    want(await fails(), 0, "2nd of 2 allowed");
    want(await fails(), 24, "3rd");
  });
  await c("offline window: 3 days allowed, 1 s later refused; bureau contact reopens it", async () => {
    sim!.advanceClock(3 * MS_PER_DAY);
    want(await fails(), 0, "at 3 days");
    sim!.advanceClock(1000);
    want(await fails(), 22, "3 days + 1 s");
    want(await fails({ mode: 1 }), 18, "online needs everything uploaded first");
    await limits({});
    want(await fails(), 0, "after bureau contact");
  }, true);
  await c("stock: the last number is issued, then no stock", async () => {
    await limits({ maxOfflineCount: 1000 });
    const s = await bureauAuthenticate(ctx.send, ctx.cardKey!);
    // a batch of the second type with 2 numbers
    const second = p.purchases[1]!;
    // a batch code the card does not know yet (a persistent card keeps the ones of earlier runs)
    const known = (decodeTable(PURCHASE_LAYOUT, await call(ctx.send, cmd(INS.GET_PURCHASES, undefined, 65536))) as unknown as PurchaseRecord[]).filter((r) => r.invoiceCode.trim() !== "");
    const fresh = Array.from({ length: 90 }, (_, i) => `13700190${String(4400 + i)}`).find((c) => !known.some((k) => k.invoiceCode === c))!;
    await issuer.syncPurchases(ctx.send, s, [...known.filter((k) => k.typeCode !== second.typeCode), { ...second, invoiceCode: fresh, startNumber: 1, count: 2, nextNumber: 1 }].slice(0, 10));
    const t2 = second.typeCode;
    const a = decodeInvoice((await issue(ctx.send, draft(p, { typeCode: t2 }, 100))).invoice);
    const b = decodeInvoice((await issue(ctx.send, draft(p, { typeCode: t2 }, 100))).invoice);
    check(b.invoiceNumber === a.invoiceNumber + 1, `numbers follow: ${a.invoiceNumber}, ${b.invoiceNumber}`);
    want(await fails({ typeCode: t2 }), 21, "after the last number");
  });
  await c("void and red rules", async () => {
    const inv = decodeInvoice((await issue(ctx.send, draft(p, {}, 1000))).invoice);
    const red = (amount: number) => codeOf(ctx, issue(ctx.send, draft(p, { kind: 1, originalCode: inv.invoiceCode, originalNumber: inv.invoiceNumber }, amount)));
    want(await red(600), 0, "red 600 of 1000");
    want(await red(401), 27, "red over the remainder");
    want(await red(400), 0, "red up to the remainder");
    want(await codeOf(ctx, issue(ctx.send, draft(p, { kind: 1, originalCode: inv.invoiceCode, originalNumber: 999_999 }, 1))), 19, "red of an unknown invoice");
    const other = decodeInvoice((await issue(ctx.send, draft(p, {}, 1000))).invoice);
    want(await codeOf(ctx, call(ctx.send, voidApdu(other.invoiceCode, other.invoiceNumber))), 0, "void");
    want(await codeOf(ctx, call(ctx.send, voidApdu(other.invoiceCode, other.invoiceNumber))), 27, "void twice");
    want(await codeOf(ctx, call(ctx.send, voidApdu(other.invoiceCode, 999_999))), 19, "void unknown");
    want(await codeOf(ctx, issue(ctx.send, draft(p, { kind: 1, originalCode: other.invoiceCode, originalNumber: other.invoiceNumber }, 1))), 27, "red of a voided invoice");
  });
  await c("upload before online: online issuing resumes only after the bureau confirmed everything", async () => {
    await issue(ctx.send, draft(p, {}, 100));
    want(await fails({ mode: 1 }), 18, "online with pending data");
    const batch = await call(ctx.send, exportApdu(0));
    check(batch.length > 0, "export returns a batch");
    const { decodeBatch } = await import("../src/tax/index.ts");
    const last = decodeBatch(batch).events.at(-1)!.seq;
    await issuer.confirmUpload(ctx.send, await bureauAuthenticate(ctx.send, ctx.cardKey!), last);
    want(await fails({ mode: 1 }), 0, "online after the confirm");
  });
  await c("secure clock: a rolled-back time source stops issuing", async () => {
    sim!.advanceClock(60_000);
    want(await fails(), 0, "clock running");
    sim!.device.clock.set(sim!.device.clock.now() - 30_000);
    want(await fails(), 15, "time source rolled back");
  }, true);
  return out;
};

// ------------------------------------------------------------------ power cut

/**
 * For each operation, cut the power at successive points of its command, re-power and judge
 * through APDUs: the old state or the new one, no invoice number reused, no PIN try regained;
 * then the card goes on (the next invoice number follows).
 */
export const powerCut: Suite = async (ctx) => {
  const S = "power-cut";
  const out: CaseResult[] = [];
  const power = ctx.target.power;
  if (!power) return [skipped(S, "power cuts", "the target has no PowerControl (give --power uhubctl:LOC:PORT or relay:DEV)")];
  const p = ctx.target.keys.profile;
  const code = p.purchases[0]!.invoiceCode;
  const points = ctx.target.kind === "sim" ? (ctx.quick ? [0, 1, 2, 3, 5] : [0, 1, 2, 3, 4, 5, 6, 8, 10, 12]) : [5, 20, 50, 100];
  // each returns the command to cut, after any preparation it needs (void: a fresh invoice to void)
  const ops: Array<[string, () => Promise<Uint8Array>]> = [
    ["issue", async () => issueApdu(draft(p, {}, 100))],
    ["void", async () => {
      const inv = decodeInvoice((await issue(ctx.send, draft(p, {}, 100))).invoice);
      return voidApdu(inv.invoiceCode, inv.invoiceNumber);
    }],
    ["wrong PIN", async () => verifyApdu("00000000")],
  ];
  for (const [name, apdu] of ops) {
    out.push(await runCase(ctx, S, name, async () => {
      await readyCard(ctx);
      await issue(ctx.send, draft(p, {}, 100));
      let cuts = 0;
      for (const n of points) {
        await login(ctx.send, p.userPin);
        const command = await apdu();
        const nextBefore = await nextNumber(ctx, code);
        const storedBefore = (await deviceInfo(ctx.send)).invoicesStored;
        const watch = [1, 2, 3].map((i) => ({ code, number: nextBefore - i })).filter((w) => w.number >= p.purchases[0]!.startNumber);
        const before = await fingerprint(ctx.send, [p.userPin], watch);
        await login(ctx.send, p.userPin);
        power.armCut(n);
        let muted = false;
        try {
          const sent = ctx.send(command);
          await power.commandSent();
          await sent;
        } catch (e) {
          if (!(e instanceof ChannelError)) throw e;
          muted = true;
        }
        const happened = muted || (ctx.target.kind === "hardware" && power.cutHappened());
        await power.restore();
        if (happened) {
          cuts++;
          ctx.trace.emit({ kind: "fault", fault: "power-cut", detail: { command: name, point: n } });
        }
        await ctx.target.channel.powerOn();
        const after = await fingerprint(ctx.send, [p.userPin], watch);
        if (!happened) continue; // the command finished before the cut point
        // nothing lost: every watched invoice readable before is readable after
        const present = (f: typeof before) => f.key.split("|").filter((x) => x.startsWith("inv") && x.endsWith(":9000")).map((x) => x.split(":")[0]);
        const lost = present(before).filter((x) => !present(after).includes(x));
        check(lost.length === 0, `${name}: cut at point ${n} lost ${lost.join(", ")}`, describeFingerprint(after));
        const info = await deviceInfo(ctx.send);
        check(info.userPinTries <= before.userTries, `${name}: cut at point ${n} regained a PIN try (${before.userTries} -> ${info.userPinTries})`);
        await login(ctx.send, p.userPin);
        // the number advanced exactly by the invoices that now exist: none reused, none skipped
        const added = info.invoicesStored - storedBefore;
        const nextAfter = await nextNumber(ctx, code);
        check(added === 0 || added === 1, `${name}: a cut command added ${added} invoices`);
        check(nextAfter === nextBefore + added, `${name}: after the cut the next number is ${nextAfter}, expected ${nextBefore + added} (${added} invoice(s) added)`);
        const next = decodeInvoice((await issue(ctx.send, draft(p, {}, 100))).invoice).invoiceNumber;
        check(next === nextAfter, `${name}: the card went on with number ${next}, expected ${nextAfter}`);
        if (added) await expectSw(ctx, readInvoiceApdu(code, nextBefore), SW.OK, "the invoice the cut command committed");
      }
      check(cuts > 0, `${name}: no cut point hit the command`);
    }));
  }
  return out;
};

/** The next invoice number of the purchase batch `code` (GET PURCHASES). */
async function nextNumber(ctx: SuiteContext, code: string): Promise<number> {
  const rows = decodeTable(PURCHASE_LAYOUT, await call(ctx.send, cmd(INS.GET_PURCHASES, undefined, 65536))) as unknown as PurchaseRecord[];
  const row = rows.find((r) => r.invoiceCode === code);
  check(row !== undefined, `no purchase batch ${code} on the card`);
  return row.nextNumber;
}

// ------------------------------------------------------------------ differential

export const differential: Suite = async (ctx) => {
  const S = "differential";
  if (ctx.target.kind !== "sim") {
    return [skipped(S, "target vs reference model", `needs a target that can be reset to the reference's state for every sequence; ${ctx.target.uri} cannot (docs/hil.md)`)];
  }
  return [await runCase(ctx, S, "in-process target vs reference model", async () => {
    const r = await runDifferential({ seed: ctx.rng.nextU32(), runs: ctx.quick ? 10 : 60 });
    check(r.ok, r.message ?? "differs", r.detail);
    return { sequences: r.runs };
  })];
};

// ------------------------------------------------------------------ performance

export const performance: Suite = async (ctx) => {
  const S = "performance";
  const out: CaseResult[] = [];
  const p = ctx.target.keys.profile;
  await readyCard(ctx);
  const n = ctx.quick ? 5 : 30;
  const measure = async (name: string, apdu: () => Uint8Array) => {
    out.push(await runCase(ctx, S, name, async () => {
      const samples: number[] = [];
      for (let i = 0; i < n; i++) {
        const a = apdu();
        const t0 = ctx.now();
        const r = await raw(ctx, a);
        samples.push(ctx.now() - t0);
        check(r.sw === SW.OK || (r.sw & 0xff00) === SW.MORE_DATA, `${name}: ${hexSw(r.sw)}`);
      }
      samples.sort((a, b) => a - b);
      const total = samples.reduce((a, b) => a + b, 0);
      return { n, median_ms: samples[n >> 1]!, p95_ms: samples[Math.min(n - 1, Math.ceil(0.95 * n) - 1)]!, per_s: total > 0 ? (n * 1000) / total : 0 };
    }));
  };
  await measure("GET DEVICE INFO", () => cmd(INS.GET_DEVICE_INFO, undefined, 256));
  await measure("VERIFY", () => verifyApdu(p.userPin));
  await measure("GET PURCHASES (extended)", () => cmd(INS.GET_PURCHASES, undefined, 65536));
  await measure("SIGN 32 bytes", () => cmd(INS.SIGN, new Uint8Array(32).fill(1), 256));
  await measure("ISSUE", () => issueApdu(draft(p, {}, 100)));
  await measure("READ INVOICE", () => readInvoiceApdu(p.purchases[0]!.invoiceCode, p.purchases[0]!.startNumber));
  return out;
};

export const SUITES: Record<string, Suite> = { conformance, "tax-rules": taxRules, "power-cut": powerCut, differential, performance };
export const SUITE_NAMES = Object.keys(SUITES);

/** Error-code coverage over the status words the run saw (a case of its own). */
export function coverageCase(seen: ReadonlySet<number>, clockControl = true): CaseResult {
  const hostSide = new Set([1, 2]);
  const impractical = new Map<number, string>([[14, "storage full needs a full device"], [16, "key expiry needs 1,000,000 signatures"]]);
  if (!clockControl) impractical.set(15, "clock invalid needs control of the device's clock");
  const missing: string[] = [];
  for (const e of TAX_ERRORS) {
    if (hostSide.has(e.n) || impractical.has(e.n)) continue;
    const hit = [...seen].some((sw) => errorForSw(sw) === e.code);
    if (!hit) missing.push(`+${e.n} ${e.name}`);
  }
  const note = `not provoked by design: ${[...impractical].map(([n, why]) => `+${n} (${why})`).join(", ")}; +1/+2 are host-side`;
  return missing.length
    ? { suite: "coverage", name: "error codes seen", status: "fail", durationMs: 0, message: `never seen: ${missing.join(", ")}`, detail: note }
    : { suite: "coverage", name: "error codes seen", status: "pass", durationMs: 0, message: note };
}

export { CLA_SM };
