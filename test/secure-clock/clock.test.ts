import { describe, expect, it } from "vitest";
import { ModelStore } from "../../src/flash-store/index.ts";
import { VirtualClock, MS_PER_DAY } from "../../src/sim/index.ts";
import { ClockError, ClockState, SecureClock, MAX_DRIFT_PPM, DEFAULT_BATTERY_LIFE_MS } from "../../src/secure-clock/index.ts";

const T0 = 1_767_225_600; // 2026-01-01T00:00:00Z

function setUp(driftPpm = 0, opts: { allowOutOfSpec?: boolean; batteryLifeMs?: number } = {}) {
  const source = new VirtualClock(5_000_000);
  const store = new ModelStore();
  const make = () => new SecureClock({ source, store, driftPpm, ...opts });
  const clock = make();
  const { op, anchor } = clock.setOp(T0);
  store.commit([op]);
  clock.adopt(anchor);
  return { source, store, clock, make };
}

describe("secure clock", () => {
  it("is not set until the bureau sets it, and refuses to tell time before", () => {
    const c = new SecureClock({ source: new VirtualClock(), store: new ModelStore() });
    expect(c.state()).toBe(ClockState.NOT_SET);
    expect(() => c.nowMs()).toThrow(ClockError);
  });
  it("runs from the source with the configured drift, within 3 s/day at the spec limit", () => {
    const { source, clock } = setUp(MAX_DRIFT_PPM);
    source.advance(MS_PER_DAY);
    expect(clock.nowMs() - (T0 * 1000 + MS_PER_DAY)).toBe(3000);
    const slow = setUp(-20);
    slow.source.advance(MS_PER_DAY);
    expect(slow.clock.nowSeconds()).toBe(T0 + 86_400 - 2); // -1.728 s, floored
  });
  it("refuses a drift outside the spec unless a faulty part is modelled", () => {
    expect(() => setUp(MAX_DRIFT_PPM + 1)).toThrow(/spec/);
    expect(() => setUp(100, { allowOutOfSpec: true })).not.toThrow();
  });
  it("survives restart: the anchor is persisted", () => {
    const { source, make } = setUp();
    source.advance(10_000);
    expect(make().nowSeconds()).toBe(T0 + 10);
  });
  it("detects a source rolled back below the checkpointed high-water mark, also across restart", () => {
    const { source, store, clock, make } = setUp();
    source.advance(MS_PER_DAY);
    const cp = clock.checkpointOp()!;
    store.commit([cp.op]);
    clock.adopt(cp.anchor);
    source.set(source.now() - 60_000);
    expect(clock.state()).toBe(ClockState.ROLLBACK);
    expect(() => clock.nowMs()).toThrow(/rolled back/);
    expect(make().state()).toBe(ClockState.ROLLBACK); // after power cycle too
    source.advance(120_000); // past the mark again: running, and never behind
    expect(clock.nowSeconds()).toBe(T0 + 86_400 + 60);
  });
  it("detects rollback within a session without a checkpoint (RAM high-water)", () => {
    const { source, clock } = setUp();
    source.advance(5000);
    clock.nowMs();
    source.set(source.now() - 1);
    expect(clock.state()).toBe(ClockState.ROLLBACK);
  });
  it("goes invalid for good when the battery is exhausted (>= 3 years)", () => {
    const { source, clock } = setUp();
    expect(DEFAULT_BATTERY_LIFE_MS).toBeGreaterThanOrEqual(3 * 365 * MS_PER_DAY);
    source.advance(DEFAULT_BATTERY_LIFE_MS);
    expect(clock.state()).toBe(ClockState.RUNNING);
    expect(clock.batteryDaysLeft()).toBe(0);
    source.advance(1);
    expect(clock.state()).toBe(ClockState.BATTERY_EXHAUSTED);
    expect(() => clock.nowMs()).toThrow(/battery/);
    expect(() => setUp(0, { batteryLifeMs: MS_PER_DAY })).toThrow(/3 years/);
  });
  it("rejects impossible set times", () => {
    const c = new SecureClock({ source: new VirtualClock(), store: new ModelStore() });
    for (const bad of [-1, 0, 1.5, 2 ** 32, Number.NaN]) expect(() => c.setOp(bad)).toThrow(RangeError);
  });
});
