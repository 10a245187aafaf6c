import type { Command } from "commander";
import { registerServe } from "./serve.ts";

/** One line per command file; keep it sorted. */
export function registerCommands(program: Command): void {
  registerServe(program);
}
