/**
 * No upload body, however mangled, crashes the bureau or half-applies: the service either
 * answers (a receipt) or refuses with a BureauError, and a refusal changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { BureauError, type Bureau } from "../../src/bureau/index.ts";
import type { VirtualClock } from "../../src/sim/index.ts";
import { Rng } from "../../src/sim/index.ts";
import { boot, registerDevice, type Device } from "./fixture.ts";

let bureau: Bureau;
let clock: VirtualClock;
let device: Device;

beforeAll(async () => {
  ({ bureau, clock } = await boot({}, 41));
  device = registerDevice(bureau, clock, new Rng(42));
});
afterAll(async () => bureau.stop());

function snapshot() {
  return { invoices: bureau.store.invoiceCount(), receipts: bureau.store.receiptCount() };
}

/** Replaces the value at a random path of a JSON value. */
function mutate(value: unknown, path: number[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  if (Array.isArray(value) && value.length > 0) {
    const copy = [...value];
    const i = (path[0] as number) % copy.length;
    copy[i] = mutate(copy[i], path.slice(1), replacement);
    return copy;
  }
  if (typeof value === "object" && value !== null) {
    const keys = Object.keys(value);
    if (keys.length === 0) return replacement;
    const key = keys[(path[0] as number) % keys.length] as string;
    return { ...(value as Record<string, unknown>), [key]: mutate((value as Record<string, unknown>)[key], path.slice(1), replacement) };
  }
  if (typeof value === "string" && value.length > 0 && typeof replacement === "number") {
    // Flip one base64 character: a plausible corruption of certificate, invoice or signature bytes.
    const i = (path[0] as number) % value.length;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    return value.slice(0, i) + alphabet[(replacement >>> 0) % 64] + value.slice(i + 1);
  }
  return replacement;
}

describe("upload fuzzing", () => {
  const base = () => device.batch([1, 2]);
  const replacement = fc.oneof(
    fc.integer(), fc.string({ maxLength: 40 }), fc.constant(null), fc.boolean(), fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
    fc.double(), fc.base64String({ maxLength: 60 }), fc.constant({}), fc.constant(undefined),
  );

  it("answers or refuses cleanly, and a refusal changes nothing", () => {
    let answered = 0;
    let refused = 0;
    fc.assert(fc.property(fc.array(fc.nat(1000), { minLength: 1, maxLength: 5 }), replacement, (path, value) => {
      const before = snapshot();
      try {
        const reply = bureau.service.upload(mutate(base(), path, value));
        expect(reply.receipt.accepted.length + reply.receipt.rejected.length).toBeGreaterThan(0);
        answered++;
      } catch (error) {
        if (!(error instanceof BureauError)) throw error;
        expect(error.status).toBeGreaterThanOrEqual(400);
        expect(error.status).toBeLessThan(500);
        expect(snapshot()).toEqual(before);
        refused++;
      }
    }), { numRuns: 300 });
    expect(refused).toBeGreaterThan(50);
    expect(answered).toBeGreaterThan(0);
  });
});
