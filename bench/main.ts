/**
 * npm run bench [-- --filter PREFIX]: runs every bench/*.bench.ts module whose metric ids
 * start with PREFIX (all when absent), prints a table and writes bench-results.json.
 *
 * Each module runs in a child process of its own (`--module FILE`), so what one module leaves
 * behind (a heap of memoized devices, warm worker pools, JIT state) does not tax the next
 * one's timing: measured, a full-device mount took 44-61 ms after the other modules in one
 * process and 30-40 ms on its own.
 */
import { fork } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem, hostname } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { speedProbe, type BenchModule, type Metric } from "./harness.ts";

function parseFilter(argv: readonly string[]): string {
  const i = argv.indexOf("--filter");
  if (i === -1) return "";
  const value = argv[i + 1];
  if (value === undefined || value.startsWith("--")) throw new Error("--filter needs a metric id prefix, e.g. --filter flash");
  return value;
}

function selects(filter: string, id: string): boolean {
  return id.startsWith(filter) || filter.startsWith(id);
}

const here = dirname(fileURLToPath(import.meta.url));

async function loadModule(file: string): Promise<BenchModule> {
  return (await import(pathToFileURL(join(here, file)).href)).default as BenchModule;
}

/** The child's side: runs one module and sends its metrics to the parent. */
async function runModule(file: string, filter: string): Promise<void> {
  const module = await loadModule(file);
  const results = await module.run((id) => id.startsWith(filter));
  await new Promise<void>((resolve, reject) => (process.send as NonNullable<typeof process.send>)({ results }, (error: Error | null) => (error ? reject(error) : resolve())));
}

/** Runs `file` in a child process (same node flags and loader); its metrics, or an error naming the module. */
function runInChild(file: string, filter: string): Promise<Record<string, Metric>> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ["--module", file, "--filter", filter], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    let results: Record<string, Metric> | null = null;
    child.on("message", (message) => {
      results = (message as { results: Record<string, Metric> }).results;
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (results && code === 0) resolve(results);
      else reject(new Error(`${file} failed (exit ${code ?? signal}); run it alone: npm run bench -- --filter ${filter || "<prefix>"}`));
    });
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const filter = argv.includes("--filter") ? parseFilter(argv) : "";
  const only = argv.indexOf("--module");
  if (only !== -1) return runModule(argv[only + 1] as string, filter);
  const files = readdirSync(here).filter((f) => f.endsWith(".bench.ts")).sort();
  const metrics: Record<string, Metric> = {};
  /** Per module: the speed probe (harness.ts) just before and just after it, ms. */
  const probes: Record<string, [number, number]> = {};
  for (const file of files) {
    const module = await loadModule(file);
    if (!module.ids.some((id) => selects(filter, id))) continue;
    const before = speedProbe();
    process.stderr.write(`bench: ${file} ... (speed probe ${before.toFixed(1)} ms)\n`);
    const results = await runInChild(file, filter);
    probes[file] = [round1(before), round1(speedProbe())];
    for (const [id, metric] of Object.entries(results)) if (id.startsWith(filter)) metrics[id] = metric;
  }
  if (Object.keys(metrics).length === 0) throw new Error(`no benchmark matches --filter "${filter}"`);
  const rows = Object.entries(metrics).map(([id, m]) => [id, formatValue(m.value), m.unit, m.goal ?? "", m.note ?? ""]);
  const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => (r[c] as string).length), 4));
  for (const r of rows) console.log(r.map((cell, c) => (c < 4 ? cell.padEnd(widths[c] as number) : cell)).join("  "));
  const probeText = Object.entries(probes).map(([file, [before, after]]) => `${file} ${before}/${after}`).join(", ");
  console.log(`\nspeed probe, ms before/after each module (higher = the machine was slower; see harness.ts): ${probeText}`);
  const cpu = cpus()[0]?.model ?? "unknown cpu";
  const report = {
    when: new Date().toISOString(),
    machine: `${hostname()}: ${cpu}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
    metrics,
    probes,
  };
  writeFileSync(join(here, "..", "bench-results.json"), JSON.stringify(report, null, 2) + "\n");
  console.log(`\nwrote bench-results.json (${Object.keys(metrics).length} metrics)`);
}

function round1(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function formatValue(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(3);
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
