/**
 * Model-based property test (OpenSK driver style): random sequences of transactions, reads,
 * remounts and power cuts at random operations. After each cut and remount the store must
 * equal the model before or after the interrupted transaction; then the run continues on the
 * recovered store, so cuts pile up on recovered images.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { diffStores, FlashStore, ModelStore, NandChip, StoreError, type TxOp } from "../../src/flash-store/index.ts";
import { Rng } from "../../src/sim/index.ts";
import { CRITICAL_TYPE, INVOICE_TYPE, KEY, OTHER_TYPE, TINY } from "./helpers.ts";

const RUNS = process.env.UKEYSIM_LONG ? 300 : 40;
const TYPES = [CRITICAL_TYPE, INVOICE_TYPE, OTHER_TYPE];
const IDS = 8;
const ALL_KEYS = TYPES.flatMap((type) => Array.from({ length: IDS }, (_, id) => ({ type, id })));

const opArb: fc.Arbitrary<TxOp> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("put" as const), type: fc.constantFrom(...TYPES), id: fc.nat(IDS - 1), value: fc.oneof({ weight: 9, arbitrary: fc.uint8Array({ maxLength: 300 }) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 500, maxLength: 2500 }) }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), type: fc.constantFrom(...TYPES), id: fc.nat(IDS - 1) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("reclaimable" as const), type: fc.constantFrom(...TYPES), id: fc.nat(IDS - 1) }) },
);

type Step =
  | { kind: "tx"; ops: TxOp[] }
  | { kind: "cut"; ops: TxOp[]; after: number; seed: number }
  | { kind: "remount" };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("tx" as const), ops: fc.array(opArb, { minLength: 1, maxLength: 5 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("cut" as const), ops: fc.array(opArb, { minLength: 1, maxLength: 5 }), after: fc.nat(40), seed: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("remount" as const) }) },
);

function commitBoth(store: FlashStore, model: ModelStore, ops: TxOp[]): void {
  const before = store.stats().reclaimedRecords;
  try {
    store.commit(ops);
  } catch (error) {
    if (error instanceof StoreError && error.code === "STORAGE_FULL") return; // refused: nothing changed
    throw error;
  }
  model.commit(ops);
  const rolled = store.stats().reclaimedRecords - before;
  if (rolled > 0) model.reclaimOldest(rolled);
}

describe("FlashStore against ModelStore with power cuts", () => {
  it("equals the model before or after every interrupted transaction", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 5, maxLength: 40 }), (steps) => {
        const chip = NandChip.memory({ geometry: TINY });
        let store = FlashStore.format(chip, { key: KEY });
        let model = new ModelStore();
        for (const step of steps) {
          if (step.kind === "tx") commitBoth(store, model, step.ops);
          else if (step.kind === "remount") store = FlashStore.mount(chip, { key: KEY });
          else {
            const before = model.clone();
            const after = model.clone();
            after.commit(step.ops);
            chip.armPowerCut(chip.opCount + step.after, new Rng(step.seed));
            let cut = false;
            try {
              commitBoth(store, model, step.ops);
            } catch (error) {
              if (!(error instanceof StoreError && error.code === "POWER_LOST")) throw error;
              cut = true;
            }
            chip.disarmPowerCut();
            chip.repower();
            store = FlashStore.mount(chip, { key: KEY });
            if (cut) {
              const rolled = store.stats().reclaimedRecords - after.stats().reclaimedRecords;
              if (rolled > 0) after.reclaimOldest(Math.min(rolled, after.stats().reclaimableRecords));
              const dBefore = diffStores(store, before, ALL_KEYS);
              const dAfter = diffStores(store, after, ALL_KEYS);
              expect(dBefore === null || dAfter === null, `before: ${dBefore}; after: ${dAfter}`).toBe(true);
              model = dBefore === null ? before : after;
            }
          }
          expect(diffStores(store, model, ALL_KEYS)).toBeNull();
        }
        const final = FlashStore.mount(chip, { key: KEY });
        expect(diffStores(final, model, ALL_KEYS)).toBeNull();
      }),
      process.env.UKEYSIM_LONG ? { numRuns: RUNS } : { numRuns: RUNS, seed: 20261122 },
    );
  });
});
