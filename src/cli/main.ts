#!/usr/bin/env node
/**
 * ukeysim: the command line. Thin by rule: parse, call into the layers, print.
 * Each command lives in its own file and registers itself on the program here.
 */
import { Command, CommanderError } from "commander";
import { registerCommands } from "./commands.ts";

const program = new Command()
  .name("ukeysim")
  .description("Simulator and hardware-in-the-loop harness for the tax-control smart Ukey")
  .version("0.1.0")
  .showHelpAfterError()
  .exitOverride();

registerCommands(program);

/** Exit codes of every command: 0 ok, 1 a check failed, 2 bad usage or input, 3 crash, 4 replay diverged. */
const EXIT_USAGE = 2;

program.parseAsync(process.argv).catch((error: unknown) => {
  // Help and version exit 0; every other commander error is a usage error.
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
  console.error(`ukeysim: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
});
