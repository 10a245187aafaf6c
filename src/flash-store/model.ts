/**
 * ModelStore: the plain in-memory model of the RecordStore contract (api.ts). It has no
 * flash, no faults and unlimited space unless given a byte budget; property tests run the
 * real store and this model side by side and demand they agree.
 */
import { checkTransaction, StoreError, type RecordStore, type StoreStats, type TxOp } from "./api.ts";

const keyOf = (type: number, id: number) => type * 0x1_0000_0000 + id;

export class ModelStore implements RecordStore {
  private readonly records = new Map<number, ModelRecord>();
  /** Reclaimable keys in the order they were marked: rollover takes the oldest first. */
  private readonly reclaimable = new Map<number, number>();
  private reclaimed = 0;
  private markCounter = 0;

  constructor(private readonly capacityBytes = Number.POSITIVE_INFINITY) {}

  get(type: number, id: number): Uint8Array | undefined {
    return this.records.get(keyOf(type, id))?.value;
  }

  ids(type: number): number[] {
    const out: number[] = [];
    for (const r of this.records.values()) if (r.type === type) out.push(r.id);
    return out.sort((a, b) => a - b);
  }

  isReclaimable(type: number, id: number): boolean {
    return this.reclaimable.has(keyOf(type, id));
  }

  commit(ops: readonly TxOp[]): void {
    checkTransaction(ops);
    // Without a byte budget nothing can refuse the transaction once it is well-formed, so it is
    // applied in place; with one, it is applied to copies first (all-or-nothing on STORAGE_FULL).
    if (this.capacityBytes === Number.POSITIVE_INFINITY) {
      this.markCounter = applyOps(ops, this.records, this.reclaimable, this.markCounter);
      return;
    }
    const next = new Map(this.records);
    const nextReclaimable = new Map(this.reclaimable);
    const marks = applyOps(ops, next, nextReclaimable, this.markCounter);
    let reclaimedNow = 0;
    const oldestFirst = [...nextReclaimable.entries()].sort((a, b) => a[1] - b[1]);
    while (usedBytes(next) > this.capacityBytes) {
      const victim = oldestFirst.shift();
      if (!victim) throw new StoreError("STORAGE_FULL", "storage full: nothing reclaimable is left");
      next.delete(victim[0]);
      nextReclaimable.delete(victim[0]);
      reclaimedNow++;
    }
    this.records.clear();
    for (const [k, v] of next) this.records.set(k, v);
    this.reclaimable.clear();
    for (const [k, v] of nextReclaimable) this.reclaimable.set(k, v);
    this.markCounter = marks;
    this.reclaimed += reclaimedNow;
  }

  /** The counts of stats() in O(1): records, reclaimable records, records reclaimed so far. */
  counts(): { records: number; reclaimableRecords: number; reclaimedRecords: number } {
    return { records: this.records.size, reclaimableRecords: this.reclaimable.size, reclaimedRecords: this.reclaimed };
  }

  stats(): StoreStats {
    const recordsByType: Record<number, number> = {};
    let reclaimableBytes = 0;
    for (const [k, r] of this.records) {
      recordsByType[r.type] = (recordsByType[r.type] ?? 0) + 1;
      if (this.reclaimable.has(k)) reclaimableBytes += r.value.length;
    }
    const used = usedBytes(this.records);
    return {
      records: this.records.size,
      recordsByType,
      reclaimableRecords: this.reclaimable.size,
      reclaimedRecords: this.reclaimed,
      freeBytes: this.capacityBytes - used,
      usedBytes: used,
      reclaimableBytes,
      eccCorrections: 0,
    };
  }

  /**
   * Deletes the `count` reclaimable records marked longest ago, counting them as reclaimed:
   * what a real store's rollover did when its capacity (not modelled here) ran out.
   */
  reclaimOldest(count: number): void {
    const oldestFirst = [...this.reclaimable.entries()].sort((a, b) => a[1] - b[1]);
    if (count > oldestFirst.length) throw new RangeError(`only ${oldestFirst.length} reclaimable records, asked to reclaim ${count}`);
    for (const [k] of oldestFirst.slice(0, count)) {
      this.records.delete(k);
      this.reclaimable.delete(k);
      this.reclaimed++;
    }
  }

  /**
   * An independent copy: the model "before" an interrupted transaction. The records' values
   * are shared, not copied: a stored value is a private copy made by commit and never modified
   * afterwards (commit replaces it), so sharing is safe and spares an allocation per record.
   */
  clone(): ModelStore {
    const copy = new ModelStore(this.capacityBytes);
    for (const [k, v] of this.records) copy.records.set(k, v);
    for (const [k, v] of this.reclaimable) copy.reclaimable.set(k, v);
    copy.reclaimed = this.reclaimed;
    copy.markCounter = this.markCounter;
    return copy;
  }
}

type ModelRecord = { type: number; id: number; value: Uint8Array };

/** Applies a checked transaction's ops to the maps; returns the next mark counter. */
function applyOps(ops: readonly TxOp[], records: Map<number, ModelRecord>, reclaimable: Map<number, number>, marks: number): number {
  for (const op of ops) {
    const k = keyOf(op.type, op.id);
    if (op.kind === "put") {
      records.set(k, { type: op.type, id: op.id, value: op.value.slice() });
      reclaimable.delete(k);
    } else if (op.kind === "delete") {
      records.delete(k);
      reclaimable.delete(k);
    } else if (records.has(k) && !reclaimable.has(k)) {
      reclaimable.set(k, marks++);
    }
  }
  return marks;
}

function usedBytes(records: Map<number, { value: Uint8Array }>): number {
  let total = 0;
  for (const r of records.values()) total += r.value.length;
  return total;
}
