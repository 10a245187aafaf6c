import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseScriptLine } from "../../src/cli/apdu.ts";
import { needTools } from "../support/tools.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const cli = (args: string[], input?: string) => spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), ...args], { cwd: ROOT, encoding: "utf8", input, timeout: 60_000 });

describe("ukeysim apdu script lines", () => {
  it("parses APDUs, comments and power commands; rejects the rest", () => {
    expect(parseScriptLine("00 A4 04 00 # select")).toEqual({ kind: "apdu", bytes: Uint8Array.of(0, 0xa4, 4, 0) });
    expect(parseScriptLine("   # only a comment").kind).toBe("skip");
    expect(parseScriptLine("RESET").kind).toBe("reset");
    expect(parseScriptLine("power off").kind).toBe("off");
    expect(parseScriptLine("power on").kind).toBe("on");
    expect(parseScriptLine("00A4").kind).toBe("error");
    expect(parseScriptLine("xyz").kind).toBe("error");
  });
});

describe("ukeysim personalize + apdu on an image", () => {
  it("personalizes an image, and the console reads it back across processes; state persists", () => {
    const dir = mkdtempSync(join(tmpdir(), "ukeysim-cos-"));
    try {
      const img = join(dir, "key.img");
      const p = cli(["personalize", "--image", img, "--seed", "5", "--certs-out", join(dir, "certs")]);
      expect(p.status, p.stderr).toBe(0);
      const summary = JSON.parse(p.stdout.trim().split("\n").pop() as string);
      expect(summary.taxpayerId).toBe("91370100MA3C123456");
      expect(existsSync(join(dir, "certs", "device.pem"))).toBe(true);
      if (needTools("openssl")) {
        // OpenSSL 3.0 takes the SM2 distinguishing ID only for the certificate being verified: one link at a time
        const v = (ca: string, cert: string, partial: boolean) =>
          spawnSync("openssl", ["verify", "-vfyopt", "distid:1234567812345678", ...(partial ? ["-partial_chain"] : []), "-CAfile", join(dir, "certs", ca), join(dir, "certs", cert)], { encoding: "utf8" });
        expect(v("root.pem", "intermediate.pem", false).stdout).toContain(": OK");
        expect(v("intermediate.pem", "device.pem", true).stdout).toContain(": OK");
      }
      expect(cli(["personalize", "--image", img]).status).not.toBe(0); // refuses to overwrite
      const script = [
        "00A404000CA000000886544158554B4559 # select",
        "00200001083132333435363738 # verify user PIN",
        "00200001083030303030303030 # a wrong PIN: 63C5, persisted",
        "power off",
        "power on",
        "00A404000CA000000886544158554B4559",
        "8062000000 # invoice types: needs the PIN again",
        "junk",
      ].join("\n");
      const a = cli(["apdu", "--target", `sim:${img}`], script);
      expect(a.stdout).toContain("< 63C5");
      expect(a.stdout).toContain("< 6982");
      expect(a.stdout).toContain("! not hex");
      expect(a.status).toBe(1); // the junk line
      // the wrong try persisted in the image: the tries query in a new process says 5
      const b = cli(["apdu", "--target", `sim:${img}`, "00A404000CA000000886544158554B4559", "0020000100"]);
      expect(b.status).toBe(0);
      expect(b.stdout).toContain("< 63C5");
      expect(cli(["apdu", "--target", "nope:x", "00A40400"]).status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
