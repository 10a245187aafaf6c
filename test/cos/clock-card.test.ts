import { describe, expect, it } from "vitest";
import { E, INS, call, decodeLayout, SECURE_TIME_LAYOUT } from "../../src/tax/index.ts";
import { ClockState } from "../../src/secure-clock/index.ts";
import { readyCard, issue, draft, login, swOf, cmd } from "./helpers.ts";

describe("secure clock on the card", () => {
  it("after a power cycle, a time source rolled back behind the last invoice cannot issue (even within a checkpoint interval)", async () => {
    const r = await readyCard(97);
    r.clock.advance(10_000);
    await issue(r, draft({}, 100));
    r.card.powerOff();
    r.clock.set(r.clock.now() - 5_000); // behind the last invoice, within the 60 s checkpoint interval
    r.card.powerOn();
    await login(r);
    expect(await swOf(issue(r, draft({}, 100)))).toBe(E.CLOCK_INVALID);
    r.clock.advance(6_000);
    expect(await swOf(issue(r, draft({}, 100)))).toBe(0);
  });
  it("a rollback larger than the checkpoint interval is seen by the clock itself (state ROLLBACK in GET SECURE TIME)", async () => {
    const r = await readyCard(98);
    r.clock.advance(120_000);
    await issue(r, draft({}, 100)); // commits a checkpoint (moved > 60 s)
    r.card.powerOff();
    r.clock.set(r.clock.now() - 90_000);
    r.card.powerOn();
    await login(r);
    const t = decodeLayout(SECURE_TIME_LAYOUT, await call(r.send, cmd(INS.GET_SECURE_TIME, undefined, 20)));
    expect(t.clockState).toBe(ClockState.ROLLBACK);
    expect(t.seconds).toBe(0);
  });
});
