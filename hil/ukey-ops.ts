/**
 * What the suites and campaigns say to a Ukey, as APDUs over a `Send` (an ApduChannel's
 * transmit, or a simulated card's process): personalization with the issuer keys, login,
 * the tax functions and cheap state probes. Nothing here touches the simulator.
 */
import {
  personalizeCard, deriveCardKey, bureauAuthenticate, issuer, verifyPin, selectApplication, call, transceive, encodeCommand, splitResponse,
  encodeInvoice, decodeIssued, encodeInvoiceKey, decodeLayout, DEVICE_INFO_LAYOUT, CLA_PROPRIETARY, CLA_ISO, INS, PinRef, ByteWriter, TAX_AID,
  type Invoice, type Send, type SmSession, type IssuedInvoice, type IssuanceProfile, type DeviceInfo,
} from "../src/tax/index.ts";
import { toHex } from "../src/sim/index.ts";
import type { IssuerKeys } from "./issuer-keys.ts";

/** A DER SEQUENCE standing in for the device certificate (enough for the COS's presence check). */
export const STAND_IN_CERT = Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01);

export function cmd(ins: number, data?: Uint8Array, le = 0, cla = CLA_PROPRIETARY): Uint8Array {
  return encodeCommand({ cla, ins, ...(data ? { data } : {}), le });
}

/** Data + SW of one exchange, GET RESPONSE followed. */
export async function exchange(send: Send, apdu: Uint8Array): Promise<{ data: Uint8Array; sw: number }> {
  return transceive(send, apdu);
}

export async function swOf(send: Send, apdu: Uint8Array): Promise<number> {
  return (await transceive(send, apdu)).sw;
}

export async function deviceInfo(send: Send): Promise<DeviceInfo> {
  return decodeLayout(DEVICE_INFO_LAYOUT, await call(send, cmd(INS.GET_DEVICE_INFO, undefined, 256))) as unknown as DeviceInfo;
}

export async function cardKeyOf(send: Send, keys: IssuerKeys): Promise<Uint8Array> {
  return deriveCardKey(keys.profile.bureauMasterKey, (await deviceInfo(send)).serialNumber.replace(/\0+$/, ""));
}

/** The bureau's issuance: profile, key pair, stand-in certificate; ends logged in (user PIN verified). */
export async function personalize(send: Send, keys: IssuerKeys, clockSeconds: number): Promise<Uint8Array> {
  const p = keys.profile;
  await selectApplication(send);
  const cardKey = await cardKeyOf(send, keys);
  await personalizeCard(send, {
    issuerKey: keys.transportKey, cardKey, userPin: p.userPin, soPin: p.soPin, clockSeconds, taxKey: p.taxKey, taxCodeAlgorithm: p.taxCodeAlgorithm,
    taxpayer: p.taxpayer, invoiceTypes: p.invoiceTypes, purchases: p.purchases, limits: p.limits,
  });
  await verifyPin(send, p.userPin);
  await call(send, cmd(INS.GENERATE_KEY_PAIR, undefined, 256));
  const s = await bureauAuthenticate(send, cardKey);
  await issuer.writeCert(send, s, 0, STAND_IN_CERT);
  return cardKey;
}

export async function login(send: Send, pin: string): Promise<void> {
  await selectApplication(send);
  await verifyPin(send, pin);
}

export function draft(profile: IssuanceProfile, over: Partial<Invoice> = {}, amountFen = 10_000, taxRatePermille = 130): Invoice {
  const tax = Math.floor((amountFen * taxRatePermille + 500) / 1000);
  const t = profile.taxpayer;
  return {
    kind: 0, mode: 0, typeCode: profile.purchases[0]?.typeCode ?? "02601", invoiceCode: "", invoiceNumber: 0, issuedAt: 0,
    taxpayerId: t.taxpayerId, loginAccount: t.loginAccount, machineNumber: t.machineNumber, sellerName: t.taxpayerName,
    buyerName: "张三", buyerTaxId: "", originalCode: "", originalNumber: 0,
    lines: [{ name: "办公用品", unit: "件", quantityMilli: 1000, unitPriceFen: amountFen, amountFen, taxRatePermille, taxFen: tax }],
    totalAmountFen: amountFen, totalTaxFen: tax, remark: "", ...over,
  };
}

export function issueApdu(inv: Invoice): Uint8Array {
  return cmd(inv.kind === 1 ? INS.RED : INS.ISSUE, encodeInvoice(inv), 65536);
}

export async function issue(send: Send, inv: Invoice): Promise<IssuedInvoice> {
  return decodeIssued(await call(send, issueApdu(inv)));
}

export function voidApdu(code: string, number: number): Uint8Array {
  return cmd(INS.VOID, encodeInvoiceKey(code, number), 256);
}

export function readInvoiceApdu(code: string, number: number): Uint8Array {
  return cmd(INS.READ_INVOICE, encodeInvoiceKey(code, number), 65536);
}

export function exportApdu(first = 0): Uint8Array {
  return cmd(INS.EXPORT_UNUPLOADED, new ByteWriter().u32(first).finish(), 65536);
}

export function verifyApdu(pin: string | undefined, ref: number = PinRef.USER): Uint8Array {
  return encodeCommand({ cla: CLA_ISO, ins: INS.VERIFY, p1: 0, p2: ref, ...(pin !== undefined ? { data: new TextEncoder().encode(pin) } : {}) });
}

export function changePinApdu(oldPin: string, newPin: string, ref: number = PinRef.USER): Uint8Array {
  const o = new TextEncoder().encode(oldPin);
  const n = new TextEncoder().encode(newPin);
  return encodeCommand({ cla: CLA_ISO, ins: INS.CHANGE_PIN, p1: 0, p2: ref, data: Uint8Array.from([o.length, ...o, ...n]) });
}

export async function bureau(send: Send, cardKey: Uint8Array): Promise<SmSession> {
  return bureauAuthenticate(send, cardKey);
}

/** What a judge sees of a device: `key` is everything but the PIN try counters. */
export interface Fingerprint {
  key: string;
  userTries: number;
  soTries: number;
}

/**
 * A cheap, APDU-only fingerprint of everything persistent a host can see: device info
 * (storage figures masked: they depend on garbage, not on state; invoices stored counted
 * together with the ones rollover reclaimed), which PIN works, the
 * tries left, limits + offline status, stock, and the watched invoices. No SM2 on this path.
 * Two devices in the same persistent state give the same fingerprint.
 */
export async function fingerprint(send: Send, pins: readonly string[], watch: readonly { code: string; number: number }[] = []): Promise<Fingerprint> {
  const parts: string[] = [];
  const sel = splitResponse(await send(encodeCommand({ cla: CLA_ISO, ins: INS.SELECT, p1: 4, p2: 0, data: TAX_AID })));
  parts.push(`sel:${sel.sw.toString(16)}`);
  const info = await transceive(send, cmd(INS.GET_DEVICE_INFO, undefined, 256));
  let userTries = -1;
  let soTries = -1;
  if (info.data.length >= 54) {
    userTries = info.data[33]!;
    soTries = info.data[34]!;
    info.data.fill(0, 33, 35); // tries: compared separately
    info.data.fill(0, 38, 46); // storage free/used KiB
    // rollover may reclaim confirmed invoices at any commit (the recovery's login too): what
    // must hold is invoices stored + reclaimed, i.e. none lost that was not reclaimable
    const v = new DataView(info.data.buffer, info.data.byteOffset);
    v.setUint32(46, v.getUint32(46) + v.getUint32(50));
    v.setUint32(50, 0);
  }
  parts.push(`info:${toHex(info.data)}:${info.sw.toString(16)}`);
  let pinOk = -1;
  for (let i = 0; i < pins.length && pinOk < 0; i++) {
    const r = await transceive(send, verifyApdu(pins[i]));
    if (r.sw === 0x9000) pinOk = i;
    else if ((r.sw & 0xfff0) !== 0x63c0) break;
  }
  parts.push(`pin:${pinOk}`);
  for (const ins of [INS.GET_LIMITS, INS.GET_PURCHASES]) {
    const r = await transceive(send, cmd(ins, undefined, 256));
    parts.push(`${ins}:${toHex(r.data)}:${r.sw.toString(16)}`);
  }
  for (const w of watch) {
    const r = await transceive(send, readInvoiceApdu(w.code, w.number));
    parts.push(`inv${w.number}:${toHex(r.data)}:${r.sw.toString(16)}`);
  }
  return { key: parts.join("|"), userTries, soTries };
}

/**
 * Old-or-new with the PIN rule: the device shows exactly the state before or after, except
 * that a cut may cost a PIN try (the counter is decremented before the compare) but never
 * give one back: with the old state the tries may be the old count or up to `maxLost` fewer
 * (one per cut), or `loginTries` when a host login after the cut restored them.
 */
export function oldOrNew(got: Fingerprint, before: Fingerprint, after: Fingerprint, maxLost = 1, loginTries?: number): "old" | "new" | null {
  const same = (a: Fingerprint, b: Fingerprint) => a.key === b.key && a.userTries === b.userTries && a.soTries === b.soTries;
  if (same(got, after)) return "new";
  if (same(got, before)) return "old";
  // each cut may cost a try (b - maxLost .. b), none is regained: anything above the old count must be the new state's
  // loginTries: a host login with the right PIN ran after the cut and restores the tries to this
  // (then a try may also be lost from the new count: the login's own decrement, cut before its restore)
  const okTries = (g: number, b: number, a: number) =>
    g === a || (g <= b && g >= b - maxLost) || (loginTries !== undefined && (g === loginTries || (g <= a && g >= a - maxLost)));
  if ((got.key === before.key || got.key === after.key) && okTries(got.userTries, before.userTries, after.userTries) && okTries(got.soTries, before.soTries, after.soTries)) {
    return got.key === after.key && got.key !== before.key ? "new" : "old";
  }
  return null;
}

export function describeFingerprint(f: Fingerprint): string {
  return `userTries=${f.userTries} soTries=${f.soTries} ${f.key}`;
}
