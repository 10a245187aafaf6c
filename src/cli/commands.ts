import type { Command } from "commander";
import { registerBureau } from "./bureau.ts";

/** One line per command file; keep it sorted. */
export function registerCommands(program: Command): void {
  registerBureau(program);
}
