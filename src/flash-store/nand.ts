/**
 * NandChip: the NAND flash device model. The full contract is docs/flash-contract.md; in short:
 *
 *  - erase(block) sets every bit of the block to 1 (0xFF) and counts one cycle;
 *  - program(block, page, data) only turns 1 bits into 0 (cell = old AND data), at most once
 *    per page per erase, and pages of a block in ascending order;
 *  - after ENDURANCE_CYCLES erases a block wears out: erase and program report failure
 *    (status fail, like real NAND), they do not throw;
 *  - factory-bad blocks carry a bad-block marker (spare byte 0 of page 0 != 0xFF) and fail
 *    every erase and program; markBad() writes that marker for grown bad blocks;
 *  - a power cut armed at operation k tears operation k (it applies an arbitrary seed-chosen
 *    subset of its intended bit changes) and throws PowerLossError; every later operation
 *    throws PowerLossError until repower();
 *  - reads may return flipped bits (random or scheduled) and stuck bits; the stored cells are
 *    not changed by a read fault.
 *
 * Invariants (checked by assert): block/page indices are in range; a programmed page's
 * content only ever loses 1 bits until the next erase; writePointer(block) <= pagesPerBlock.
 */
import { Rng, type TraceSink } from "../sim/index.ts";
import { BAD_BLOCK_MARKER_OFFSET, checkGeometry, DEFAULT_GEOMETRY, pageTotalBytes, type Geometry } from "./geometry.ts";
import { BLOCK_FLAG_FACTORY_BAD, MemoryMedia, type Media, type MemorySnapshot } from "./media.ts";
import { Slab } from "./slab.ts";

/** Erase cycles a block survives; the next erase or program fails. */
export const ENDURANCE_CYCLES = 100_000;
const ERASED = 0xff;
const BAD_MARKER = 0x00;

export class PowerLossError extends Error {
  constructor(message = "power lost") {
    // Campaigns throw one per cut point: skip the stack capture, it costs more than the cut.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = "PowerLossError";
  }
}

export type NandOp =
  | { readonly kind: "read"; readonly block: number; readonly page: number }
  | { readonly kind: "program"; readonly block: number; readonly page: number; readonly data: Uint8Array }
  | { readonly kind: "erase"; readonly block: number }
  | { readonly kind: "markBad"; readonly block: number };

/** Called before operation `index` is applied; a campaign forks the chip here. */
export type NandObserver = (index: number, op: NandOp) => void;

export interface NandChipOptions {
  geometry?: Geometry;
  endurance?: number;
  /** Blocks that are bad from the factory (marker written, every program/erase fails). */
  factoryBadBlocks?: readonly number[];
}

export interface ChipSnapshot {
  readonly media: MemorySnapshot;
  readonly endurance: number;
  readonly opCount: number;
  readonly stuck: ReadonlyMap<number, readonly StuckBit[]>;
}

interface StuckBit { readonly bit: number; readonly value: 0 | 1 }

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`NAND invariant violated: ${message}`);
}

/** readPageView's answer for an erased page: no stored byte, every byte reads 0xFF. */
const ERASED_VIEW = new Uint8Array(0);

/** Page buffers for reads without a caller buffer: erased (0xFF) pieces of shared slabs (slab.ts). */
const erasedPages = new Slab(ERASED);

/** How a torn operation chooses the subset of bit changes it applies. */
const enum TearMode { Nothing, Everything, Prefix, RandomBits }
const TEAR_MODES = 4;

export class NandChip {
  readonly geometry: Geometry;
  readonly endurance: number;
  /** Index of the next operation (reads, programs, erases, bad-block marks all count). */
  opCount = 0;
  private readonly pageTotal: number;
  private cutAt = -1;
  private cutRng: Rng | null = null;
  private powerLost = false;
  private observer: NandObserver | null = null;
  private trace: TraceSink | null = null;
  private traceReads = false;
  private flipProbability = 0;
  private flipRng: Rng | null = null;
  private readonly scheduledFlips = new Map<number, number[]>();
  private readonly stuck: Map<number, StuckBit[]>;
  /** Read-path counters for tests and inspect (not part of the cells). */
  readonly counters = { reads: 0, programs: 0, erases: 0, programFailures: 0, eraseFailures: 0, bytesProgrammed: 0, injectedFlips: 0 };

  constructor(readonly media: Media, options: { endurance?: number; opCount?: number; stuck?: ReadonlyMap<number, readonly StuckBit[]> } = {}) {
    checkGeometry(media.geometry);
    this.geometry = media.geometry;
    this.pageTotal = pageTotalBytes(this.geometry);
    this.endurance = options.endurance ?? ENDURANCE_CYCLES;
    this.opCount = options.opCount ?? 0;
    this.stuck = new Map();
    if (options.stuck) for (const [k, v] of options.stuck) this.stuck.set(k, [...v]);
  }

  /** A new sparse in-memory chip: all blocks erased, erase counts 0, factory-bad blocks marked. */
  static memory(options: NandChipOptions = {}): NandChip {
    const geometry = options.geometry ?? DEFAULT_GEOMETRY;
    checkGeometry(geometry);
    const chip = new NandChip(new MemoryMedia(geometry), { endurance: options.endurance ?? ENDURANCE_CYCLES });
    for (const block of options.factoryBadBlocks ?? []) chip.makeFactoryBad(block);
    return chip;
  }

  static fromSnapshot(snap: ChipSnapshot): NandChip {
    return new NandChip(new MemoryMedia(snap.media.geometry, snap.media), { endurance: snap.endurance, opCount: snap.opCount, stuck: snap.stuck });
  }

  /** Marks a block bad as the factory would (marker + failing cells). Not an operation. */
  makeFactoryBad(block: number): void {
    this.checkBlock(block);
    this.media.setBlockFlags(block, this.media.blockFlags(block) | BLOCK_FLAG_FACTORY_BAD);
    this.writeMarker(block);
  }

  /**
   * An immutable copy of the cells, erase counts and stuck bits. O(1) for the memory backend
   * (arrays and pages are shared copy-on-write); other backends are copied page by page.
   */
  snapshot(): ChipSnapshot {
    const media = this.media instanceof MemoryMedia ? this.media.snapshot() : this.copyToMemory().snapshot();
    const stuck = this.stuck.size ? new Map([...this.stuck].map(([k, v]) => [k, [...v]] as const)) : this.stuck;
    return { media, endurance: this.endurance, opCount: this.opCount, stuck };
  }

  /**
   * True when the cells cannot have changed since `snap` was taken of this chip (no program,
   * erase, bad mark or secure-area write since): lets a campaign reuse what it computed on the
   * snapshot. Memory chips only (false otherwise: a file image is not tracked).
   */
  unchangedSince(snap: ChipSnapshot): boolean {
    return this.media instanceof MemoryMedia && this.media.unchangedSince(snap.media);
  }

  /** An independent chip with the same cells, no armed cut, no observer, powered. */
  fork(): NandChip {
    return NandChip.fromSnapshot(this.snapshot());
  }

  private copyToMemory(): MemoryMedia {
    const copy = new MemoryMedia(this.geometry);
    for (let b = 0; b < this.geometry.blocks; b++) {
      copy.setEraseCount(b, this.media.eraseCount(b));
      copy.setWritePointer(b, this.media.writePointer(b));
      copy.setBlockFlags(b, this.media.blockFlags(b));
      if (b === 0) copy.writeSecure(0, this.media.readSecure());
      for (let p = 0; p < this.geometry.pagesPerBlock; p++) {
        const content = this.media.readPage(b, p);
        if (content) copy.writePage(b, p, content);
      }
    }
    return copy;
  }

  // ---- fault controls -------------------------------------------------------------------

  /** Operation number `atOp` (compare opCount) will be torn and power lost from then on. */
  armPowerCut(atOp: number, rng: Rng): void {
    if (!Number.isInteger(atOp) || atOp < this.opCount) throw new RangeError(`power cut must be at a future operation (>= ${this.opCount}), got ${atOp}`);
    this.cutAt = atOp;
    this.cutRng = rng;
  }

  disarmPowerCut(): void {
    this.cutAt = -1;
    this.cutRng = null;
  }

  get poweredOff(): boolean {
    return this.powerLost;
  }

  /** Power comes back: operations work again (the cells keep whatever the cut left). */
  repower(): void {
    this.powerLost = false;
  }

  setObserver(observer: NandObserver | null): void {
    this.observer = observer;
  }

  /**
   * Emits a `flash` trace event (seq = operation index) for every program, erase and
   * bad-block mark (and read, when `reads`), and a `fault` event for a power cut.
   */
  setTrace(trace: TraceSink | null, options: { reads?: boolean } = {}): void {
    this.trace = trace;
    this.traceReads = options.reads ?? false;
  }

  /** Each page read flips one random bit of the returned copy with this probability. */
  setReadFlips(probability: number, rng: Rng): void {
    if (!(probability >= 0 && probability <= 1)) throw new RangeError(`flip probability must be in [0, 1], got ${probability}`);
    this.flipProbability = probability;
    this.flipRng = rng;
  }

  /** The next read of (block, page) returns bit `bit` (of data + spare) flipped. */
  scheduleReadFlip(block: number, page: number, bit: number): void {
    this.checkPage(block, page);
    if (!Number.isInteger(bit) || bit < 0 || bit >= this.pageTotal * 8) throw new RangeError(`bit out of range: ${bit}`);
    const key = this.pageKey(block, page);
    const list = this.scheduledFlips.get(key) ?? [];
    list.push(bit);
    this.scheduledFlips.set(key, list);
  }

  /** Bit `bit` of (block, page) always reads as `value` from now on. */
  stickBit(block: number, page: number, bit: number, value: 0 | 1): void {
    this.checkPage(block, page);
    if (!Number.isInteger(bit) || bit < 0 || bit >= this.pageTotal * 8) throw new RangeError(`bit out of range: ${bit}`);
    const key = this.pageKey(block, page);
    const list = this.stuck.get(key) ?? [];
    list.push({ bit, value });
    this.stuck.set(key, list);
  }

  /** The block has used up its endurance: its next erase or program fails. */
  wearOut(block: number): void {
    this.checkBlock(block);
    this.media.setEraseCount(block, Math.max(this.media.eraseCount(block), this.endurance));
  }

  // ---- inspection (not operations: no op index, no faults) -----------------------------------

  /** No read fault is configured (scheduled or random flips, stuck bits): a read returns the stored cells. */
  get readsExact(): boolean {
    return this.scheduledFlips.size === 0 && this.stuck.size === 0 && this.flipProbability === 0;
  }

  /** The MCU secure area (4 KiB beside the NAND, not subject to NAND faults or power cuts). */
  readSecureArea(): Uint8Array {
    return this.media.readSecure();
  }

  writeSecureArea(offset: number, data: Uint8Array): void {
    this.media.writeSecure(offset, data);
  }

  eraseCount(block: number): number {
    this.checkBlock(block);
    return this.media.eraseCount(block);
  }

  isFactoryBad(block: number): boolean {
    this.checkBlock(block);
    return (this.media.blockFlags(block) & BLOCK_FLAG_FACTORY_BAD) !== 0;
  }

  // ---- operations -----------------------------------------------------------------------

  /**
   * The same read operation as readPage (observer, trace, counters, power cut, read faults),
   * without the copy when it can: with no read fault configured, the media's own bytes, which
   * may be SHORTER than a page (media trim trailing erased bytes: every byte past the end
   * reads 0xFF; an erased page is a zero-length view). The caller must not modify the result. With read faults, a faulted full copy.
   * `into`: see Media.readPage (the result may be `into`, valid until the caller reuses it).
   * Mount reads thousands of pages once each: a copy per page was most of its flash I/O cost.
   */
  readPageView(block: number, page: number, into?: Uint8Array): Uint8Array {
    this.checkPage(block, page);
    if (into && into.length !== this.pageTotal) throw new RangeError(`read buffer must be ${this.pageTotal} bytes, got ${into.length}`);
    this.beginRead(block, page);
    const content = this.media.readPage(block, page, into);
    this.counters.reads++;
    if (this.scheduledFlips.size === 0 && this.stuck.size === 0 && this.flipProbability === 0) return content ?? ERASED_VIEW;
    const target = new Uint8Array(this.pageTotal).fill(ERASED);
    if (content) target.set(content);
    this.applyReadFaults(block, page, target);
    return target;
  }

  /** Reads a whole page (data + spare) into `out` (allocated when absent) and returns it. */
  readPage(block: number, page: number, out?: Uint8Array): Uint8Array {
    this.checkPage(block, page);
    this.beginRead(block, page);
    const content = this.media.readPage(block, page);
    let target: Uint8Array;
    if (out) {
      target = out;
      assert(target.length >= this.pageTotal, "read buffer too small");
      target.fill(ERASED, content ? content.length : 0, this.pageTotal);
    } else target = erasedPages.carve(this.pageTotal);
    if (content) target.set(content);
    this.applyReadFaults(block, page, target);
    this.counters.reads++;
    return target;
  }

  /** Is the block marked bad (spare byte 0 of page 0 != 0xFF)? One read operation. */
  readBadMarker(block: number): boolean {
    this.checkBlock(block);
    this.beginRead(block, 0);
    const page = this.fullPage(block, 0);
    this.applyReadFaults(block, 0, page);
    return page[this.geometry.pageBytes + BAD_BLOCK_MARKER_OFFSET] !== ERASED;
  }

  /**
   * Programs a page (data + spare, exactly pageBytes + spareBytes). Returns false on status
   * failure (worn-out or bad block). Throws RangeError when the caller breaks a NAND rule.
   * With `handOver` the caller gives `data` away (a fresh buffer it never touches again), so
   * the chip may keep it as the page's cells instead of a copy.
   */
  program(block: number, page: number, data: Uint8Array, handOver = false): boolean {
    this.checkPage(block, page);
    if (data.length !== this.pageTotal) throw new RangeError(`program needs exactly ${this.pageTotal} bytes, got ${data.length}`);
    const pointer = this.media.writePointer(block);
    if (page < pointer) throw new RangeError(`NAND rule: block ${block} page ${page} programmed out of order or twice (next allowed page is ${pointer})`);
    const op: NandOp = { kind: "program", block, page, data };
    if (this.begin(op)) return this.tear(op);
    this.counters.programs++;
    if (this.failing(block)) {
      this.counters.programFailures++;
      this.media.writePage(block, page, this.programmed(block, page, data, data.length >> 1));
      this.media.setWritePointer(block, page + 1);
      return false;
    }
    const cells = this.programmed(block, page, data, data.length);
    this.media.writePage(block, page, cells, handOver || cells !== data); // a fresh result of programmed() is ours to give
    this.media.setWritePointer(block, page + 1);
    this.counters.bytesProgrammed += this.pageTotal;
    return true;
  }

  /** Erases a block. Returns false on status failure (worn out or bad): cells are then unchanged. */
  erase(block: number): boolean {
    this.checkBlock(block);
    const op: NandOp = { kind: "erase", block };
    if (this.begin(op)) return this.tear(op);
    this.counters.erases++;
    const failing = this.failing(block);
    this.media.setEraseCount(block, this.media.eraseCount(block) + 1);
    if (failing) {
      this.counters.eraseFailures++;
      return false;
    }
    this.media.eraseBlock(block);
    this.media.setWritePointer(block, 0);
    return true;
  }

  /** Writes the bad-block marker (allowed on a programmed page: it only clears bits). */
  markBad(block: number): void {
    this.checkBlock(block);
    const op: NandOp = { kind: "markBad", block };
    if (this.begin(op)) {
      this.tear(op);
      return;
    }
    this.writeMarker(block);
  }

  close(): void {
    this.media.close();
  }

  // ---- internals ------------------------------------------------------------------------

  /**
   * begin() for a read, without building the op record when nobody can see it (no observer,
   * no trace, no armed cut, powered): mounts read every page, and that record was a
   * measurable part of a campaign's cut point. Reads are never torn, so the answer is not needed.
   */
  private beginRead(block: number, page: number): void {
    if (this.observer === null && this.trace === null && this.cutAt < 0 && !this.powerLost) this.opCount++;
    else this.begin({ kind: "read", block, page });
  }

  /** Runs the observer and the power checks; returns true when this operation is the torn one. */
  private begin(op: NandOp): boolean {
    if (this.powerLost) throw new PowerLossError(`power lost: operation ${this.opCount} (${op.kind}) refused until repower()`);
    const index = this.opCount;
    if (this.observer) this.observer(index, op);
    this.opCount++;
    if (this.trace && (op.kind !== "read" || this.traceReads)) {
      const kind = op.kind === "markBad" ? "program" : op.kind;
      this.trace.emit(op.kind === "erase" ? { kind: "flash", seq: index, op: kind, block: op.block } : { kind: "flash", seq: index, op: kind, block: op.block, page: "page" in op ? op.page : 0 });
    }
    if (index === this.cutAt && this.trace) this.trace.emit({ kind: "fault", seq: index, fault: "power-cut", detail: { op: op.kind, block: op.block, ...("page" in op ? { page: op.page } : {}) } });
    return index === this.cutAt;
  }

  private tear(op: NandOp): never {
    const rng = this.cutRng as Rng;
    this.cutAt = -1;
    this.cutRng = null;
    this.applyTear(op, rng);
    throw new PowerLossError(`power cut during operation ${this.opCount - 1} (${op.kind} block ${op.block}${"page" in op ? ` page ${op.page}` : ""})`);
  }

  /** The cells a torn `op` leaves (a seed-chosen subset of its changes); the power is then off. */
  private applyTear(op: NandOp, rng: Rng): void {
    this.powerLost = true;
    if (op.kind === "program") this.tearProgram(op.block, op.page, op.data, rng);
    else if (op.kind === "erase") this.tearErase(op.block, rng);
    else if (op.kind === "markBad" && rng.bool()) this.writeMarker(op.block);
  }

  /**
   * tearOperationOnFork's fast path: `op` (a mutating operation the observer of a chip in this
   * very state was shown, so it passed program()/erase()/markBad()'s checks) becomes operation
   * opCount, torn, exactly as an armed cut would tear it, without building and throwing the
   * PowerLossError nobody sees. Only on a fresh fork: no observer, no trace, no armed cut.
   */
  tearForkedOperation(op: NandOp & { kind: "program" | "erase" | "markBad" }, rng: Rng): void {
    assert(this.observer === null && this.trace === null && this.cutAt < 0 && !this.powerLost, "tearForkedOperation needs a fresh, powered fork");
    this.checkBlock(op.block);
    if (op.kind === "program") {
      this.checkPage(op.block, op.page);
      assert(op.data.length === this.pageTotal && op.page >= this.media.writePointer(op.block), "a torn program must be one the chip accepts");
    }
    this.opCount++;
    this.applyTear(op, rng);
  }

  private tearProgram(block: number, page: number, data: Uint8Array, rng: Rng): void {
    // In place: byte i of the result depends on byte i of the old content only.
    const next = this.fullPage(block, page);
    const mode = rng.int(TEAR_MODES) as TearMode;
    const prefix = rng.int(this.pageTotal + 1);
    const mask = mode === TearMode.RandomBits ? rng.bytes(this.pageTotal) : null;
    // Byte i ends as old & ~applied, applied being a subset of the clears (old & ~data): all of
    // them (old & data), none (old), or those the mask picks. One loop per mode: this runs
    // once per torn program of a campaign, and a per-byte mode test cost several microseconds.
    const applyAllUpTo = mode === TearMode.Everything ? this.pageTotal : mode === TearMode.Prefix ? prefix : 0;
    for (let i = 0; i < applyAllUpTo; i++) next[i] = (next[i] as number) & (data[i] as number);
    if (mask) {
      for (let i = 0; i < this.pageTotal; i++) {
        const old = next[i] as number;
        next[i] = old & ~(old & ~(data[i] as number) & (mask[i] as number));
      }
    }
    this.media.writePage(block, page, next, true);
    this.media.setWritePointer(block, Math.max(this.media.writePointer(block), page + 1));
  }

  private tearErase(block: number, rng: Rng): void {
    // A torn erase counts a cycle. Unless it completed, the program-order pointer is left
    // as it was: the block must be erased again before it is programmed (see the contract).
    this.media.setEraseCount(block, this.media.eraseCount(block) + 1);
    const mode = rng.int(TEAR_MODES) as TearMode;
    if (mode === TearMode.Everything) {
      this.media.eraseBlock(block);
      this.media.setWritePointer(block, 0);
      return;
    }
    if (mode === TearMode.Nothing) return;
    const pages = this.geometry.pagesPerBlock;
    const prefixPages = rng.int(pages + 1);
    for (let p = 0; p < pages; p++) {
      const old = this.media.readPage(block, p);
      if (!old) continue;
      if (mode === TearMode.Prefix) {
        // The first prefixPages pages are erased whole (every bit set), the rest keep their cells.
        if (p < prefixPages) this.media.writePage(block, p, ERASED_VIEW, true);
        continue;
      }
      const full = this.fullPage(block, p);
      const mask = rng.bytes(this.pageTotal);
      for (let i = 0; i < this.pageTotal; i++) full[i] = (full[i] as number) | (mask[i] as number);
      this.media.writePage(block, p, full, true);
    }
  }

  private writeMarker(block: number): void {
    const page = this.fullPage(block, 0);
    page[this.geometry.pageBytes + BAD_BLOCK_MARKER_OFFSET] = BAD_MARKER;
    this.media.writePage(block, 0, page, true);
  }

  /** old AND data over the first `upTo` bytes (the rest unchanged). */
  private programmed(block: number, page: number, data: Uint8Array, upTo: number): Uint8Array {
    const content = this.media.readPage(block, page);
    if (!content && upTo === data.length) return data;
    const next = this.fullPage(block, page);
    for (let i = 0; i < upTo; i++) next[i] = (next[i] as number) & (data[i] as number);
    return next;
  }

  private fullPage(block: number, page: number): Uint8Array {
    const out = new Uint8Array(this.pageTotal).fill(ERASED);
    const content = this.media.readPage(block, page);
    if (content) out.set(content);
    return out;
  }

  private failing(block: number): boolean {
    return (this.media.blockFlags(block) & BLOCK_FLAG_FACTORY_BAD) !== 0 || this.media.eraseCount(block) >= this.endurance;
  }

  private applyReadFaults(block: number, page: number, target: Uint8Array): void {
    // Fast path: no fault of any kind is configured (the common case; nothing to look up).
    if (this.scheduledFlips.size === 0 && this.stuck.size === 0 && this.flipProbability === 0) return;
    const key = this.pageKey(block, page);
    const scheduled = this.scheduledFlips.get(key);
    if (scheduled) {
      this.scheduledFlips.delete(key);
      for (const bit of scheduled) this.flip(target, bit);
    }
    const stuck = this.stuck.get(key);
    if (stuck) {
      for (const s of stuck) {
        const byte = s.bit >>> 3;
        const m = 1 << (s.bit & 7);
        target[byte] = s.value ? (target[byte] as number) | m : (target[byte] as number) & ~m;
      }
    }
    if (this.flipProbability > 0 && this.flipRng && this.flipRng.float() < this.flipProbability) {
      this.flip(target, this.flipRng.int(this.pageTotal * 8));
    }
  }

  private flip(target: Uint8Array, bit: number): void {
    target[bit >>> 3] = (target[bit >>> 3] as number) ^ (1 << (bit & 7));
    this.counters.injectedFlips++;
  }

  private pageKey(block: number, page: number): number {
    return block * this.geometry.pagesPerBlock + page;
  }

  private checkBlock(block: number): void {
    if (!Number.isInteger(block) || block < 0 || block >= this.geometry.blocks) throw new RangeError(`block out of range: ${block} (chip has ${this.geometry.blocks})`);
  }

  private checkPage(block: number, page: number): void {
    this.checkBlock(block);
    if (!Number.isInteger(page) || page < 0 || page >= this.geometry.pagesPerBlock) throw new RangeError(`page out of range: ${page} (block has ${this.geometry.pagesPerBlock})`);
  }
}

/**
 * The campaign primitive. Given a chip in the state just BEFORE operation `op` (e.g. inside
 * an observer), returns an independent fork on which `op` has been applied torn (a
 * seed-chosen subset of its bit changes) and power restored, ready to mount and check.
 * The original chip is not touched.
 *
 *   chip.setObserver((k, op) => {
 *     if (op.kind === "read") return;
 *     const torn = tearOperationOnFork(chip, op, rng.fork(`cut${k}`));
 *     const store = FlashStore.mount(torn, { key });   // then compare with the model
 *   });
 */
export function tearOperationOnFork(chip: NandChip, op: NandOp, rng: Rng): NandChip {
  // A read is never torn (a cut armed at a read does not take the power): nothing to fork.
  assert(op.kind !== "read", "the torn operation must leave the fork powered off");
  const fork = chip.fork();
  fork.tearForkedOperation(op, rng);
  assert(fork.poweredOff, "the torn operation must leave the fork powered off");
  fork.repower();
  return fork;
}
