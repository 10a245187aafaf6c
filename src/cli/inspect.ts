/** ukeysim inspect IMAGE [--json]: what a NAND image holds, without its key and never its payloads. */
import type { Command } from "commander";
import { formatInspectReport, inspectChip, openImage } from "../flash-store/index.ts";

export function registerInspect(program: Command): void {
  program
    .command("inspect")
    .description("show a flash image's geometry, wear, bad blocks, space and record counts (never payloads or secrets)")
    .argument("<image>", "image file written by the simulator")
    .option("--json", "print JSON instead of text")
    .action((image: string, options: { json?: boolean }) => {
      const chip = openImage(image);
      try {
        const report = inspectChip(chip);
        console.log(options.json ? JSON.stringify(report, null, 2) : formatInspectReport(report));
      } finally {
        chip.close();
      }
    });
}
