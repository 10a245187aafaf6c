import { describe, expect, it } from "vitest";
import { Rng, parseSeed, VirtualClock } from "../../src/sim/index.ts";

describe("Rng", () => {
  it("replays the same stream from the same seed, and differs across seeds", () => {
    const a = new Rng(7), b = new Rng(7), c = new Rng(8);
    const xs = Array.from({ length: 16 }, () => a.nextU32());
    expect(Array.from({ length: 16 }, () => b.nextU32())).toEqual(xs);
    expect(Array.from({ length: 16 }, () => c.nextU32())).not.toEqual(xs);
  });
  it("forks named streams independent of later draws on the parent", () => {
    const a = new Rng(1).fork("flash").nextU32();
    const b = new Rng(1).fork("flash").nextU32();
    const c = new Rng(1).fork("cos").nextU32();
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });
  it("draws integers in range, roughly uniformly", () => {
    const rng = new Rng(3);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 10_000; i++) counts[rng.int(10)]++;
    for (const n of counts) expect(n).toBeGreaterThan(850);
    for (let i = 0; i < 1000; i++) {
      const v = rng.range(-3, 3);
      expect(v).toBeGreaterThanOrEqual(-3);
      expect(v).toBeLessThanOrEqual(3);
    }
  });
  it("parses seeds strictly", () => {
    expect(parseSeed("123")).toBe(123);
    expect(() => parseSeed("-1")).toThrow(/seed/);
    expect(() => parseSeed("1e3")).toThrow(/seed/);
  });
});

describe("VirtualClock", () => {
  it("moves only when told, and refuses nonsense steps", () => {
    const clock = new VirtualClock(1000);
    expect(clock.now()).toBe(1000);
    clock.advance(500);
    expect(clock.now()).toBe(1500);
    expect(() => clock.advance(-1)).toThrow();
    clock.set(10);
    expect(clock.now()).toBe(10);
  });
});
