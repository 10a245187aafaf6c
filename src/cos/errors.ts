import { swForError, TaxError } from "../tax/index.ts";

/** A bare status word to answer with (for words that are not one of the 27 errors, e.g. 6A82). */
export class SwError extends Error {
  constructor(readonly sw: number, message = "") {
    super(message);
    this.name = "SwError";
  }
}

export function swOf(error: unknown): number | undefined {
  if (error instanceof SwError) return error.sw;
  if (error instanceof TaxError) return swForError(error.code, error.tries);
  return undefined;
}

/** A power cut reported by the store (FlashStore's PowerLossError, or StoreError POWER_LOST). */
export function isPowerLoss(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return error.name === "PowerLossError" || (error as { code?: unknown }).code === "POWER_LOST";
}

/** An invariant of the COS itself failed: a bug, never bad input (answered 6F00, nothing committed). */
export class InvariantError extends Error {
  constructor(message: string) {
    super(`COS invariant violated: ${message}`);
    this.name = "InvariantError";
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}
