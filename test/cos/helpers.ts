/** Shared set-up for the COS tests: a personalized card on a ModelStore with a virtual clock. */
import { readFileSync } from "node:fs";
import { createUkey, type UkeyCos, MemorySecrets } from "../../src/cos/index.ts";
import { ModelStore, type RecordStore } from "../../src/flash-store/index.ts";
import { Rng, VirtualClock } from "../../src/sim/index.ts";
import {
  parseProfile, personalizeCard, deriveCardKey, FACTORY_ISSUER_KEY, bureauAuthenticate, issuer, verifyPin, selectApplication, call,
  encodeCommand, CLA_PROPRIETARY, INS, splitResponse, encodeInvoice, decodeIssued, type Invoice, type IssuanceProfile, type SmSession, type Send,
} from "../../src/tax/index.ts";

export const PROFILE_TEXT = readFileSync(new URL("../../fixtures/profile-default.json", import.meta.url), "utf8");
export const PROFILE: IssuanceProfile = parseProfile(PROFILE_TEXT);
/** 2026-01-01T00:00:00Z */
export const ISSUE_TIME = 1_767_225_600;
/** A DER SEQUENCE standing in for the device certificate (the x509 branch makes real ones). */
export const FAKE_CERT = Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01);

export interface Rig {
  card: UkeyCos;
  clock: VirtualClock;
  store: RecordStore;
  secrets: MemorySecrets;
  send: Send;
  cardKey: Uint8Array;
}

export function blankCard(seed = 1, store: RecordStore = new ModelStore()): Rig {
  const clock = new VirtualClock(ISSUE_TIME * 1000);
  const secrets = new MemorySecrets();
  const card = createUkey({ store, clock, rng: new Rng(seed), secrets, serial: "UK00000000000001" });
  card.powerOn();
  const send: Send = async (apdu) => card.process(apdu);
  return { card, clock, store, secrets, send, cardKey: deriveCardKey(PROFILE.bureauMasterKey, "UK00000000000001") };
}

export async function personalize(r: Rig, p: IssuanceProfile = PROFILE, opts: { cert?: boolean } = {}): Promise<void> {
  await personalizeCard(r.send, {
    issuerKey: FACTORY_ISSUER_KEY, cardKey: r.cardKey, userPin: p.userPin, soPin: p.soPin, clockSeconds: ISSUE_TIME,
    taxKey: p.taxKey, taxCodeAlgorithm: p.taxCodeAlgorithm, taxpayer: p.taxpayer, invoiceTypes: p.invoiceTypes, purchases: p.purchases, limits: p.limits,
  });
  await verifyPin(r.send, p.userPin);
  await call(r.send, encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.GENERATE_KEY_PAIR, le: 256 }));
  if (opts.cert !== false) {
    const s = await bureauAuthenticate(r.send, r.cardKey);
    await issuer.writeCert(r.send, s, 0, FAKE_CERT);
  }
}

export async function readyCard(seed = 1, store?: RecordStore): Promise<Rig> {
  const r = blankCard(seed, store);
  await personalize(r);
  await login(r);
  return r;
}

/** SELECT + VERIFY user PIN (after a power cycle). */
export async function login(r: Rig): Promise<void> {
  await selectApplication(r.send);
  await verifyPin(r.send, PROFILE.userPin);
}

export async function bureau(r: Rig): Promise<SmSession> {
  return bureauAuthenticate(r.send, r.cardKey);
}

export function draft(over: Partial<Invoice> = {}, amountFen = 10_000, taxRatePermille = 130): Invoice {
  const tax = Math.floor((amountFen * taxRatePermille + 500) / 1000);
  const t = PROFILE.taxpayer;
  return {
    kind: 0, mode: 0, typeCode: "02601", invoiceCode: "", invoiceNumber: 0, issuedAt: 0,
    taxpayerId: t.taxpayerId, loginAccount: t.loginAccount, machineNumber: t.machineNumber, sellerName: t.taxpayerName,
    buyerName: "张三", buyerTaxId: "", originalCode: "", originalNumber: 0,
    lines: [{ name: "办公用品", unit: "件", quantityMilli: 1000, unitPriceFen: amountFen, amountFen, taxRatePermille, taxFen: tax }],
    totalAmountFen: amountFen, totalTaxFen: tax, remark: "", ...over,
  };
}

export function cmd(ins: number, data?: Uint8Array, le = 0): Uint8Array {
  return encodeCommand({ cla: CLA_PROPRIETARY, ins, ...(data ? { data } : {}), le });
}

/** Raw exchange: data + SW, no GET RESPONSE. */
export function raw(r: Rig, apdu: Uint8Array): { data: Uint8Array; sw: number } {
  return splitResponse(r.card.process(apdu));
}

export async function issue(r: Rig, inv: Invoice = draft()) {
  return decodeIssued(await call(r.send, cmd(inv.kind === 1 ? INS.RED : INS.ISSUE, encodeInvoice(inv), 65536)));
}

export async function swOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (e) {
    return (e as { code: number }).code;
  }
}

import { createUkeyOnFlash, type FlashUkey } from "../../src/cos/index.ts";
import { NandChip, SMALL_GEOMETRY } from "../../src/flash-store/index.ts";

export interface FlashRig extends Rig {
  flash: FlashUkey;
  chip: NandChip;
}

/** A blank card on a small in-memory NAND chip with the real FlashStore. */
export function blankFlashCard(seed = 1, chip: NandChip = NandChip.memory({ geometry: { ...SMALL_GEOMETRY, blocks: 64 } })): FlashRig {
  const clock = new VirtualClock(ISSUE_TIME * 1000);
  const secrets = new MemorySecrets();
  const flash = createUkeyOnFlash({ chip, clock, rng: new Rng(seed), secrets, serial: "UK00000000000001" });
  const card = flash.card;
  card.powerOn();
  const send: Send = async (apdu) => card.process(apdu);
  return {
    card, clock, secrets, send, flash, chip, cardKey: deriveCardKey(PROFILE.bureauMasterKey, "UK00000000000001"),
    get store() {
      return flash.store();
    },
  };
}

export async function readyFlashCard(seed = 1, p: IssuanceProfile = PROFILE): Promise<FlashRig> {
  const r = blankFlashCard(seed);
  await personalize(r, p);
  await login(r);
  return r;
}
