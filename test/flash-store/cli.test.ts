import { Command } from "commander";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { registerFlashCampaign } from "../../src/cli/flash-campaign.ts";
import { registerFlashDemo } from "../../src/cli/flash-demo.ts";
import { registerInspect } from "../../src/cli/inspect.ts";
import { createImage, FlashStore } from "../../src/flash-store/index.ts";
import { KEY, TINY } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "ukeysim-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(register: (p: Command) => void, args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  register(program);
  const lines: string[] = [];
  const spy = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void lines.push(a.join(" ")));
  try {
    await program.parseAsync(["node", "ukeysim", ...args]);
  } finally {
    spy.mockRestore();
  }
  return lines.join("\n");
}

describe("cli", () => {
  it("inspect prints counts and wear but never payloads or the secure area", async () => {
    const path = join(dir, "i.img");
    const chip = createImage(path, { geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    store.commit([{ kind: "put", type: 0x50, id: 1, value: new TextEncoder().encode("SECRET-PAYLOAD") }, { kind: "put", type: 0x10, id: 1, value: new Uint8Array(8) }]);
    chip.writeSecureArea(0, new TextEncoder().encode("DEVICE-SECRET"));
    chip.close();
    const text = await run(registerInspect, ["inspect", path]);
    expect(text).toMatch(/records\s+2/);
    expect(text).toMatch(/type 0x50\s+1/);
    expect(text).not.toMatch(/SECRET/);
    const json = JSON.parse(await run(registerInspect, ["inspect", path, "--json"]));
    expect(json.store.records).toBe(2);
    expect(json.geometry).toEqual(TINY);
    expect(JSON.stringify(json)).not.toMatch(/SECRET/);
  });

  it("flash-campaign runs a small campaign and prints how to replay it", async () => {
    const text = await run(registerFlashCampaign, ["flash-campaign", "--seed", "3", "--txs", "15", "--no-resume"]);
    expect(text).toMatch(/cut points .* 0 failures/);
    expect(text).toMatch(/replay: ukeysim flash-campaign --seed 3 --txs 15 --keys 10 --big-chance 0.05 --geometry tiny --no-resume/);
    await expect(run(registerFlashCampaign, ["flash-campaign", "--shard", "2/2"])).rejects.toThrow(/shard/);
  });

  it("flash-demo shows an all-or-nothing transaction and how to replay", async () => {
    const text = await run(registerFlashDemo, ["flash-demo", "--seed", "1", "--image", join(dir, "demo.img")]);
    expect(text).toMatch(/survived: (NONE|ALL) of it/);
    expect(text).toMatch(/replay: ukeysim flash-demo --seed 1/);
  });
});
