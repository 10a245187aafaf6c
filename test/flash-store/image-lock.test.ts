/**
 * One process at a time per image: a second process is refused with IN_USE while the first
 * lives, and takes over as soon as it is gone (a killed process leaves a stale lock).
 */
import { describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createImage, openImage, SMALL_GEOMETRY, StoreError } from "../../src/flash-store/index.ts";

const holder = join(import.meta.dirname, "fixtures", "hold-image.ts");

function newImage(): string {
  const path = join(mkdtempSync(join(tmpdir(), "ukeysim-lock-")), "key.img");
  createImage(path, { geometry: SMALL_GEOMETRY }).close();
  return path;
}

function holdInChild(path: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", holder, path], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout.on("data", (d: Buffer) => d.toString().includes("held") && resolve(child));
    child.on("exit", (code) => reject(new Error(`holder exited early (${code}): ${err}`)));
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners("exit");
    child.on("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

describe("image lock", () => {
  it("counts opens within one process and removes the lock with the last close", () => {
    const path = newImage();
    expect(existsSync(`${path}.lock`)).toBe(false);
    const a = openImage(path);
    const b = openImage(path);
    expect(existsSync(`${path}.lock`)).toBe(true);
    a.close();
    expect(existsSync(`${path}.lock`)).toBe(true);
    b.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it("refuses a second process with IN_USE, and takes over once that process is killed", async () => {
    const path = newImage();
    const child = await holdInChild(path);
    try {
      let error: unknown;
      try {
        openImage(path).close();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).code).toBe("IN_USE");
      expect((error as Error).message).toContain(String(child.pid));
    } finally {
      await killed(child);
    }
    expect(existsSync(`${path}.lock`)).toBe(true); // the killed holder could not clean up
    const chip = openImage(path);
    chip.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
  });
});
