/**
 * What every suite shares: the context (target, its channel as a Send, the bureau keys, a
 * seeded rng, the run's trace), case bookkeeping and assertions. Cases judge the device
 * through APDUs only.
 */
import type { Send } from "../src/tax/index.ts";
import { hexSw, splitResponse, selectApplication, swForError, bureauAuthenticate, issuer, transceive, decodeBatch } from "../src/tax/index.ts";
import type { Rng } from "../src/sim/index.ts";
import type { CaseResult } from "./report.ts";
import type { RunTrace, Target } from "./target.ts";
import { deviceInfo, login, personalize, cardKeyOf, exportApdu } from "./ukey-ops.ts";
import { HIL_START_SECONDS } from "./sim-device.ts";

export class CheckFailed extends Error {
  constructor(message: string, readonly detail?: string) {
    super(message);
    this.name = "CheckFailed";
  }
}

export interface SuiteContext {
  target: Target;
  send: Send;
  rng: Rng;
  trace: RunTrace;
  /** Status words seen by any case (error-code coverage). */
  seenSw: Set<number>;
  /** Monotonic milliseconds for the performance suite (never written to traces). */
  now: () => number;
  /** Bounded run (tests): fewer iterations. */
  quick: boolean;
  cardKey?: Uint8Array;
}

export type Suite = (ctx: SuiteContext) => Promise<CaseResult[]>;

/** Runs one case: a thrown CheckFailed is a failure, anything else an error. Emits a check event. */
export async function runCase(ctx: SuiteContext, suite: string, name: string, body: () => Promise<void | Record<string, number>>): Promise<CaseResult> {
  const t0 = ctx.now();
  let result: CaseResult;
  try {
    const metrics = await body();
    result = { suite, name, status: "pass", durationMs: ctx.now() - t0, ...(metrics ? { metrics } : {}) };
  } catch (error) {
    const failed = error instanceof CheckFailed;
    result = {
      suite, name, status: failed ? "fail" : "error", durationMs: ctx.now() - t0,
      message: error instanceof Error ? error.message : String(error),
      ...(failed && error.detail ? { detail: error.detail } : {}),
    };
  }
  ctx.trace.emit({ kind: "check", name: `${suite}/${name}`, ok: result.status === "pass", ...(result.message ? { detail: result.message } : {}) });
  return result;
}

export function check(condition: unknown, message: string, detail?: string): asserts condition {
  if (!condition) throw new CheckFailed(message, detail);
}

/** Sends one APDU and returns data + SW (no GET RESPONSE), recording the SW. */
export async function raw(ctx: SuiteContext, apdu: Uint8Array): Promise<{ data: Uint8Array; sw: number }> {
  const r = splitResponse(await ctx.send(apdu));
  ctx.seenSw.add(r.sw);
  return r;
}

export async function expectSw(ctx: SuiteContext, apdu: Uint8Array, want: number | readonly number[], what: string): Promise<Uint8Array> {
  const r = await raw(ctx, apdu);
  const ok = typeof want === "number" ? r.sw === want : want.includes(r.sw);
  check(ok, `${what}: expected ${typeof want === "number" ? hexSw(want) : want.map(hexSw).join(" or ")}, got ${hexSw(r.sw)}`);
  return r.data;
}

/** The TYUKEY code a promise rejected with (0 when it resolved), recording its SW. */
export async function codeOf(ctx: SuiteContext, p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (e) {
    const code = (e as { code?: number }).code;
    if (typeof code !== "number") throw e;
    const sw = swForError(code);
    if (sw) ctx.seenSw.add(sw);
    return code;
  }
}

/**
 * A personalized, logged-in card in the profile's state. A simulated sim:memory target
 * starts from a blank card. A target that keeps its state (sim:IMAGE, hardware) is
 * personalized when blank; otherwise the bureau restores the profile's taxpayer record
 * and limits and takes every pending event (export + confirm), so each case starts with
 * an open offline window and nothing un-uploaded.
 */
export async function readyCard(ctx: SuiteContext): Promise<void> {
  const t = ctx.target;
  const fresh = t.sim?.reset() === true;
  await t.channel.powerOn();
  await selectApplication(ctx.send);
  const keys = t.keys;
  if ((await deviceInfo(ctx.send)).lifeCycle === 0) {
    ctx.cardKey = await personalize(ctx.send, keys, HIL_START_SECONDS);
    return;
  }
  await login(ctx.send, keys.profile.userPin);
  ctx.cardKey = await cardKeyOf(ctx.send, keys);
  if (fresh) return;
  const s = await bureauAuthenticate(ctx.send, ctx.cardKey);
  await issuer.setTaxpayer(ctx.send, s, keys.profile.taxpayer).catch(() => undefined); // refused while events are pending: retried below
  for (let i = 0; i < 1000; i++) {
    const r = await transceive(ctx.send, exportApdu(0));
    if (r.sw !== 0x9000) break;
    const batch = decodeBatch(r.data);
    const last = batch.events.at(-1)?.seq;
    if (last === undefined) break;
    await issuer.confirmUpload(ctx.send, await bureauAuthenticate(ctx.send, ctx.cardKey), last);
    await login(ctx.send, keys.profile.userPin);
    if (batch.more === 0) break;
  }
  const s2 = await bureauAuthenticate(ctx.send, ctx.cardKey);
  await issuer.setTaxpayer(ctx.send, s2, keys.profile.taxpayer);
  await issuer.setLimits(ctx.send, s2, keys.profile.limits);
  await login(ctx.send, keys.profile.userPin);
}
