/** docs/trace-format.md documents every event kind and every field real traces carry. */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { runHil, cutTrace, scenarioByName } from "../../hil/index.ts";
import { markdownTables, tableWithHeader } from "../support/markdown.ts";

const DOC = readFileSync(resolve(import.meta.dirname, "../../docs/trace-format.md"), "utf8");
const KINDS = ["run", "apdu", "power", "flash", "fault", "check", "note", "end"];

describe("docs/trace-format.md", () => {
  const table = tableWithHeader(markdownTables(DOC), "kind", "field");
  const documented = new Set(table.rows.map((r) => `${r[0]}.${r[1]}`));

  it("documents every event kind with its kind field", () => {
    for (const k of KINDS) expect(documented.has(`${k}.kind`), k).toBe(true);
  });

  it("documents every field of real traces (hil run with a power cut, and a campaign cut point)", async () => {
    const { trace } = await runHil({ target: "sim:memory", suites: ["power-cut"], seed: 2, quick: true });
    const cut = await cutTrace(2, scenarioByName("void"), 0, undefined);
    const events = [...trace.events, ...cut.events];
    const seen = new Set<string>();
    for (const e of events) for (const f of Object.keys(e)) seen.add(`${e.kind}.${f}`);
    for (const f of seen) expect(documented.has(f), `${f} is not in docs/trace-format.md`).toBe(true);
    for (const k of ["run", "apdu", "power", "flash", "fault", "check", "end"]) expect([...seen].some((f) => f.startsWith(`${k}.`)), `no ${k} event in the sample traces`).toBe(true);
  });
});
