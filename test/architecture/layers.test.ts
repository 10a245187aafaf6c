/**
 * The layer rule of DESIGN.md, checked on the source: each module imports only modules
 * below it (or ground), and only through their index.ts.
 */
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, dirname } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");
const GROUND = new Set(["src/sim", "src/crypto", "src/tax"]);
/** Higher rank may import lower rank; equal ranks may not import each other (except ground). */
const RANK: Record<string, number> = {
  "src/sim": 0, "src/crypto": 0, "src/tax": 0,
  "src/flash-store": 1, "src/secure-clock": 2, "src/cos": 3, "src/transport": 4,
  "src/host": 5, "src/bureau": 5, hil: 6, "src/cli": 7,
};
const MODULES = Object.keys(RANK);

function moduleOf(file: string): string | undefined {
  const rel = relative(ROOT, file).split("\\").join("/");
  return MODULES.find((m) => rel === m || rel.startsWith(m + "/"));
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (p.endsWith(".ts") && !p.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

describe("layers", () => {
  const files = [...sourceFiles(join(ROOT, "src")), ...sourceFiles(join(ROOT, "hil"))];
  const violations: string[] = [];
  for (const file of files) {
    const from = moduleOf(file);
    if (!from) continue;
    const text = readFileSync(file, "utf8");
    for (const match of text.matchAll(IMPORT)) {
      const spec = match[1] ?? match[2];
      if (!spec || !spec.startsWith(".")) continue;
      const target = resolve(dirname(file), spec);
      const to = moduleOf(target);
      if (!to || to === from) continue;
      const where = `${relative(ROOT, file)} -> ${spec}`;
      if (relative(ROOT, target).split("\\").join("/") !== `${to}/index.ts`) violations.push(`${where}: reach ${to} only through its index.ts`);
      const bothGround = GROUND.has(from) && GROUND.has(to);
      if (!bothGround && (RANK[to] as number) >= (RANK[from] as number)) violations.push(`${where}: ${from} may not import ${to}`);
    }
  }
  it("has source files to check", () => expect(files.length).toBeGreaterThan(5));
  it("imports only downwards and through index.ts", () => expect(violations).toEqual([]));
  it("keeps randomness and wall-clock time out of every layer below src/cli", () => {
    const offenders = files
      .filter((f) => moduleOf(f) !== "src/cli")
      .filter((f) => /Math\.random|Date\.now\(|new Date\(\)/.test(readFileSync(f, "utf8").replace(/\/\/.*|\/\*[\s\S]*?\*\//g, "")))
      .map((f) => relative(ROOT, f));
    expect(offenders).toEqual([]);
  });
});
