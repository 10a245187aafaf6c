/**
 * docs/flash-format.md and docs/flash-contract.md against the code: every table row
 * `| \`NAME\` | number | ...` must name an exported constant with that value, and every
 * layout constant must be documented.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as fileImage from "../../src/flash-store/file-image.ts";
import * as geometry from "../../src/flash-store/geometry.ts";
import * as layout from "../../src/flash-store/layout.ts";
import * as media from "../../src/flash-store/media.ts";
import * as nand from "../../src/flash-store/nand.ts";
import * as store from "../../src/flash-store/store.ts";
import * as api from "../../src/flash-store/api.ts";

const ROOT = join(import.meta.dirname, "../..");
const exported: Record<string, unknown> = { ...fileImage, ...geometry, ...layout, ...media, ...nand, ...store, ...api };
const ROW = /^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|\s*(0x[0-9a-fA-F]+|\d+)\s*\|/;

function rows(doc: string): [string, number][] {
  return readFileSync(join(ROOT, "docs", doc), "utf8")
    .split("\n")
    .map((line) => ROW.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1] as string, Number(m[2])]);
}

describe("flash docs match the code", () => {
  for (const doc of ["flash-format.md", "flash-contract.md"]) {
    it(`${doc}: every documented constant has the documented value`, () => {
      const documented = rows(doc);
      expect(documented.length).toBeGreaterThan(doc === "flash-format.md" ? 60 : 1);
      const wrong = documented.filter(([name, value]) => exported[name] !== value).map(([name, value]) => `${name}: doc ${value}, code ${String(exported[name])}`);
      expect(wrong).toEqual([]);
    });
  }

  it("every on-flash layout constant is documented in flash-format.md", () => {
    const documented = new Set(rows("flash-format.md").map(([n]) => n));
    const layoutNames = Object.keys(layout).filter((n) => /^(PH_|BH_|IT_|SE_|ITEM_|FLAG_|PAGE_KIND_)/.test(n) && typeof (layout as Record<string, unknown>)[n] === "number");
    const imageNames = Object.keys(fileImage).filter((n) => /^(IH_|IMAGE_)/.test(n) && typeof (fileImage as Record<string, unknown>)[n] === "number");
    const missing = [...layoutNames, ...imageNames].filter((n) => !documented.has(n));
    expect(missing).toEqual([]);
  });
});
