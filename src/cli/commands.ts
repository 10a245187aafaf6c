import type { Command } from "commander";
import { registerApdu } from "./apdu.ts";
import { registerBureau } from "./bureau.ts";
import { registerDemo } from "./demo.ts";
import { registerDiagnose } from "./diagnose.ts";
import { registerFlashCampaign } from "./flash-campaign.ts";
import { registerFlashDemo } from "./flash-demo.ts";
import { registerHil } from "./hil.ts";
import { registerInspect } from "./inspect.ts";
import { registerIssuer } from "./issuer.ts";
import { registerPersonalize } from "./personalize.ts";
import { registerServe } from "./serve.ts";

/**
 * Every command of the CLI. One import and one entry per command file, each on its own
 * line, so parallel branches merge cleanly (.gitattributes merges this file as a union).
 */
const COMMANDS: readonly ((program: Command) => void)[] = [
  registerApdu,
  registerBureau,
  registerDemo,
  registerDiagnose,
  registerFlashCampaign,
  registerFlashDemo,
  registerHil,
  registerInspect,
  registerIssuer,
  registerPersonalize,
  registerServe,
];

export function registerCommands(program: Command): void {
  for (const register of COMMANDS) register(program);
}
