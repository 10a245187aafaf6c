/**
 * One process at a time per image file. Two processes writing one NAND image (say `serve`
 * and `apdu` on the same key.img) would interleave their logs and corrupt it, so opening an
 * image takes `IMAGE.lock`, which holds the owner's pid.
 *
 * Invariants:
 * - a lock whose owner process is gone (killed, crashed: a power cut of the host) is stale
 *   and is taken over, so a SIGKILL never leaves an image unusable;
 * - within one process the lock is counted: the harness and tests may open an image again
 *   (a re-powered card), and the file goes away when the last handle closes.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { StoreError } from "./api.ts";

export const IMAGE_LOCK_SUFFIX = ".lock";
/** Create, or find stale and take over: two rounds are enough unless another process races us. */
const LOCK_ATTEMPTS = 2;

const held = new Map<string, number>();

function ownerOf(lockPath: string): number | undefined {
  try {
    const pid = Number(readFileSync(lockPath, "utf8").trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"; // alive, owned by another user
  }
}

export function acquireImageLock(path: string): void {
  const key = resolve(path);
  const count = held.get(key);
  if (count !== undefined) {
    held.set(key, count + 1);
    return;
  }
  const lockPath = key + IMAGE_LOCK_SUFFIX;
  for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
    try {
      const fd = openSync(lockPath, "wx");
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      held.set(key, 1);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw new StoreError("BAD_IMAGE", `cannot lock image ${path}: ${(error as Error).message}`);
      const owner = ownerOf(lockPath);
      if (owner !== undefined && owner !== process.pid && isAlive(owner)) {
        throw new StoreError("IN_USE", `image ${path} is in use by process ${owner} (${lockPath}); stop that process first`);
      }
      rmSync(lockPath, { force: true }); // stale: its owner is gone
    }
  }
  throw new StoreError("IN_USE", `image ${path}: another process keeps taking its lock (${lockPath})`);
}

export function releaseImageLock(path: string): void {
  const key = resolve(path);
  const count = held.get(key);
  if (count === undefined) return;
  if (count > 1) {
    held.set(key, count - 1);
    return;
  }
  held.delete(key);
  rmSync(key + IMAGE_LOCK_SUFFIX, { force: true });
}
