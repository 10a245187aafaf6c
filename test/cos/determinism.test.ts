import { describe, expect, it } from "vitest";
import { createUkey } from "../../src/cos/index.ts";
import { ModelStore } from "../../src/flash-store/index.ts";
import { MemoryTrace, Rng, VirtualClock } from "../../src/sim/index.ts";
import { personalize, login, issue, draft, ISSUE_TIME, type Rig } from "./helpers.ts";
import { deriveCardKey, type Send } from "../../src/tax/index.ts";
import { MemorySecrets } from "../../src/cos/index.ts";

async function run(seed: number): Promise<string> {
  const trace = new MemoryTrace();
  const clock = new VirtualClock(ISSUE_TIME * 1000);
  const secrets = new MemorySecrets();
  const store = new ModelStore();
  const card = createUkey({ store, clock, rng: new Rng(seed), secrets, trace, serial: "UK00000000000001" });
  card.powerOn();
  const send: Send = async (apdu) => card.process(apdu);
  const r: Rig = { card, clock, store, secrets, send, cardKey: deriveCardKey(new Uint8Array(16), "x") };
  const { PROFILE } = await import("./helpers.ts");
  r.cardKey = deriveCardKey(PROFILE.bureauMasterKey, "UK00000000000001");
  await personalize(r);
  await login(r);
  for (let i = 0; i < 3; i++) {
    clock.advance(1000);
    await issue(r, draft({}, 100 + i));
  }
  return trace.toJsonLines();
}

describe("determinism", () => {
  it("the same seed gives a byte-identical APDU trace (signatures included); another seed differs", async () => {
    const a = await run(5);
    const b = await run(5);
    expect(a).toBe(b);
    expect(a.split("\n").filter((l) => l.includes('"kind":"apdu"')).length).toBeGreaterThan(20);
    expect(await run(6)).not.toBe(a);
  });
});
