/**
 * npm run bench [-- --filter PREFIX]: runs every bench/*.bench.ts module whose metric ids
 * start with PREFIX (all when absent), prints a table and writes bench-results.json.
 */
import { readdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem, hostname } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BenchModule, Metric } from "./harness.ts";

function parseFilter(argv: readonly string[]): string {
  const i = argv.indexOf("--filter");
  if (i === -1) return "";
  const value = argv[i + 1];
  if (!value || value.startsWith("--")) throw new Error("--filter needs a metric id prefix, e.g. --filter flash");
  return value;
}

function selects(filter: string, id: string): boolean {
  return id.startsWith(filter) || filter.startsWith(id);
}

async function main(): Promise<void> {
  const filter = parseFilter(process.argv.slice(2));
  const here = dirname(fileURLToPath(import.meta.url));
  const files = readdirSync(here).filter((f) => f.endsWith(".bench.ts")).sort();
  const metrics: Record<string, Metric> = {};
  for (const file of files) {
    const module = (await import(pathToFileURL(join(here, file)).href)).default as BenchModule;
    if (!module.ids.some((id) => selects(filter, id))) continue;
    process.stderr.write(`bench: ${file} ...\n`);
    const results = await module.run((id) => id.startsWith(filter));
    for (const [id, metric] of Object.entries(results)) if (id.startsWith(filter)) metrics[id] = metric;
  }
  if (Object.keys(metrics).length === 0) throw new Error(`no benchmark matches --filter "${filter}"`);
  const rows = Object.entries(metrics).map(([id, m]) => [id, formatValue(m.value), m.unit, m.goal ?? "", m.note ?? ""]);
  const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => (r[c] as string).length), 4));
  for (const r of rows) console.log(r.map((cell, c) => (c < 4 ? cell.padEnd(widths[c] as number) : cell)).join("  "));
  const cpu = cpus()[0]?.model ?? "unknown cpu";
  const report = {
    when: new Date().toISOString(),
    machine: `${hostname()}: ${cpu}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
    metrics,
  };
  writeFileSync(join(here, "..", "bench-results.json"), JSON.stringify(report, null, 2) + "\n");
  console.log(`\nwrote bench-results.json (${Object.keys(metrics).length} metrics)`);
}

function formatValue(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(3);
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
