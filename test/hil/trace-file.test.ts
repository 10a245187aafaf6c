import { describe, expect, it } from "vitest";
import { compareTraces, parseTrace, TraceFormatError } from "../../hil/trace-file.ts";
import { MemoryTrace } from "../../src/sim/index.ts";

function sample(responseTail: string): string {
  const t = new MemoryTrace();
  t.emit({ kind: "run", seed: 1, tool: "test", params: {} });
  t.emit({ kind: "power", seq: 1, state: "on", atr: "3b00" });
  t.emit({ kind: "apdu", seq: 2, command: "00a4040000", response: "9000" });
  t.emit({ kind: "apdu", seq: 3, command: "0020000000", response: responseTail });
  t.emit({ kind: "end", seq: 4, ok: true });
  return t.toJsonLines();
}

describe("trace files", () => {
  it("round-trips and compares identical", () => {
    const a = parseTrace(sample("9000"));
    expect(compareTraces(a, parseTrace(sample("9000")))).toEqual({ identical: true, events: 5 });
  });
  it("finds the first divergence with context", () => {
    const result = compareTraces(parseTrace(sample("9000")), parseTrace(sample("63c2")));
    expect(result.identical).toBe(false);
    if (result.identical) return;
    expect(result.index).toBe(3);
    expect(result.context).toHaveLength(3);
    expect(result.actual).toMatchObject({ response: "63c2" });
  });
  it("reports a shorter trace as a divergence at its end", () => {
    const full = parseTrace(sample("9000"));
    const result = compareTraces(full, full.slice(0, 3));
    expect(result).toMatchObject({ identical: false, index: 3 });
  });
  it("names the bad line of a malformed trace", () => {
    expect(() => parseTrace('{"kind":"run","seed":1,"tool":"x","params":{}}\nnot json\n')).toThrow(/line 2: not JSON/);
    expect(() => parseTrace('{"kind":"apdu"}\n')).toThrow(/starts with a "run"/);
    expect(() => parseTrace('{"kind":"bogus"}\n')).toThrow(TraceFormatError);
    expect(() => parseTrace("")).toThrow(/empty/);
  });
});
