/** PowerControl for hardware: uhubctl is spawned with the right arguments, a missing tool or bad spec is a clear error; issuer-key files. */
import { describe, expect, it } from "vitest";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { UhubctlPowerControl, SerialRelayPowerControl, parsePowerSpec, PowerControlError, readIssuerKeys, simIssuerKeys } from "../../hil/index.ts";

describe("hardware power control", () => {
  it("switches USB port power through uhubctl -l LOC -p PORT -a off|on", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hil-power-"));
    try {
      const log = join(dir, "calls.txt");
      const fake = join(dir, "uhubctl");
      writeFileSync(fake, `#!/bin/sh\necho "$@" >> ${log}\n`);
      chmodSync(fake, 0o755);
      const power = new UhubctlPowerControl("1-1.2", 3, fake);
      await power.off();
      power.armCut(0);
      await power.commandSent(); // cuts after 0 ms
      expect(power.cutHappened()).toBe(true);
      expect(readFileSync(log, "utf8").trim().split("\n")).toEqual(["-l 1-1.2 -p 3 -a off", "-l 1-1.2 -p 3 -a off"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("says clearly when uhubctl is missing or fails, and refuses bad specs", async () => {
    await expect(new UhubctlPowerControl("1-1", 2, "/nonexistent/uhubctl").off()).rejects.toThrow(/not installed/);
    await expect(new UhubctlPowerControl("1-1", 2, "false").off()).rejects.toThrow(/exited with 1/);
    expect(() => parsePowerSpec("uhubctl:1-1")).toThrow(PowerControlError);
    expect(() => parsePowerSpec("uhubctl:x;rm:2")).toThrow(/location/);
    expect(() => parsePowerSpec("wall-socket")).toThrow(/uhubctl:LOCATION:PORT or relay:DEVICE/);
    expect(parsePowerSpec("relay:/dev/ttyUSB0")).toBeInstanceOf(SerialRelayPowerControl);
    await expect(new SerialRelayPowerControl("/nonexistent/tty").off()).rejects.toThrow(/cannot open relay/);
  });

  it("the simulator's issuer-key file parses to the keys the simulator holds", () => {
    const file = readIssuerKeys(resolve(import.meta.dirname, "../../fixtures/issuer-keys-sim.json"));
    const sim = simIssuerKeys();
    expect(Buffer.from(file.transportKey).toString("hex")).toBe(Buffer.from(sim.transportKey).toString("hex"));
    expect(file.profile.taxpayer).toEqual(sim.profile.taxpayer);
    expect(() => readIssuerKeys("/nonexistent/keys.json")).toThrow(/cannot read issuer-key file/);
  });
});
