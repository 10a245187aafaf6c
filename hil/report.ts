/**
 * Reports of a harness run: JUnit XML for CI, an HTML page a person reads (and a vendor
 * hands in), and the JSON the other two are made from. The trace is written separately.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import junitModule, { type Builder } from "junit-report-builder";

// The package is CommonJS with an ES default export; depending on the loader the default
// import is the builder itself or the module object that holds it.
const junit: Builder = (junitModule as unknown as { default?: Builder }).default ?? (junitModule as unknown as Builder);

export type CaseStatus = "pass" | "fail" | "error" | "skip";

export interface CaseResult {
  suite: string;
  name: string;
  status: CaseStatus;
  durationMs: number;
  /** Why it failed or was skipped, in one line. */
  message?: string;
  /** Longer context: the APDU exchange, the expected and actual state. */
  detail?: string;
  /** Figures a case measured (performance suite), by name. */
  metrics?: Record<string, number>;
}

export interface WearMap {
  eraseCounts: readonly number[];
  badBlocks: readonly number[];
  endurance: number;
}

export interface RunReport {
  tool: string;
  target: string;
  seed: number;
  params: Record<string, unknown>;
  results: CaseResult[];
  /** How to run exactly this again. */
  replay: string;
  wearMap?: WearMap;
  traceFile?: string;
}

export interface ReportFiles {
  json: string;
  junit: string;
  html: string;
}

export function summarize(results: readonly CaseResult[]): Record<CaseStatus, number> {
  const counts: Record<CaseStatus, number> = { pass: 0, fail: 0, error: 0, skip: 0 };
  for (const r of results) counts[r.status]++;
  return counts;
}

export function toJunitXml(report: RunReport): string {
  const builder = junit.newBuilder();
  const suites = new Map<string, ReturnType<typeof builder.testSuite>>();
  for (const r of report.results) {
    let suite = suites.get(r.suite);
    if (!suite) {
      suite = builder.testSuite().name(`${r.suite} @ ${report.target}`);
      suites.set(r.suite, suite);
    }
    const tc = suite.testCase().className(`ukeysim.${r.suite}`).name(r.name).time(r.durationMs / 1000);
    if (r.status === "fail") tc.failure(r.message ?? "failed");
    else if (r.status === "error") tc.error(r.message ?? "error");
    else if (r.status === "skip") tc.skipped();
    if (r.detail) tc.standardOutput(r.detail);
  }
  return builder.build();
}

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string);
}

const WEAR_CELL_PX = 8;
const WEAR_COLUMNS = 64;

/** The flash wear map as an SVG grid: one cell a block, darker = more erases, red = bad. */
export function wearMapSvg(map: WearMap): string {
  const max = Math.max(1, ...map.eraseCounts);
  const bad = new Set(map.badBlocks);
  const rows = Math.ceil(map.eraseCounts.length / WEAR_COLUMNS);
  const cells = map.eraseCounts.map((count, block) => {
    const x = (block % WEAR_COLUMNS) * WEAR_CELL_PX;
    const y = Math.floor(block / WEAR_COLUMNS) * WEAR_CELL_PX;
    const shade = Math.round(235 - (count / max) * 200);
    const fill = bad.has(block) ? "#d62728" : `rgb(${shade},${shade},255)`;
    return `<rect x="${x}" y="${y}" width="${WEAR_CELL_PX - 1}" height="${WEAR_CELL_PX - 1}" fill="${fill}"><title>block ${block}: ${count} erases${bad.has(block) ? " (bad)" : ""}</title></rect>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WEAR_COLUMNS * WEAR_CELL_PX}" height="${rows * WEAR_CELL_PX}">${cells.join("")}</svg>`;
}

export function toHtml(report: RunReport): string {
  const counts = summarize(report.results);
  const verdict = counts.fail + counts.error === 0 ? "PASS" : "FAIL";
  const rows = report.results.map((r) => {
    const metrics = r.metrics ? Object.entries(r.metrics).map(([k, v]) => `${escapeHtml(k)}=${v}`).join(", ") : "";
    return `<tr class="${r.status}"><td>${escapeHtml(r.suite)}</td><td>${escapeHtml(r.name)}</td><td>${r.status.toUpperCase()}</td>` +
      `<td>${r.durationMs.toFixed(1)}</td><td>${escapeHtml(r.message ?? "")}${metrics ? `<br><small>${metrics}</small>` : ""}` +
      `${r.detail ? `<details><summary>detail</summary><pre>${escapeHtml(r.detail)}</pre></details>` : ""}</td></tr>`;
  });
  const eraseCounts = report.wearMap?.eraseCounts ?? [];
  const wear = report.wearMap
    ? `<h2>Flash wear map</h2><p>${eraseCounts.length} blocks, max ${Math.max(0, ...eraseCounts)} erases of ${report.wearMap.endurance}; ` +
      `${report.wearMap.badBlocks.length} bad.</p>${wearMapSvg(report.wearMap)}`
    : "";
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ukeysim ${escapeHtml(report.tool)}: ${verdict}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}tr.fail td,tr.error td{background:#fde0e0}
tr.skip td{color:#888}.verdict{font-size:1.4em;font-weight:bold}pre{white-space:pre-wrap}code{background:#f4f4f4;padding:2px 4px}</style></head><body>
<h1>ukeysim ${escapeHtml(report.tool)} report</h1>
<p class="verdict">${verdict}: ${counts.pass} passed, ${counts.fail} failed, ${counts.error} errors, ${counts.skip} skipped</p>
<p>Target <code>${escapeHtml(report.target)}</code>, seed <code>${report.seed}</code>. Replay: <code>${escapeHtml(report.replay)}</code></p>
<p>Parameters: <code>${escapeHtml(JSON.stringify(report.params))}</code>${report.traceFile ? `; trace: <code>${escapeHtml(report.traceFile)}</code>` : ""}</p>
<table><thead><tr><th>suite</th><th>case</th><th>result</th><th>ms</th><th>message</th></tr></thead><tbody>
${rows.join("\n")}
</tbody></table>
${wear}
</body></html>
`;
}

/** Writes report.json, junit.xml and report.html into `dir`; returns their paths. */
export function writeReports(report: RunReport, dir: string): ReportFiles {
  mkdirSync(dir, { recursive: true });
  const files = { json: join(dir, "report.json"), junit: join(dir, "junit.xml"), html: join(dir, "report.html") };
  writeFileSync(files.json, JSON.stringify(report, null, 2) + "\n");
  writeFileSync(files.junit, toJunitXml(report));
  writeFileSync(files.html, toHtml(report));
  return files;
}
