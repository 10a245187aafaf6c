/**
 * The tax-control rules, in one place: an xstate machine. Its context is the card's tax
 * state (limits, counters, certificate status); its states say what the card may do:
 *
 *   factory -> personalized -> active.{ online | offlineOpen | uploadPending | locked }
 *
 * - online: everything uploaded and the bureau was in touch within ONLINE_FRESH_SECONDS;
 * - offlineOpen: everything uploaded, offline window still open;
 * - uploadPending: un-uploaded records, offline window still open, no limit reached;
 * - locked: a reason blocks offline issuing (time, count, amount, ratio, clock, key, cert).
 *
 * The ISSUE check is a guarded transition list evaluated in the paper's order; the first
 * guard that holds sets the verdict (an error code), so issuing fails with the FIRST
 * failing check. The COS computes the tax control code, signs and commits only on
 * verdict 0, then sends COMMITTED with the new counters.
 */
import { assign, initialTransition, setup, transition, type SnapshotFrom } from "xstate";
import { E, IssueMode, type OfflineLimits } from "../tax/index.ts";
import type { Counters } from "./records.ts";

export const ONLINE_FRESH_SECONDS = 300;
export const SECONDS_PER_DAY = 86_400;
export const PERMILLE = 1000;

export const LockReason = { NONE: 0, TIME: 1, COUNT: 2, AMOUNT: 3, RATIO: 4, CLOCK: 5, KEY: 6, CERT: 7 } as const;
export const StateCode = { factory: 0, personalized: 1, online: 2, offlineOpen: 3, uploadPending: 4, locked: 5 } as const;

export interface TaxContext {
  now: number;
  clockOk: boolean;
  limits: OfflineLimits;
  counters: Counters;
  certPresent: boolean;
  certNotAfter: number;
  certRevoked: boolean;
  signLimit: number;
  /** Result of the last CHECK_ISSUE: 0 or a TYUKEY error code. */
  verdict: number;
}

/** What the COS found out about one issue request, before any crypto or write. */
export interface IssueFacts {
  now: number;
  clockOk: boolean;
  mode: number;
  taxpayerMatch: boolean;
  /** Red-letter only: does the original exist, and is the credit allowed (not voided, within the remainder)? */
  red?: { originalExists: boolean; creditAllowed: boolean };
  typeEnabled: boolean;
  stockLeft: number;
  batchCount: number;
  grandTotal: number;
  typeSingleLimit: number;
}

export type TaxEvent =
  | { type: "PERSONALIZED"; ctx: Partial<TaxContext> }
  | { type: "UPDATE"; ctx: Partial<TaxContext> }
  | { type: "CHECK_ISSUE"; facts: IssueFacts };

type Ctx = TaxContext;
type Facts = IssueFacts;

/** Each rule: [guard over (context, facts), error]. The order is the paper's issuing order. */
export const ISSUE_RULES: ReadonlyArray<readonly [string, (c: Ctx, f: Facts) => boolean, number]> = [
  // 1. taxpayer ID, login account and machine number match
  ["taxpayer", (_c, f) => !f.taxpayerMatch, E.TAXPAYER_MISMATCH],
  // 1b. red-letter: the original exists and may be credited
  ["original exists", (_c, f) => f.red !== undefined && !f.red.originalExists, E.DATA_NOT_EXIST],
  ["original creditable", (_c, f) => f.red !== undefined && !f.red.creditAllowed, E.INVOICE_STATE],
  // 2. identity certificate status
  ["certificate", (c, f) => !c.certPresent || c.certRevoked || (f.clockOk && f.now > c.certNotAfter), E.BAD_CERT],
  // 3. purchase (stock) status
  ["stock", (_c, f) => !f.typeEnabled || f.stockLeft <= 0, E.NO_STOCK],
  // 4. offline validity period, online/offline flag, valid days, offline ratio (the clock first: all of them need it)
  ["clock", (_c, f) => !f.clockOk, E.CLOCK_INVALID],
  ["offline flag", (c, f) => f.mode === IssueMode.OFFLINE && c.limits.offlineAllowed !== 1, E.OFFLINE_EXPIRED],
  ["validity period", (c, f) => f.mode === IssueMode.OFFLINE && f.now > c.limits.validUntil, E.OFFLINE_EXPIRED],
  ["valid days", (c, f) => f.mode === IssueMode.OFFLINE && f.now > c.counters.lastOnlineAt + c.limits.validDays * SECONDS_PER_DAY, E.OFFLINE_EXPIRED],
  ["offline ratio", (c, f) => f.mode === IssueMode.OFFLINE && (c.counters.offlineCount + 1) * PERMILLE > c.limits.maxOfflineRatioPermille * f.batchCount, E.OFFLINE_RATIO],
  // 5. un-uploaded records: online issuing needs all uploaded; offline, the count limit
  ["un-uploaded (online)", (c, f) => f.mode === IssueMode.ONLINE && c.counters.pendingCount > 0, E.HAVE_NOTRANCE_DATA],
  ["un-uploaded (offline count)", (c, f) => f.mode === IssueMode.OFFLINE && c.counters.offlineCount >= c.limits.maxOfflineCount, E.OFFLINE_COUNT],
  // 6. amount limits
  ["single-invoice limit", (c, f) => f.grandTotal > Math.min(f.typeSingleLimit, c.limits.singleLimitFen), E.AMOUNT_LIMIT],
  ["offline amount", (c, f) => f.mode === IssueMode.OFFLINE && c.counters.offlineAmountFen + f.grandTotal > c.limits.maxOfflineAmountFen, E.OFFLINE_AMOUNT],
  // 7. the tax control code cannot fail once the key is loaded; 8. signature: key usage
  ["key usage", (c) => c.counters.signCount >= c.signLimit, E.KEY_EXPIRED],
];

/**
 * The same verdict as the machine's CHECK_ISSUE transition, evaluated straight from
 * ISSUE_RULES without building a snapshot: the issue path's fast lane. A property test
 * holds the two equal.
 */
export function issueVerdict(c: Ctx, f: Facts): number {
  for (const [, rule, code] of ISSUE_RULES) if (rule(c, f)) return code;
  return 0;
}

/** Why offline issuing is blocked right now (LockReason), from the context alone. */
export function lockReason(c: Ctx): number {
  if (!c.clockOk) return LockReason.CLOCK;
  if (c.counters.signCount >= c.signLimit) return LockReason.KEY;
  if (!c.certPresent || c.certRevoked || c.now > c.certNotAfter) return LockReason.CERT;
  if (c.limits.offlineAllowed !== 1 || c.now > c.limits.validUntil || c.now > c.counters.lastOnlineAt + c.limits.validDays * SECONDS_PER_DAY) return LockReason.TIME;
  if (c.counters.offlineCount >= c.limits.maxOfflineCount) return LockReason.COUNT;
  if (c.counters.offlineAmountFen >= c.limits.maxOfflineAmountFen) return LockReason.AMOUNT;
  return LockReason.NONE;
}

const checkIssue = ISSUE_RULES.map(([name, , code], i) => ({
  guard: { type: "rule" as const, params: { i } },
  actions: { type: "setVerdict" as const, params: { code } },
  description: name,
}));

export const taxMachine = setup({
  types: { context: {} as TaxContext, events: {} as TaxEvent, input: {} as { ctx: TaxContext; personalized: boolean } },
  actions: {
    setVerdict: assign((_, params: { code: number }) => ({ verdict: params.code })),
  },
  guards: {
    rule: ({ context, event }, params: { i: number }) => event.type === "CHECK_ISSUE" && (ISSUE_RULES[params.i] as (typeof ISSUE_RULES)[number])[1](context, event.facts),
    isPersonalized: ({ context }) => context.verdict === -1,
    locked: ({ context }) => lockReason(context) !== LockReason.NONE,
    pending: ({ context }) => context.counters.pendingCount > 0,
    fresh: ({ context }) => context.now - context.counters.lastOnlineAt <= ONLINE_FRESH_SECONDS,
  },
}).createMachine({
  id: "tax",
  context: ({ input }) => ({ ...input.ctx, verdict: input.personalized ? -1 : 0 }),
  initial: "boot",
  states: {
    boot: { always: [{ guard: "isPersonalized", target: "active", actions: assign({ verdict: 0 }) }, { target: "factory" }] },
    factory: {
      on: {
        PERSONALIZED: { target: "active", actions: assign(({ context, event }) => ({ ...context, ...event.ctx, verdict: 0 })) },
        UPDATE: { actions: assign(({ context, event }) => ({ ...context, ...event.ctx })) },
      },
    },
    active: {
      initial: "route",
      on: {
        UPDATE: { target: ".route", actions: assign(({ context, event }) => ({ ...context, ...event.ctx })) },
        CHECK_ISSUE: [...checkIssue, { actions: assign({ verdict: 0 }) }],
      },
      states: {
        route: { always: [{ guard: "locked", target: "locked" }, { guard: "pending", target: "uploadPending" }, { guard: "fresh", target: "online" }, { target: "offlineOpen" }] },
        online: {},
        offlineOpen: {},
        uploadPending: {},
        locked: {},
      },
    },
  },
});

export type TaxSnapshot = SnapshotFrom<typeof taxMachine>;

export function startTaxMachine(ctx: TaxContext, personalized: boolean): TaxSnapshot {
  return initialTransition(taxMachine, { ctx, personalized })[0];
}

export function sendTax(s: TaxSnapshot, e: TaxEvent): TaxSnapshot {
  return transition(taxMachine, s, e)[0];
}

/** The verdict of an issue request: 0 or the error code of the first failing check. */
export function checkIssueVerdict(s: TaxSnapshot, facts: IssueFacts): number {
  if (!s.matches("active")) return E.STATE;
  return sendTax(s, { type: "CHECK_ISSUE", facts }).context.verdict;
}

export function stateCode(s: TaxSnapshot): number {
  if (s.matches("factory")) return StateCode.factory;
  for (const k of ["online", "offlineOpen", "uploadPending", "locked"] as const) if (s.matches({ active: k })) return StateCode[k];
  return StateCode.personalized;
}
