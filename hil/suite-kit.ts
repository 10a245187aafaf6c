/**
 * What every suite shares: the context (target, its channel as a Send, the bureau keys, a
 * seeded rng, the run's trace), case bookkeeping and assertions. Cases judge the device
 * through APDUs only.
 */
import type { Send } from "../src/tax/index.ts";
import { hexSw, splitResponse, selectApplication, swForError } from "../src/tax/index.ts";
import type { Rng } from "../src/sim/index.ts";
import type { CaseResult } from "./report.ts";
import type { RunTrace, Target } from "./target.ts";
import { deviceInfo, login, personalize } from "./ukey-ops.ts";
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
 * A personalized, logged-in card. A simulated target starts from a blank card; hardware
 * is personalized when it is blank and logged in otherwise (its issuer-key file must match).
 */
export async function readyCard(ctx: SuiteContext, opts: { profile?: SuiteContext["target"]["keys"]["profile"] } = {}): Promise<void> {
  const t = ctx.target;
  t.sim?.reset();
  await t.channel.powerOn();
  await selectApplication(ctx.send);
  const keys = opts.profile ? { ...t.keys, profile: opts.profile } : t.keys;
  if ((await deviceInfo(ctx.send)).lifeCycle === 0) ctx.cardKey = await personalize(ctx.send, keys, HIL_START_SECONDS);
  else await login(ctx.send, keys.profile.userPin);
  if (!ctx.cardKey) {
    const { cardKeyOf } = await import("./ukey-ops.ts");
    ctx.cardKey = await cardKeyOf(ctx.send, keys);
  }
}
