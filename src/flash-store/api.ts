/**
 * The record store contract: what the COS (and anything above) may rely on.
 * The implementation over a NAND chip lives beside this file; `ModelStore` is the simple
 * in-memory model of the same contract that the property tests compare it against.
 *
 * Records are addressed by (type, id): type 0..255, id 0..2^32-1.
 * - Types 0x00..0x3F are CRITICAL: the store keeps two copies in different blocks.
 * - `commit` is atomic: after a power cut at any point, a remount shows all of a
 *   transaction or none of it.
 * - A record marked reclaimable may be deleted by the store itself when it needs space
 *   (rollover), oldest mark first; nothing else is ever deleted except by the caller.
 */

export const RECORD_TYPE_MAX = 0xff;
export const RECORD_ID_MAX = 0xffff_ffff;
/** Record types below this value are kept in two copies in different blocks. */
export const CRITICAL_TYPE_LIMIT = 0x40;
/** Largest value one record may hold, in bytes. */
export const MAX_RECORD_BYTES = 4096;
/** Largest number of operations in one transaction. */
export const MAX_TX_OPS = 64;

export type TxOp =
  | { kind: "put"; type: number; id: number; value: Uint8Array }
  | { kind: "delete"; type: number; id: number }
  /** Allow rollover to reclaim this record (e.g. an invoice the bureau confirmed as uploaded). */
  | { kind: "reclaimable"; type: number; id: number };

export interface StoreStats {
  records: number;
  recordsByType: Record<number, number>;
  reclaimableRecords: number;
  /** Records the store deleted by rollover since format. */
  reclaimedRecords: number;
  freeBytes: number;
  usedBytes: number;
  reclaimableBytes: number;
  eccCorrections: number;
}

export interface RecordStore {
  get(type: number, id: number): Uint8Array | undefined;
  /** Ids present for a type, ascending. */
  ids(type: number): number[];
  isReclaimable(type: number, id: number): boolean;
  /** Apply all ops atomically, or throw and change nothing. */
  commit(ops: readonly TxOp[]): void;
  stats(): StoreStats;
}

export type StoreErrorCode =
  | "STORAGE_FULL"
  | "RECORD_TOO_LARGE"
  | "BAD_KEY"
  | "TX_TOO_LARGE"
  | "CORRUPT"
  | "POWER_LOST"
  | "BAD_IMAGE"
  | "BAD_GEOMETRY"
  | "WRONG_KEY"
  /** The store was mounted read-only (inspect): commit is refused. */
  | "READ_ONLY"
  /** The image file is open in another process. */
  | "IN_USE"
  /** The store was unmounted (FlashStore.unmount): mount the chip again. */
  | "UNMOUNTED";

/** Every failure the store reports carries a code, so callers map it to a status word. */
export class StoreError extends Error {
  constructor(readonly code: StoreErrorCode, message: string) {
    super(message);
    this.name = "StoreError";
  }
}

export function checkRecordKey(type: number, id: number): void {
  if (!Number.isInteger(type) || type < 0 || type > RECORD_TYPE_MAX) throw new StoreError("BAD_KEY", `record type must be 0..${RECORD_TYPE_MAX}, got ${type}`);
  if (!Number.isInteger(id) || id < 0 || id > RECORD_ID_MAX) throw new StoreError("BAD_KEY", `record id must be 0..${RECORD_ID_MAX}, got ${id}`);
}

export function checkTransaction(ops: readonly TxOp[]): void {
  if (ops.length > MAX_TX_OPS) throw new StoreError("TX_TOO_LARGE", `a transaction holds at most ${MAX_TX_OPS} operations, got ${ops.length}`);
  for (const op of ops) {
    checkRecordKey(op.type, op.id);
    if (op.kind === "put" && op.value.length > MAX_RECORD_BYTES) {
      throw new StoreError("RECORD_TOO_LARGE", `record ${op.type}/${op.id} is ${op.value.length} bytes; the limit is ${MAX_RECORD_BYTES}`);
    }
  }
}
