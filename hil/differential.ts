/**
 * Differential testing: fast-check generates host command sequences; each runs on the
 * target (a simulated Ukey on NAND, forked from one personalized device) and on the
 * reference model (the same COS on a ModelStore). The first difference in status word or
 * data fails with fast-check's shrunk sequence, its seed and path, and the command that
 * replays it. Data of GET CHALLENGE is compared by length only (random by nature), and the
 * storage figures of GET DEVICE INFO are masked (a ModelStore has no capacity).
 */
import fc from "fast-check";
import { createUkey, MemorySecrets, type UkeyCos } from "../src/cos/index.ts";
import { ModelStore } from "../src/flash-store/index.ts";
import { Rng, VirtualClock, toHex } from "../src/sim/index.ts";
import { INS, CLA_ISO, encodeCommand, TAX_AID, type Send } from "../src/tax/index.ts";
import { SimDevice, HIL_START_SECONDS, SIM_SERIAL } from "./sim-device.ts";
import { simIssuerKeys, type IssuerKeys } from "./issuer-keys.ts";
import { personalize, cmd, draft, issueApdu, verifyApdu, voidApdu, readInvoiceApdu, exportApdu } from "./ukey-ops.ts";
import type { Target } from "./target.ts";

export type DiffCommand =
  | { t: "select" }
  | { t: "verify"; right: boolean }
  | { t: "clear" }
  | { t: "read"; ins: number }
  | { t: "issue"; amount: number; mode: number }
  | { t: "void"; k: number }
  | { t: "red"; k: number; amount: number }
  | { t: "readInvoice"; k: number }
  | { t: "export" }
  | { t: "sign"; len: number }
  | { t: "challenge" }
  | { t: "power" }
  | { t: "time"; seconds: number }
  | { t: "garbage"; bytes: number[] };

export const diffCommand: fc.Arbitrary<DiffCommand> = fc.oneof(
  fc.constant({ t: "select" as const }),
  fc.boolean().map((right) => ({ t: "verify" as const, right })),
  fc.constant({ t: "clear" as const }),
  fc.constantFrom(INS.GET_TAXPAYER, INS.GET_INVOICE_TYPES, INS.GET_PURCHASES, INS.GET_LIMITS, INS.GET_SECURE_TIME, INS.GET_DEVICE_INFO).map((ins) => ({ t: "read" as const, ins })),
  fc.record({ amount: fc.oneof(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom(1_000_000, 1_000_001)), mode: fc.constantFrom(0, 0, 1) }).map((r) => ({ t: "issue" as const, ...r })),
  fc.integer({ min: 0, max: 3 }).map((k) => ({ t: "void" as const, k })),
  fc.record({ k: fc.integer({ min: 0, max: 3 }), amount: fc.integer({ min: 1, max: 20_000 }) }).map((r) => ({ t: "red" as const, ...r })),
  fc.integer({ min: 0, max: 3 }).map((k) => ({ t: "readInvoice" as const, k })),
  fc.constant({ t: "export" as const }),
  fc.integer({ min: 0, max: 300 }).map((len) => ({ t: "sign" as const, len })),
  fc.constant({ t: "challenge" as const }),
  fc.constant({ t: "power" as const }),
  fc.constantFrom(60, 3600, 86_400, 3 * 86_400).map((seconds) => ({ t: "time" as const, seconds })),
  fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 0, maxLength: 12 }).map((bytes) => ({ t: "garbage" as const, bytes })),
);

/** The APDU of a command (undefined for power and time, which are not APDUs). */
export function apduOf(c: DiffCommand, keys: IssuerKeys): Uint8Array | undefined {
  const p = keys.profile;
  const code = p.purchases[0]!.invoiceCode;
  const num = (k: number) => p.purchases[0]!.startNumber + k;
  switch (c.t) {
    case "select": return encodeCommand({ cla: CLA_ISO, ins: INS.SELECT, p1: 4, p2: 0, data: TAX_AID });
    case "verify": return verifyApdu(c.right ? p.userPin : "00000000");
    case "clear": return cmd(INS.CLEAR_SECURITY_STATE);
    case "read": return cmd(c.ins, undefined, 65536);
    case "issue": return issueApdu(draft(p, { mode: c.mode as 0 | 1 }, c.amount));
    case "void": return voidApdu(code, num(c.k));
    case "red": return issueApdu(draft(p, { kind: 1, originalCode: code, originalNumber: num(c.k) }, c.amount));
    case "readInvoice": return readInvoiceApdu(code, num(c.k));
    case "export": return exportApdu(0);
    case "sign": return cmd(INS.SIGN, new Uint8Array(c.len).fill(0x5a), 256);
    case "challenge": return encodeCommand({ cla: CLA_ISO, ins: INS.GET_CHALLENGE, le: 8 });
    case "garbage": return Uint8Array.from(c.bytes);
    default: return undefined;
  }
}

/** One side of the comparison: a card, its clock, and power cycling. */
interface Side {
  card: UkeyCos;
  clock: VirtualClock;
}

function refCard(seed: number, store: ModelStore, nowMs: number, salt: number, secrets: MemorySecrets, share = false): Side {
  const clock = new VirtualClock(nowMs);
  let copy = secrets;
  if (!share) {
    copy = new MemorySecrets();
    const s = secrets.read();
    if (s) copy.write(s);
  }
  return { card: createUkey({ store, clock, rng: new Rng(seed, salt), serial: SIM_SERIAL, secrets: copy }), clock };
}

async function apply(side: Side, c: DiffCommand, keys: IssuerKeys): Promise<string> {
  if (c.t === "power") {
    side.card.powerOff();
    side.card.powerOn();
    return "power";
  }
  if (c.t === "time") {
    side.clock.advance(c.seconds * 1000);
    return "time";
  }
  const r = side.card.process(apduOf(c, keys)!);
  const sw = toHex(r.subarray(r.length - 2));
  // storage figures (free/used KiB) describe the store, not the state: a ModelStore is unbounded
  if (c.t === "read" && c.ins === INS.GET_DEVICE_INFO && r.length >= 48) r.fill(0, 38, 46);
  return c.t === "challenge" ? `${sw}:len${r.length - 2}` : `${sw}:${toHex(r.subarray(0, r.length - 2))}`;
}

export interface DifferentialOptions {
  seed: number;
  runs: number;
  maxLength?: number;
  /** Only simulated targets can be reset for each sequence; hardware is refused. */
  target?: Target;
}

export interface DifferentialResult {
  ok: boolean;
  runs: number;
  message?: string;
  detail?: string;
  /** fast-check seed and path of the shrunk counterexample. */
  seed: number;
  path?: string;
  counterexample?: DiffCommand[];
}

/** A personalized pair (target device on NAND, reference on ModelStore) to fork per sequence. */
export interface DiffBase {
  device: SimDevice;
  model: ModelStore;
  secrets: MemorySecrets;
  keys: IssuerKeys;
  seed: number;
}

export async function diffBase(seed: number): Promise<DiffBase> {
  const keys = simIssuerKeys();
  const device = SimDevice.create({ seed });
  device.powerOn();
  const model = new ModelStore();
  const secrets = new MemorySecrets();
  const ref = refCard(seed, model, HIL_START_SECONDS * 1000, 0, secrets, true);
  ref.card.powerOn();
  const sendDev: Send = async (a) => device.transmit(a);
  const sendRef: Send = async (a) => ref.card.process(a);
  await personalize(sendDev, keys, HIL_START_SECONDS);
  await personalize(sendRef, keys, HIL_START_SECONDS);
  return { device, model, secrets, keys, seed };
}

/** Runs one sequence on fresh forks of both sides; returns the first difference or null. */
export async function compareSequence(base: DiffBase, seq: readonly DiffCommand[], salt: number): Promise<string | null> {
  const dev = base.device.fork(salt);
  const t: Side = { card: dev.card, clock: dev.clock };
  const r = refCard(base.seed, base.model.clone(), dev.clock.now(), salt, base.secrets);
  t.card.powerOn();
  r.card.powerOn();
  for (let i = 0; i < seq.length; i++) {
    const c = seq[i]!;
    const a = await apply(t, c, base.keys);
    const b = await apply(r, c, base.keys);
    if (a !== b) return `command ${i} ${JSON.stringify(c)}:\n  target    ${a.slice(0, 400)}\n  reference ${b.slice(0, 400)}`;
  }
  return null;
}

export async function runDifferential(o: DifferentialOptions): Promise<DifferentialResult> {
  if (o.target && o.target.kind !== "sim") {
    return { ok: false, runs: 0, seed: o.seed, message: `differential needs a target that can be reset to the reference's state for each sequence; ${o.target.uri} cannot (run it on sim targets, or see docs/hil.md)` };
  }
  const base = await diffBase(o.seed);
  let salt = 1;
  const prop = fc.asyncProperty(fc.array(diffCommand, { minLength: 1, maxLength: o.maxLength ?? 12 }), async (seq) => {
    const d = await compareSequence(base, seq, salt++);
    if (d) throw new Error(d);
  });
  const out = await fc.check(prop, { seed: o.seed | 0, numRuns: o.runs });
  if (!out.failed) return { ok: true, runs: out.numRuns, seed: o.seed };
  const cx = (out.counterexample?.[0] ?? []) as DiffCommand[];
  const path = out.counterexamplePath ?? "";
  return {
    ok: false, runs: out.numRuns, seed: o.seed, path, counterexample: cx,
    message: `target and reference differ after ${cx.length} command(s) (fast-check seed ${out.seed}, path "${path}")`,
    detail: `${out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance)}\nsequence: ${JSON.stringify(cx)}\nreplay: ukeysim hil run --target sim:memory --suite differential --seed ${o.seed}`,
  };
}
