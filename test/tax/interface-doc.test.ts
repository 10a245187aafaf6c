import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { GENERAL_COMMANDS, hexSw, STATUS_WORDS, TAX_ERRORS, TAX_FUNCTIONS } from "../../src/tax/index.ts";
import { markdownTables, tableWithHeader } from "../support/markdown.ts";

const doc = readFileSync(new URL("../../docs/interface.md", import.meta.url), "utf8");
const tables = markdownTables(doc);
const h2 = (n: number) => n.toString(16).toUpperCase().padStart(2, "0");

describe("docs/interface.md agrees with src/tax", () => {
  it("lists the 16 tax-control functions with names, INS, CLA, P1P2, access, I/O and errors", () => {
    const t = tableWithHeader(tables, "#", "Function");
    expect(t.rows.map((r) => [Number(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]])).toEqual(
      TAX_FUNCTIONS.map((f) => [f.index, f.cName, h2(f.ins), h2(f.cla), f.p1p2, f.access, f.input, f.output, f.errors.join(", ")]),
    );
  });
  it("lists the general and issuer commands", () => {
    const t = tableWithHeader(tables, "Command");
    expect(t.rows.map((r) => r.slice(0, 8))).toEqual(GENERAL_COMMANDS.map((c) => [c.name, h2(c.cla), h2(c.ins), c.p1p2, c.access, c.input, c.output, c.errors.join(", ")]));
  });
  it("lists the 27 error codes with their status words", () => {
    const t = tableWithHeader(tables, "n", "Code");
    expect(t.rows.map((r) => [Number(r[0]), parseInt(r[1] as string, 16), r[2], r[3], r[4]])).toEqual(
      TAX_ERRORS.map((e) => [e.n, e.code, e.name, e.sw === null ? "-" : hexSw(e.sw), e.meaning]),
    );
  });
  it("lists the status words with their meanings", () => {
    const t = tableWithHeader(tables, "SW", "Meaning");
    expect(t.rows.map((r) => r[1])).toEqual(STATUS_WORDS.map((s) => s.meaning));
    expect(t.rows.length).toBe(STATUS_WORDS.length);
  });
});
