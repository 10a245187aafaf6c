/**
 * A RecordStore wrapper that cuts the power at a chosen commit: the commit throws
 * StoreError POWER_LOST, either before applying (old state survives) or after (new
 * state). Until `restore()`, every later commit fails the same way. It models the
 * RecordStore contract (atomic commits); the NAND-level cuts are FlashStore's tests.
 */
import { ModelStore, StoreError, type RecordStore, type StoreStats, type TxOp } from "../../src/flash-store/index.ts";

export class CutStore implements RecordStore {
  private countdown = -1;
  private applyOnCut = false;
  private dead = false;
  commits = 0;
  constructor(readonly inner: ModelStore = new ModelStore()) {}

  /** Cut during the `n`-th commit from now (1 = the next one). */
  cutAt(n: number, applied: boolean): void {
    this.countdown = n;
    this.applyOnCut = applied;
  }
  restore(): void {
    this.dead = false;
    this.countdown = -1;
  }
  get isCut(): boolean {
    return this.dead;
  }

  get(type: number, id: number): Uint8Array | undefined {
    return this.inner.get(type, id);
  }
  ids(type: number): number[] {
    return this.inner.ids(type);
  }
  isReclaimable(type: number, id: number): boolean {
    return this.inner.isReclaimable(type, id);
  }
  stats(): StoreStats {
    return this.inner.stats();
  }
  commit(ops: readonly TxOp[]): void {
    if (this.dead) throw new StoreError("POWER_LOST", "power is off");
    if (this.countdown > 0 && --this.countdown === 0) {
      this.dead = true;
      if (this.applyOnCut) this.inner.commit(ops);
      throw new StoreError("POWER_LOST", "power cut during commit");
    }
    this.inner.commit(ops);
    this.commits++;
  }
  /** A digest of every record, for "nothing changed" checks. */
  snapshot(): string {
    const parts: string[] = [];
    for (let t = 0; t < 256; t++) for (const id of this.inner.ids(t)) parts.push(`${t}/${id}:${Buffer.from(this.inner.get(t, id) as Uint8Array).toString("hex")}:${this.inner.isReclaimable(t, id) ? 1 : 0}`);
    return parts.join(",");
  }
}
