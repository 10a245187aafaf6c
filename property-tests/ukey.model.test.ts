/**
 * Model-based test of a simulated Ukey on NAND, through APDUs only: fast-check runs
 * random sequences where power cuts (at a random flash operation of an ISSUE), clock
 * jumps, read bit flips (ECC must correct them) and network faults (an export whose
 * confirm never arrives) are commands beside issue, void, red, export+confirm and PIN
 * verification. After every command the device must agree with a small model: invoice
 * numbers contiguous and never reused, states (voided, credited), the offline window.
 *
 * On failure it prints the seed, path and replayPath and the command that replays it:
 *   UKEYSIM_PROP_SEED=S UKEYSIM_PROP_PATH=P UKEYSIM_PROP_REPLAY=R npx vitest run property-tests/ukey.model.test.ts
 * Bounded for npm test; UKEYSIM_LONG=1 runs many more sequences.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { SimDevice, HIL_START_SECONDS, simIssuerKeys, personalize, draft, SimPowerControl } from "../hil/index.ts";
import {
  call, transceive, decodeInvoice, decodeIssued, decodeStored, decodeBatch, issuer, bureauAuthenticate, selectApplication, verifyPin, encodeCommand, encodeInvoice, encodeInvoiceKey,
  CLA_PROPRIETARY, CLA_ISO, INS, type Send,
} from "../src/tax/index.ts";
import { Rng, MemoryTrace } from "../src/sim/index.ts";

const LONG = process.env.UKEYSIM_LONG === "1";
const RUNS = LONG ? 300 : 20;
const keys = simIssuerKeys();
const P = keys.profile;
const CODE = P.purchases[0]!.invoiceCode;
const START = P.purchases[0]!.startNumber;
const DAY = 86_400;

interface Inv { number: number; amount: number; red: boolean; voided: boolean; credited: number; original?: number }
interface Model { now: number; lastOnline: number; invoices: Inv[]; offlineCount: number }
interface Real { dev: SimDevice; send: Send; power: SimPowerControl; cardKey: Uint8Array; rng: Rng; flipped: Set<string> }

const cmdApdu = (ins: number, data?: Uint8Array, le = 65536) => encodeCommand({ cla: CLA_PROPRIETARY, ins, ...(data ? { data } : {}), le });

async function sw(send: Send, apdu: Uint8Array): Promise<{ sw: number; data: Uint8Array }> {
  return transceive(send, apdu);
}
async function login(r: Real): Promise<void> {
  await selectApplication(r.send);
  await verifyPin(r.send, P.userPin);
}

/** Device and model agree: invoice count, next number, each invoice's state. */
async function agree(m: Model, r: Real): Promise<void> {
  const purchases = await call(r.send, cmdApdu(INS.GET_PURCHASES, undefined, 256));
  const next = new DataView(purchases.buffer, purchases.byteOffset).getUint32(5 + 12 + 4 + 4);
  expect(next, "next invoice number").toBe(START + m.invoices.length);
  for (const inv of m.invoices.slice(-3)) {
    const stored = decodeStored(await call(r.send, cmdApdu(INS.READ_INVOICE, encodeInvoiceKey(CODE, inv.number))));
    expect(decodeInvoice(stored.issued.invoice).invoiceNumber).toBe(inv.number);
    expect(stored.state, `invoice ${inv.number} voided`).toBe(inv.voided ? 1 : 0);
    expect(stored.creditedFen, `invoice ${inv.number} credited`).toBe(inv.credited);
  }
}

const windowOpen = (m: Model) => m.now <= m.lastOnline + 3 * DAY;

class Issue implements fc.AsyncCommand<Model, Real> {
  constructor(readonly amount: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const res = await sw(r.send, cmdApdu(INS.ISSUE, encodeInvoice(draft(P, {}, this.amount, 0))));
    if (!windowOpen(m)) return void expect(res.sw.toString(16)).toBe("9416");
    expect(res.sw.toString(16)).toBe("9000");
    const number = decodeInvoice(decodeIssued(res.data).invoice).invoiceNumber;
    expect(number, "numbers are contiguous, never reused").toBe(START + m.invoices.length);
    m.invoices.push({ number, amount: this.amount, red: false, voided: false, credited: 0 });
    m.offlineCount++;
    await agree(m, r);
  }
  toString = () => `issue(${this.amount})`;
}

class Void implements fc.AsyncCommand<Model, Real> {
  constructor(readonly k: number) {}
  check = (m: Readonly<Model>) => m.invoices.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const inv = m.invoices[this.k % m.invoices.length]!;
    const res = await sw(r.send, cmdApdu(INS.VOID, encodeInvoiceKey(CODE, inv.number), 256));
    const refused = inv.voided || inv.credited > 0 || inv.red;
    if (inv.red && !inv.voided) {
      // voiding a red-letter invoice: the COS may allow or refuse it; the model follows the card
      expect(res.sw === 0x9000 || res.sw === 0x941b, `void of red invoice ${inv.number}: ${res.sw.toString(16)}`).toBe(true);
      if (res.sw === 0x9000) {
        inv.voided = true;
        // a voided credit note no longer credits its original
        const orig = m.invoices.find((i) => i.number === inv.original);
        if (orig) orig.credited -= inv.amount;
      }
      return agree(m, r);
    }
    expect(res.sw.toString(16)).toBe(refused ? "941b" : "9000");
    if (!refused) inv.voided = true;
    await agree(m, r);
  }
  toString = () => `void(${this.k})`;
}

class Red implements fc.AsyncCommand<Model, Real> {
  constructor(readonly k: number, readonly amount: number) {}
  check = (m: Readonly<Model>) => m.invoices.some((i) => !i.red);
  async run(m: Model, r: Real): Promise<void> {
    const normals = m.invoices.filter((i) => !i.red);
    const orig = normals[this.k % normals.length]!;
    const res = await sw(r.send, cmdApdu(INS.RED, encodeInvoice(draft(P, { kind: 1, originalCode: CODE, originalNumber: orig.number }, this.amount, 0))));
    const allowed = !orig.voided && orig.credited + this.amount <= orig.amount;
    if (allowed && !windowOpen(m)) return void expect(res.sw.toString(16)).toBe("9416");
    expect(res.sw.toString(16)).toBe(allowed ? "9000" : "941b");
    if (allowed) {
      orig.credited += this.amount;
      m.invoices.push({ number: START + m.invoices.length, amount: this.amount, red: true, voided: false, credited: 0, original: orig.number });
      m.offlineCount++;
    }
    await agree(m, r);
  }
  toString = () => `red(${this.k}, ${this.amount})`;
}

/** Export, then the bureau confirms, unless the network fails in between (the confirm never arrives). */
class Upload implements fc.AsyncCommand<Model, Real> {
  constructor(readonly networkFault: boolean) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const res = await sw(r.send, cmdApdu(INS.EXPORT_UNUPLOADED, Uint8Array.of(0, 0, 0, 0)));
    if (res.sw !== 0x9000) return void expect(res.sw.toString(16)).toBe("6a83"); // nothing pending
    const batch = decodeBatch(res.data);
    if (this.networkFault) return;
    const last = batch.events.at(-1)!.seq;
    await issuer.confirmUpload(r.send, await bureauAuthenticate(r.send, r.cardKey), last);
    if (batch.more === 0) m.offlineCount = 0;
    m.lastOnline = m.now;
    await agree(m, r);
  }
  toString = () => `upload(${this.networkFault ? "network fault" : "ok"})`;
}

class WrongPin implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const res = await sw(r.send, encodeCommand({ cla: CLA_ISO, ins: INS.VERIFY, p1: 0, p2: 1, data: new TextEncoder().encode("00000000") }));
    expect(res.sw.toString(16)).toBe("63c5");
    await login(r); // the right PIN restores the tries
    const info = await call(r.send, cmdApdu(INS.GET_DEVICE_INFO, undefined, 256));
    expect(info[33]).toBe(6);
  }
  toString = () => "wrongPin";
}

class ClockJump implements fc.AsyncCommand<Model, Real> {
  constructor(readonly seconds: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    r.dev.clock.advance(this.seconds * 1000);
    m.now += this.seconds;
  }
  toString = () => `clock+${this.seconds}s`;
}

/** Single-bit read errors on programmed pages; ECC corrects them, the card answers as before. */
class BitFlips implements fc.AsyncCommand<Model, Real> {
  constructor(readonly count: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const g = r.dev.chip.geometry;
    let done = 0;
    for (let b = 0; b < g.blocks && done < this.count; b++) {
      for (let p = 0; p < g.pagesPerBlock && done < this.count; p++) {
        // one flip per page per run: a flip is pending until the page is read, and two in one
        // ECC sector are a double-bit error (detected, not corrected), outside this property
        if (r.dev.chip.media.readPage(b, p) && !r.flipped.has(`${b}/${p}`) && r.rng.bool(0.2)) {
          r.flipped.add(`${b}/${p}`);
          r.dev.chip.scheduleReadFlip(b, p, r.rng.int(g.pageBytes * 8));
          done++;
        }
      }
    }
    r.dev.card.powerOff();
    r.dev.powerOn(); // re-reads everything through the flips
    await login(r);
    await agree(m, r);
  }
  toString = () => `bitFlips(${this.count})`;
}

/** The power goes at the n-th mutating flash operation of an ISSUE: afterwards the invoice exists or not, nothing else. */
class PowerCutIssue implements fc.AsyncCommand<Model, Real> {
  constructor(readonly n: number, readonly amount: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    r.power.armCut(this.n);
    let cut = false;
    try {
      const res = r.dev.transmit(cmdApdu(INS.ISSUE, encodeInvoice(draft(P, {}, this.amount, 0))));
      if (!windowOpen(m)) expect((((res[res.length - 2]! << 8) | res[res.length - 1]!) >>> 0).toString(16)).toBe("9416");
    } catch {
      cut = true;
    }
    await r.power.restore();
    if (cut) r.dev.powerOn();
    await login(r);
    const number = START + m.invoices.length;
    const read = await sw(r.send, cmdApdu(INS.READ_INVOICE, encodeInvoiceKey(CODE, number)));
    if (read.sw === 0x9000) {
      expect(windowOpen(m), "an invoice appeared although the window was closed").toBe(true);
      m.invoices.push({ number, amount: this.amount, red: false, voided: false, credited: 0 });
      m.offlineCount++;
    } else expect(read.sw.toString(16)).toBe("6a83");
    await agree(m, r);
  }
  toString = () => `powerCutIssue(op ${this.n}, ${this.amount})`;
}

const commands = [
  fc.integer({ min: 1, max: 5_000 }).map((a) => new Issue(a)),
  fc.nat(20).map((k) => new Void(k)),
  fc.tuple(fc.nat(20), fc.integer({ min: 1, max: 3_000 })).map(([k, a]) => new Red(k, a)),
  fc.boolean().map((f) => new Upload(f)),
  fc.constant(new WrongPin()),
  fc.constantFrom(3_600, DAY, 2 * DAY).map((s) => new ClockJump(s)),
  fc.integer({ min: 1, max: 4 }).map((n) => new BitFlips(n)),
  fc.tuple(fc.nat(12), fc.integer({ min: 1, max: 5_000 })).map(([n, a]) => new PowerCutIssue(n, a)),
];

/** The COS's own trace of the current run: its "note" events carry internal errors with their stack. */
let cosTrace = new MemoryTrace();

async function fresh(seed: number): Promise<Real> {
  cosTrace = new MemoryTrace();
  const dev = SimDevice.create({ seed, trace: cosTrace });
  dev.powerOn();
  const send: Send = async (a) => dev.transmit(a);
  const cardKey = await personalize(send, keys, HIL_START_SECONDS);
  return { dev, send, power: new SimPowerControl(() => dev, seed), cardKey, rng: new Rng(seed).fork("flips"), flipped: new Set() };
}

describe("Ukey on NAND against its model (power cuts, clock jumps, bit flips, network faults)", () => {
  it("agrees after every command", async () => {
    const seed = process.env.UKEYSIM_PROP_SEED ? Number(process.env.UKEYSIM_PROP_SEED) : 20_260_101;
    const path = process.env.UKEYSIM_PROP_PATH;
    const replayPath = process.env.UKEYSIM_PROP_REPLAY;
    const property = fc.asyncProperty(fc.commands(commands, { maxCommands: LONG ? 60 : 20, size: "medium", ...(replayPath ? { replayPath } : {}) }), async (cmds) => {
      const real = await fresh(seed); // same device seed every run, so seed + path + replayPath replay exactly
      const model: Model = { now: HIL_START_SECONDS, lastOnline: HIL_START_SECONDS, invoices: [], offlineCount: 0 };
      await fc.asyncModelRun(() => ({ model, real }), cmds);
    });
    const out = await fc.check(property, { seed, numRuns: RUNS, ...(path ? { path } : {}) });
    if (out.failed) {
      const cx = out.counterexample?.[0];
      const rp = /replayPath="([^"]*)"/.exec(String(cx))?.[1] ?? "";
      const replay = `UKEYSIM_PROP_SEED=${out.seed} UKEYSIM_PROP_PATH=${out.counterexamplePath} UKEYSIM_PROP_REPLAY='${rp}' npx vitest run property-tests/ukey.model.test.ts`;
      const notes = cosTrace.events.filter((e) => e.kind === "note").map((e) => (e as { text: string }).text.split("\n").slice(0, 6).join("\n    "));
      const message = `model and device disagree (seed ${out.seed}, path ${out.counterexamplePath}, replayPath ${rp || "-"})\n  commands: ${String(cx)}\n  error: ${out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance)}\n  replay: ${replay}${notes.length ? `\n  COS notes (last run):\n    ${notes.join("\n    ")}` : ""}`;
      console.error(message);
      expect.fail(message);
    }
    if (!path) expect(out.numRuns).toBe(RUNS); // a replayed path runs just its case
  });
});
