import type { Command } from "commander";
import { registerFlashCampaign } from "./flash-campaign.ts";
import { registerFlashDemo } from "./flash-demo.ts";
import { registerInspect } from "./inspect.ts";

/** One line per command file; keep it sorted. */
export function registerCommands(program: Command): void {
  registerFlashCampaign(program);
  registerFlashDemo(program);
  registerInspect(program);
}
