import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { LAYOUTS } from "../../src/tax/index.ts";
import { RT } from "../../src/cos/index.ts";
import { CLOCK_RECORD_TYPE } from "../../src/secure-clock/index.ts";
import { markdownTables, tableWithHeader } from "../support/markdown.ts";

const doc = readFileSync(new URL("../../docs/storage-layout.md", import.meta.url), "utf8");
const tables = markdownTables(doc);

describe("docs/storage-layout.md agrees with the code", () => {
  const fieldTables = tables.filter((t) => t.header[0] === "Offset");
  it("has one field table per layout, in order, with offsets, lengths, encodings and meanings", () => {
    expect(fieldTables).toHaveLength(LAYOUTS.length);
    LAYOUTS.forEach((l, i) => {
      expect(fieldTables[i]!.rows).toEqual(l.fields.map((f) => [String(f.offset), f.name, String(f.length), f.encoding, f.meaning]));
    });
  });
  it("states location, total length and access rules of each layout", () => {
    for (const l of LAYOUTS) {
      const at = doc.indexOf(`(\`${l.id}\`)`);
      expect(at, l.id).toBeGreaterThan(0);
      const section = doc.slice(at, doc.indexOf("| Offset", at));
      expect(section).toContain(`- Location: ${l.location}`);
      expect(section).toContain(`- Total length: ${l.records} x ${l.recordLength} = ${l.records * l.recordLength} bytes`);
      expect(section).toContain(`- Read: ${l.read}`);
      expect(section).toContain(`- Write: ${l.write}`);
    }
  });
  it("the invoice-type table is the paper's: 10 records x 37 bytes, PIN to read, PIN + ciphertext + MAC to write", () => {
    expect(doc).toContain("- Total length: 10 x 37 = 370 bytes");
    expect(doc).toMatch(/Read: CA user PIN/);
    expect(doc).toMatch(/Write: CA user PIN \+ ciphertext \+ MAC/);
  });
  it("lists every record type the COS uses", () => {
    const t = tableWithHeader(tables, "Type", "Record");
    const code = { ...RT, CLOCK: CLOCK_RECORD_TYPE } as Record<string, number>;
    const listed = Object.fromEntries(t.rows.map((r) => [r[1] as string, parseInt(r[0] as string, 16)]));
    expect(listed).toEqual(code);
    for (const r of t.rows) expect(r[2]).toBe(parseInt(r[0] as string, 16) < 0x40 ? "yes" : "no");
  });
});
