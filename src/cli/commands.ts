import type { Command } from "commander";

/** One line per command file; keep it sorted. */
export function registerCommands(program: Command): void {
  void program;
}
