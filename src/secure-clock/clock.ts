/**
 * The Ukey's secure clock (the paper: set by the tax bureau at issuance, the user cannot
 * change it, drift within 3 s/day, 3+ years of life; its time is the invoice time).
 *
 * Model: a battery-backed oscillator. The injected `Clock` plays the oscillator's time
 * base (in simulation a VirtualClock, in serve mode the wall clock). At issuance the
 * bureau sets the time; we persist an anchor (secure ms, source ms) in a critical record.
 *     secure(t) = anchor.secureMs + (t - anchor.sourceMs) * (1 + driftPpm / 1e6)
 * - Rollback: the anchor also holds the highest source time seen at a checkpoint; the
 *   COS persists a checkpoint in every transaction. A source time below the high-water
 *   mark (in RAM or persisted) is tampering: the clock refuses (state ROLLBACK) until the
 *   source time is past the mark again. The secure time never goes backwards.
 * - Battery: past `batteryLifeMs` after the battery start the clock is invalid for good
 *   (state BATTERY_EXHAUSTED), and offline issuing stops.
 */
import { MS_PER_DAY, MS_PER_SECOND, type Clock } from "../sim/index.ts";
import type { RecordStore, TxOp } from "../flash-store/index.ts";

export const ClockState = { NOT_SET: 0, RUNNING: 1, BATTERY_EXHAUSTED: 2, ROLLBACK: 3 } as const;
export type ClockStateValue = (typeof ClockState)[keyof typeof ClockState];

/** The paper's spec: at most 3 s/day drift, i.e. 34.72 ppm. */
export const MAX_DRIFT_SECONDS_PER_DAY = 3;
export const MAX_DRIFT_PPM = (MAX_DRIFT_SECONDS_PER_DAY * MS_PER_SECOND * 1e6) / MS_PER_DAY;
/** The paper: 3 years or more. Default: 3 years and 30 days. */
export const DEFAULT_BATTERY_LIFE_MS = (3 * 365 + 30) * MS_PER_DAY;
export const MIN_BATTERY_LIFE_MS = 3 * 365 * MS_PER_DAY;
/** Record holding the anchor: critical (two copies). */
export const CLOCK_RECORD_TYPE = 0x02;
export const CLOCK_RECORD_ID = 0;
const ANCHOR_BYTES = 32;
/** Earliest time the bureau may set (2000-01-01) and latest (u32 seconds). */
export const MIN_SET_SECONDS = 946_684_800;
export const MAX_SET_SECONDS = 0xffff_ffff;

/** How records are sealed (the COS encrypts; tests may pass the identity). */
export interface RecordSeal {
  seal(type: number, id: number, plain: Uint8Array): Uint8Array;
  /** The plaintext, or undefined when the record fails authentication. */
  open(type: number, id: number, sealed: Uint8Array): Uint8Array | undefined;
}

export const PLAIN_SEAL: RecordSeal = { seal: (_t, _i, p) => p, open: (_t, _i, s) => s };

export interface SecureClockOptions {
  source: Clock;
  store: RecordStore;
  seal?: RecordSeal;
  /** Oscillator error in ppm (positive runs fast). |drift| <= MAX_DRIFT_PPM unless allowOutOfSpec. */
  driftPpm?: number;
  batteryLifeMs?: number;
  /** Lets a test model a faulty part outside the paper's spec. */
  allowOutOfSpec?: boolean;
}

interface Anchor {
  secureMs: number;
  sourceMs: number;
  batteryStartMs: number;
  highWaterMs: number;
}

export class ClockError extends Error {
  constructor(readonly state: ClockStateValue, message: string) {
    super(message);
    this.name = "ClockError";
  }
}

export class SecureClock {
  private anchor: Anchor | undefined;
  /** Highest source time seen since power-on (RAM). */
  private seenMs = Number.NEGATIVE_INFINITY;
  private lastSecureMs = Number.NEGATIVE_INFINITY;
  readonly driftPpm: number;
  readonly batteryLifeMs: number;
  private readonly seal: RecordSeal;

  private readonly o: SecureClockOptions;
  constructor(options: SecureClockOptions) {
    this.o = { ...options };
    const o = this.o;
    this.driftPpm = o.driftPpm ?? 0;
    this.batteryLifeMs = o.batteryLifeMs ?? DEFAULT_BATTERY_LIFE_MS;
    this.seal = o.seal ?? PLAIN_SEAL;
    if (!Number.isFinite(this.driftPpm)) throw new RangeError("driftPpm must be finite");
    if (!o.allowOutOfSpec && Math.abs(this.driftPpm) > MAX_DRIFT_PPM) throw new RangeError(`drift ${this.driftPpm} ppm is outside the spec (|drift| <= ${MAX_DRIFT_PPM.toFixed(2)} ppm = 3 s/day)`);
    if (!o.allowOutOfSpec && !(this.batteryLifeMs >= MIN_BATTERY_LIFE_MS)) throw new RangeError("battery life must be at least 3 years");
    this.reload();
  }

  /** Switch to a re-mounted store (after a power cut) and re-read the anchor. */
  useStore(store: RecordStore): void {
    this.o.store = store;
    this.reload();
  }

  /** Re-read the anchor from flash (after power-on). */
  reload(): void {
    const raw = this.o.store.get(CLOCK_RECORD_TYPE, CLOCK_RECORD_ID);
    const plain = raw && this.seal.open(CLOCK_RECORD_TYPE, CLOCK_RECORD_ID, raw);
    this.anchor = plain && plain.length === ANCHOR_BYTES ? decodeAnchor(plain) : undefined;
    this.seenMs = Number.NEGATIVE_INFINITY;
    this.lastSecureMs = Number.NEGATIVE_INFINITY;
  }

  get isSet(): boolean {
    return this.anchor !== undefined;
  }

  state(): ClockStateValue {
    const a = this.anchor;
    if (!a) return ClockState.NOT_SET;
    const src = this.o.source.now();
    if (src < Math.max(a.highWaterMs, this.seenMs)) return ClockState.ROLLBACK;
    if (src - a.batteryStartMs > this.batteryLifeMs) return ClockState.BATTERY_EXHAUSTED;
    return ClockState.RUNNING;
  }

  /** Secure time in ms; throws ClockError unless RUNNING. Never goes backwards. */
  nowMs(): number {
    const s = this.state();
    const a = this.anchor;
    if (s !== ClockState.RUNNING || !a) throw new ClockError(s, stateMessage(s));
    const src = this.o.source.now();
    this.seenMs = Math.max(this.seenMs, src);
    const elapsed = src - a.sourceMs;
    const t = a.secureMs + elapsed + Math.round((elapsed * this.driftPpm) / 1e6);
    this.lastSecureMs = Math.max(this.lastSecureMs, t);
    return this.lastSecureMs;
  }

  nowSeconds(): number {
    return Math.floor(this.nowMs() / MS_PER_SECOND);
  }

  /** Days of battery left (0 when exhausted or not set). */
  batteryDaysLeft(): number {
    const a = this.anchor;
    if (!a) return 0;
    return Math.max(0, Math.floor((a.batteryStartMs + this.batteryLifeMs - this.o.source.now()) / MS_PER_DAY));
  }

  /**
   * The transaction op that sets the clock (the bureau, at issuance). The caller commits
   * it (with its other ops) and then calls `adopt`.
   */
  setOp(unixSeconds: number): { op: TxOp; anchor: Uint8Array } {
    if (!Number.isInteger(unixSeconds) || unixSeconds < MIN_SET_SECONDS || unixSeconds > MAX_SET_SECONDS) throw new RangeError(`clock time must be Unix seconds ${MIN_SET_SECONDS}..${MAX_SET_SECONDS}`);
    const src = this.o.source.now();
    const anchor = encodeAnchor({ secureMs: unixSeconds * MS_PER_SECOND, sourceMs: src, batteryStartMs: src, highWaterMs: src });
    return { op: this.putOp(anchor), anchor };
  }

  /**
   * The op recording the current source time as the high-water mark; the COS adds it to
   * its transactions so a power cycle cannot move the clock back. Undefined when unset, or
   * when the mark moved less than `minAdvanceMs` since the persisted one.
   */
  checkpointOp(minAdvanceMs = 0): { op: TxOp; anchor: Uint8Array } | undefined {
    const a = this.anchor;
    if (!a) return undefined;
    const hw = Math.max(a.highWaterMs, this.seenMs, this.o.source.now());
    if (hw - a.highWaterMs < minAdvanceMs || (minAdvanceMs > 0 && hw === a.highWaterMs)) return undefined;
    const anchor = encodeAnchor({ ...a, highWaterMs: hw });
    return { op: this.putOp(anchor), anchor };
  }

  /** After a successful commit of setOp/checkpointOp: make the new anchor current. */
  adopt(anchor: Uint8Array): void {
    this.anchor = decodeAnchor(anchor);
    this.seenMs = Math.max(this.seenMs, this.anchor.highWaterMs);
    this.lastSecureMs = Number.NEGATIVE_INFINITY;
  }

  private putOp(anchor: Uint8Array): TxOp {
    return { kind: "put", type: CLOCK_RECORD_TYPE, id: CLOCK_RECORD_ID, value: this.seal.seal(CLOCK_RECORD_TYPE, CLOCK_RECORD_ID, anchor) };
  }
}

function stateMessage(s: ClockStateValue): string {
  switch (s) {
    case ClockState.NOT_SET: return "secure clock not set (the bureau sets it at issuance)";
    case ClockState.BATTERY_EXHAUSTED: return "secure clock battery exhausted";
    case ClockState.ROLLBACK: return "time source rolled back below the secure clock's high-water mark";
    default: return "secure clock running";
  }
}

function encodeAnchor(a: Anchor): Uint8Array {
  const b = new Uint8Array(ANCHOR_BYTES);
  const v = new DataView(b.buffer);
  [a.secureMs, a.sourceMs, a.batteryStartMs, a.highWaterMs].forEach((x, i) => v.setFloat64(i * 8, x));
  return b;
}

function decodeAnchor(b: Uint8Array): Anchor {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { secureMs: v.getFloat64(0), sourceMs: v.getFloat64(8), batteryStartMs: v.getFloat64(16), highWaterMs: v.getFloat64(24) };
}
