import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toHtml, toJunitXml, writeReports, summarize, type RunReport } from "../../hil/report.ts";
import { parseShard, inShard } from "../../hil/shard.ts";

const report: RunReport = {
  tool: "hil run",
  target: "sim:memory",
  seed: 7,
  params: { suites: ["conformance"] },
  replay: "ukeysim hil run --target sim:memory --seed 7",
  results: [
    { suite: "conformance", name: "select <app>", status: "pass", durationMs: 1.5 },
    { suite: "conformance", name: "verify PIN", status: "fail", durationMs: 2, message: "expected 9000, got 63C2", detail: "00200000..." },
    { suite: "tax-rules", name: "offline window", status: "skip", durationMs: 0, message: "no clock control" },
  ],
  wearMap: { eraseCounts: [1, 5, 9, 0], badBlocks: [2], endurance: 100_000 },
};

describe("reports", () => {
  it("counts outcomes", () => expect(summarize(report.results)).toEqual({ pass: 1, fail: 1, error: 0, skip: 1 }));
  it("writes JUnit XML with failures and skips", () => {
    const xml = toJunitXml(report);
    expect(xml).toContain('<failure message="expected 9000, got 63C2"');
    expect(xml).toContain("<skipped");
    expect(xml).toMatch(/tests="2"[^>]*name="conformance @ sim:memory"|name="conformance @ sim:memory"[^>]*tests="2"/);
  });
  it("writes an HTML verdict, escapes text and draws the wear map", () => {
    const html = toHtml({ ...report, results: [...report.results, { suite: "x", name: "<script>", status: "pass", durationMs: 0 }] });
    expect(html).toContain("FAIL: 2 passed, 1 failed");
    expect(html).toContain("&lt;script&gt;");
    expect(html).not.toContain("<script>");
    expect(html.match(/<rect /g)).toHaveLength(4);
    expect(html).toContain("#d62728");
  });
  it("writes the three files", () => {
    const dir = mkdtempSync(join(tmpdir(), "ukeysim-report-"));
    const files = writeReports(report, dir);
    expect(JSON.parse(readFileSync(files.json, "utf8")).seed).toBe(7);
    expect(readFileSync(files.junit, "utf8")).toContain("<testsuites");
  });
});

describe("shards", () => {
  it("parses i/n strictly", () => {
    expect(parseShard("2/8")).toEqual({ index: 2, count: 8 });
    for (const bad of ["0/2", "3/2", "x", "1/0", "1/"]) expect(() => parseShard(bad)).toThrow(/shard/);
  });
  it("partitions items: every item in exactly one shard", () => {
    const n = 5;
    for (let item = 0; item < 100; item++) {
      const owners = Array.from({ length: n }, (_, i) => inShard(item, { index: i + 1, count: n })).filter(Boolean);
      expect(owners).toHaveLength(1);
    }
  });
});
