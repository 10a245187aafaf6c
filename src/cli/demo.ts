/**
 * ukeysim demo [--seed N] [--invoices N] [--out DIR]: the whole offline invoicing story on
 * embedded defaults (see hil/demo.ts). `npm start` runs it.
 */
import { InvalidArgumentError, type Command } from "commander";
import { runDemo, DEFAULT_DEMO_INVOICES } from "../../hil/index.ts";
import { parseSeed } from "../sim/index.ts";

const DEFAULT_SEED = 1;
const DEFAULT_OUT = "out/demo";

function seedOption(text: string): number {
  try {
    return parseSeed(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function countOption(text: string): number {
  if (!/^\d{1,4}$/.test(text)) throw new InvalidArgumentError(`expected a whole number, got "${text}"`);
  return Number(text);
}

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("run the offline invoicing demonstration: issue, power cut, void, red, upload, diagnose")
    .option("--seed <n>", "seed of the run", seedOption, DEFAULT_SEED)
    .option("--invoices <n>", "offline invoices allowed before the Ukey refuses (2..200)", countOption, DEFAULT_DEMO_INVOICES)
    .option("--out <dir>", "where the image, trace, report and invoices go", DEFAULT_OUT)
    .action(async (o: { seed: number; invoices: number; out: string }) => {
      const result = await runDemo({ seed: o.seed, invoices: o.invoices, outDir: o.out, wallClock: { now: () => Date.now() }, log: (line) => console.log(line) });
      const passed = result.steps.filter((s) => s.status === "pass").length;
      console.log(`\n== summary: ${result.ok ? "PASS" : "FAIL"} (${passed}/${result.steps.length} steps)`);
      console.log(`   report:    ${result.files.html} (also ${result.files.junit}, ${result.files.json})`);
      console.log(`   trace:     ${result.files.trace}`);
      console.log(`   invoices:  ${result.files.invoicesDir}/ (printable HTML with tax control code and QR)`);
      console.log(`   Ukey image: ${result.files.image} (inspect it: ukeysim inspect ${result.files.image})`);
      console.log(`   replay:    ${result.replay}`);
      if (!result.ok) process.exitCode = 1;
    });
}
