/** The demo (npm start) end to end: every step judged, and the files it promises exist. */
import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDemo } from "../../hil/index.ts";
import { parseTrace } from "../../hil/trace-file.ts";

describe("demo", () => {
  it("runs the whole offline story and writes report, trace, invoices and image", async () => {
    const outDir = mkdtempSync(join(tmpdir(), "ukeysim-demo-"));
    const lines: string[] = [];
    const result = await runDemo({ seed: 3, invoices: 4, outDir, wallClock: { now: () => Date.now() }, log: (l) => lines.push(l) });
    expect(result.steps.filter((s) => s.status !== "pass").map((s) => `${s.name}: ${s.message}`)).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.steps.map((s) => s.name)).toContain("issue up to the offline count limit (4) and see the refusal");
    expect(lines.join("\n")).toMatch(/TYUKEY_DEVICE_OFFLINE_COUNT/);
    expect(lines.join("\n")).toMatch(/TLS interception/);
    for (const f of [result.files.html, result.files.junit, result.files.json, result.files.trace, result.files.image]) expect(existsSync(f)).toBe(true);
    const invoices = readdirSync(result.files.invoicesDir);
    expect(invoices.length).toBeGreaterThanOrEqual(4);
    expect(readFileSync(join(result.files.invoicesDir, invoices[0] as string), "utf8")).toMatch(/<svg|data:image/);
    const trace = parseTrace(readFileSync(result.files.trace, "utf8"));
    expect(trace.filter((e) => e.kind === "apdu").length).toBeGreaterThan(20);
    expect(trace.at(-1)).toMatchObject({ kind: "end", ok: true });
    expect(readFileSync(result.files.html, "utf8")).toContain("Flash wear map");
  });

  it("refuses an out-of-range invoice count before touching anything", async () => {
    const outDir = join(mkdtempSync(join(tmpdir(), "ukeysim-demo-")), "never");
    await expect(runDemo({ seed: 1, invoices: 1, outDir, wallClock: { now: () => Date.now() }, log: () => {} })).rejects.toThrow(/--invoices/);
    expect(existsSync(outDir)).toBe(false);
  });
});
