import type { Command } from "commander";
import { registerApdu } from "./apdu.ts";
import { registerBureau } from "./bureau.ts";
import { registerFlashDemo } from "./flash-demo.ts";
import { registerInspect } from "./inspect.ts";
import { registerPersonalize } from "./personalize.ts";

/**
 * Every command of the CLI. One import and one entry per command file, each on its own
 * line, so parallel branches merge cleanly (.gitattributes merges this file as a union).
 */
const COMMANDS: readonly ((program: Command) => void)[] = [
  registerApdu,
  registerBureau,
  registerFlashDemo,
  registerInspect,
  registerPersonalize,
];

export function registerCommands(program: Command): void {
  for (const register of COMMANDS) register(program);
}
