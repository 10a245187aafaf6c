/** `ukeysim flash-campaign --jobs N`: the same report as one thread (bar the timing), and bad values refused. */
import { Command } from "commander";
import { describe, expect, it, vi } from "vitest";
import { registerFlashCampaign } from "../../src/cli/flash-campaign.ts";

async function run(args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerFlashCampaign(program);
  const lines: string[] = [];
  const spy = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void lines.push(a.join(" ")));
  try {
    await program.parseAsync(["node", "ukeysim", "flash-campaign", ...args]);
  } finally {
    spy.mockRestore();
  }
  // the timing differs from run to run; the rest must not
  return lines.join("\n").replace(/in [\d.]+ s \(\d+\/s( on \d+ threads)?\)/, "in T");
}

describe("flash-campaign --jobs", () => {
  it("prints the one-thread report on two threads", async () => {
    const one = await run(["--seed", "4", "--txs", "30", "--jobs", "1"]);
    expect(one).toMatch(/\d+ cut points in T, 0 failures/);
    expect(await run(["--seed", "4", "--txs", "30", "--jobs", "2"])).toBe(one);
  }, 60_000);

  it("refuses a job count out of range", async () => {
    await expect(run(["--txs", "3", "--jobs", "0"])).rejects.toThrow(/--jobs must be an integer/);
    await expect(run(["--txs", "3", "--jobs", "x"])).rejects.toThrow(/--jobs must be an integer/);
  });
});
