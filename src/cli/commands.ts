import type { Command } from "commander";
import { registerBureau } from "./bureau.ts";
import { registerFlashDemo } from "./flash-demo.ts";
import { registerInspect } from "./inspect.ts";

/**
 * Every command of the CLI. One import and one entry per command file, each on its own
 * line, so parallel branches merge cleanly (.gitattributes merges this file as a union).
 */
const COMMANDS: readonly ((program: Command) => void)[] = [
  registerBureau,
  registerFlashDemo,
  registerInspect,
];

export function registerCommands(program: Command): void {
  for (const register of COMMANDS) register(program);
}
