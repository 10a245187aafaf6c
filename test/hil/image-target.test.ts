/**
 * A Ukey image issued the way `ukeysim personalize` issues it (its chain, its clock at the
 * issuance time) is a valid harness target, as long as the harness's clock does not start
 * before the card's: the card rightly refuses a rolled-back clock (+15).
 */
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openUkeyImage } from "../../src/cos/index.ts";
import { createBureauPki, issueUkey } from "../../src/bureau/index.ts";
import { parseProfile } from "../../src/tax/index.ts";
import { Rng, VirtualClock } from "../../src/sim/index.ts";
import { runHil, HIL_START_SECONDS, SIM_GEOMETRY } from "../../hil/index.ts";

const PROFILE = parseProfile(readFileSync(new URL("../../fixtures/profile-default.json", import.meta.url), "utf8"));
const DAY_MS = 86_400_000;
/** Issued months after the harness's default start, as a card personalized "today" is. */
const ISSUED_AT_MS = HIL_START_SECONDS * 1000 + 300 * DAY_MS;

async function issuedImage(): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), "ukeysim-image-")), "key.img");
  const clock = new VirtualClock(ISSUED_AT_MS);
  const ukey = openUkeyImage({ path, create: true, clock, rng: new Rng(9), geometry: SIM_GEOMETRY });
  try {
    ukey.card.powerOn();
    const rng = new Rng(9).fork("ca");
    await issueUkey(async (apdu) => ukey.card.process(apdu), { profile: PROFILE, serial: ukey.card.serial, pki: createBureauPki(rng, ISSUED_AT_MS), rng, nowMs: ISSUED_AT_MS });
    ukey.card.powerOff();
  } finally {
    ukey.chip.close();
  }
  return path;
}

describe("sim:IMAGE made by the issuance procedure", () => {
  it("passes conformance and tax-rules when the harness clock starts at or after issuance", async () => {
    const image = await issuedImage();
    const { report } = await runHil({ target: `sim:${image}`, suites: ["conformance", "tax-rules"], seed: 1, quick: true, imageClockStartMs: ISSUED_AT_MS + DAY_MS });
    expect(report.results.filter((r) => r.status === "fail" || r.status === "error").map((r) => `${r.name}: ${r.message}`)).toEqual([]);
  });

  it("sees a harness clock that starts before issuance as a rollback (+15), as the card must", async () => {
    const image = await issuedImage();
    const { report } = await runHil({ target: `sim:${image}`, suites: ["tax-rules"], seed: 1, quick: true });
    const failures = report.results.filter((r) => r.status === "fail").map((r) => r.message ?? "");
    expect(failures.some((m) => /CLOCK_INVALID|TYUKEY\+15/.test(m))).toBe(true);
  });
});
