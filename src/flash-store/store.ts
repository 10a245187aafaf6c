/**
 * FlashStore: the RecordStore contract (api.ts) over a NandChip. Log-structured; the format
 * is docs/flash-format.md and layout.ts.
 *
 * Design in one paragraph. Every change is written as an *item* (a record fragment, a
 * tombstone, a reclaimable mark, or a commit) into the active block of a *lane*; lane 0
 * holds every item and the commits, lane 1 holds the second copy of critical items
 * (type < CRITICAL_TYPE_LIMIT), so the two copies are always in different blocks. A
 * transaction is a *frame*: its lane-1 items, then its lane-0 items, then a commit item that
 * names the frame; on mount an item counts only when a commit for its frame is found, so a
 * cut anywhere leaves all of a transaction or none. Items carry a version (global, in op
 * order) that orders them; the newest version of a key wins. A full block gets a summary of
 * its items in its last pages, so mount reads two pages per block (header + summary), not
 * the whole device; only blocks that were open at a cut are scanned page by page (and then
 * garbage-collected). Item payloads are verified (CRC, then ECC when the CRC fails) lazily,
 * when read. Garbage collection copies live items of a victim block into a new frame (same
 * version, same ciphertext), keeps a commit alive while any live item still needs it, and
 * erases the victim. Free blocks are taken least-worn first (dynamic wear levelling); when
 * the erase-count spread passes a bound, the coldest block is collected (static).
 *
 * Invariants (asserted):
 *  - a live item is referenced from exactly one place in the index (identity), and counted
 *    once in frameLive and its block's liveCost;
 *  - the two copies of a critical item are in blocks of different lanes;
 *  - versions and frame numbers only grow; after mount they restart above anything on flash;
 *  - liveCost <= capacityCost after every commit (else rollover or STORAGE_FULL, nothing written).
 */
import { hmacSm3, sm4Ctr, SM4_KEY_BYTES } from "../crypto/index.ts";
import { checkTransaction, CRITICAL_TYPE_LIMIT, RECORD_TYPE_MAX, StoreError, type RecordStore, type StoreStats, type TxOp } from "./api.ts";
import { crc32 } from "./crc32.ts";
import { BAD_BLOCK_MARKER_OFFSET, pageTotalBytes, sameGeometry, type Geometry } from "./geometry.ts";
import {
  BH_BLOCKS, BH_BLOCK_SEQ, BH_ERASE_COUNT, BH_FORMAT_ID, BH_KEY_CHECK, BH_LANE, BH_MAGIC, BH_PAGES_PER_BLOCK, BH_PAGE_BYTES,
  BH_SPARE_BYTES, BH_VERSION, BLOCK_HEADER_END, COMMIT_PAYLOAD_BYTES, correctPage, FLAG_COPY2, FLAG_ROLLOVER, FORMAT_VERSION,
  isBadMarker, isErased, ITEM_COMMIT, ITEM_HEADER_BYTES, ITEM_MARK, ITEM_PUT, ITEM_TOMBSTONE, itemCrc, IT_CRC, IT_FLAGS, IT_FRAG_COUNT,
  IT_FRAG_INDEX, IT_FRAME, IT_ID, IT_KIND, IT_LENGTH, IT_TYPE, IT_VERSION, KEY_CHECK_BYTES, PAGE_HEADER_BYTES,
  PAGE_KIND_BLOCK_HEADER, PAGE_KIND_DATA, PAGE_KIND_SUMMARY, pageLooksValid, PH_COUNT, PH_INDEX, PH_KIND, PH_LANE, PH_TOTAL,
  PH_USED, readU16, readU32, readU48, sealPageHeader, SE_EXTRA, SE_OFFSET, SE_PAGE, slotsFor, SLOT_BYTES, STORE_MAGIC,
  SUMMARY_ENTRY_BYTES, writeEcc, writeU16, writeU32, writeU48,
} from "./layout.ts";
import { KeyMap } from "./keymap.ts";
import { NandChip, PowerLossError } from "./nand.ts";

/** Lane 0: every item and all commits. Lane 1: second copies of critical items. */
const LANE_MAIN = 0;
const LANE_MIRROR = 1;
const LANES = 2;
/** Blocks kept out of the capacity: two open lanes plus garbage-collection headroom. */
export const RESERVE_BLOCKS = 4;
/** Collect garbage until at least this many blocks are free (besides what a commit needs). */
export const GC_LOW_WATER = 2;
/** Share of the remaining data area that live items may fill (GC needs the rest to be efficient). */
export const FILL_NUMERATOR = 3;
export const FILL_DENOMINATOR = 4;
/** ECC corrections in one block before it is scrubbed (its live items relocated, the block erased). */
export const SCRUB_THRESHOLD = 3;
/** Static wear levelling moves the coldest block once max - min erase count exceeds this. */
export const WEAR_LEVEL_DELTA = 8;
/** After a mount, versions and frames restart this far above the largest seen (nonce safety). */
export const SEQUENCE_GAP_AFTER_MOUNT = 1 << 22;
/** A store's format id when the caller gives none. */
export const DEFAULT_FORMAT_ID = 1;

const KEY_CHECK_LABEL = new TextEncoder().encode("ukeysim flash key check v1");

/**
 * Memo of decryptions for campaigns that mount thousands of forks of one chip with one key:
 * plaintext by (version, fragment), trusted only when the CRC-32 of the (already verified) ciphertext matches.
 * Create one per data key; never share across keys.
 */
export class DecryptCache {
  readonly plain = new Map<number, { crc: number; plain: Uint8Array }>();
  readonly keyChecks = new Map<number, Uint8Array>();
  /** Entries kept before the cache is cleared (bounds memory). */
  static readonly LIMIT = 1 << 16;
}

export interface FlashStoreOptions {
  /** The 16-byte data key (SM4). */
  key: Uint8Array;
  /** Optional memo for campaigns (see DecryptCache). */
  cache?: DecryptCache;
  /** Refuse every commit (inspection); default false. */
  readOnly?: boolean;
  /** Static wear-levelling threshold (max - min erase count); default WEAR_LEVEL_DELTA. */
  wearLevelDelta?: number;
}

export interface FormatOptions extends FlashStoreOptions {
  formatId?: number;
}

/** What the store knows about its flash, beyond the RecordStore stats. */
export interface FlashStats {
  geometry: Geometry;
  goodBlocks: number;
  badBlocks: number[];
  freeBlocks: number;
  eraseCounts: number[];
  eraseMin: number;
  eraseMax: number;
  eraseMean: number;
  eccCorrections: number;
  eccUncorrectable: number;
  gcRuns: number;
  scrubs: number;
  itemsRelocated: number;
  repairs: number;
  lostItems: number;
  capacityBytes: number;
  liveBytes: number;
  payloadBytesWritten: number;
}

interface ItemRef {
  kind: number;
  flags: number;
  type: number;
  id: number;
  fragIndex: number;
  fragCount: number;
  length: number;
  version: number;
  frame: number;
  block: number;
  page: number;
  offset: number;
  /** Commit items: reclaimed-record total. */
  extra: number;
}

const enum BlockState { Free, Active, Sealed, Unsealed, Bad }

interface BlockInfo {
  state: BlockState;
  lane: number;
  eraseCount: number;
  /** Known to be fully erased (so it may be used without another erase). */
  clean: boolean;
  nextPage: number;
  /** Every item in the block (live or not), in write order; read-only view (use pushItem). */
  items: readonly ItemRef[];
  liveCost: number;
  corrections: number;
}

const NO_ITEMS: readonly ItemRef[] = Object.freeze([]);
/** The payload of tombstones and marks (never written to). */
const EMPTY_PAYLOAD = new Uint8Array(0);

/**
 * Per-block state as parallel typed arrays (struct of arrays): 1024 small objects per
 * device cost ~130 KiB, the arrays ~20 KiB. `BlockView` gives the object-shaped access.
 */
class BlockTable {
  readonly state: Uint8Array;
  readonly lane: Uint8Array;
  readonly eraseCount: Int32Array;
  readonly clean: Uint8Array;
  readonly nextPage: Uint16Array;
  readonly liveCost: Float64Array;
  readonly corrections: Uint32Array;
  readonly items: (ItemRef[] | undefined)[];
  /**
   * Blocks in state Free and in state Bad. Invariant: always equal to a count over `state`
   * (every state change goes through setState), so commits do not scan the table for them.
   */
  freeCount: number;
  badCount = 0;

  constructor(readonly length: number) {
    this.freeCount = length; // a new table is all Free (BlockState.Free = 0)
    this.state = new Uint8Array(length);
    this.lane = new Uint8Array(length);
    this.eraseCount = new Int32Array(length);
    this.clean = new Uint8Array(length);
    this.nextPage = new Uint16Array(length);
    this.liveCost = new Float64Array(length);
    this.corrections = new Uint32Array(length);
    this.items = new Array<ItemRef[] | undefined>(length);
  }

  setState(b: number, v: BlockState): void {
    const old = this.state[b] as BlockState;
    if (old === v) return;
    if (old === BlockState.Free) this.freeCount--;
    else if (old === BlockState.Bad) this.badCount--;
    if (v === BlockState.Free) this.freeCount++;
    else if (v === BlockState.Bad) this.badCount++;
    this.state[b] = v;
  }
}

class BlockView implements BlockInfo {
  constructor(private readonly t: BlockTable, readonly index: number) {}
  get state(): BlockState { return this.t.state[this.index] as BlockState; }
  set state(v: BlockState) { this.t.setState(this.index, v); }
  get lane(): number { return this.t.lane[this.index] as number; }
  set lane(v: number) { this.t.lane[this.index] = v; }
  get eraseCount(): number { return this.t.eraseCount[this.index] as number; }
  set eraseCount(v: number) { this.t.eraseCount[this.index] = v; }
  get clean(): boolean { return this.t.clean[this.index] === 1; }
  set clean(v: boolean) { this.t.clean[this.index] = v ? 1 : 0; }
  get nextPage(): number { return this.t.nextPage[this.index] as number; }
  set nextPage(v: number) { this.t.nextPage[this.index] = v; }
  get items(): readonly ItemRef[] { return this.t.items[this.index] ?? NO_ITEMS; }
  set items(v: readonly ItemRef[]) { this.t.items[this.index] = v.length ? (v as ItemRef[]) : undefined; }
  get liveCost(): number { return this.t.liveCost[this.index] as number; }
  set liveCost(v: number) { this.t.liveCost[this.index] = v; }
  get corrections(): number { return this.t.corrections[this.index] as number; }
  set corrections(v: number) { this.t.corrections[this.index] = v; }
  pushItem(ref: ItemRef): void {
    const list = this.t.items[this.index];
    if (list) list.push(ref);
    else this.t.items[this.index] = [ref];
  }
}

interface Rec {
  type: number;
  id: number;
  kind: number; // ITEM_PUT or ITEM_TOMBSTONE
  version: number;
  length: number;
  /** copies[c][frag]: the item refs of copy c (c = 1 only for critical types). */
  copies: ItemRef[][];
  /** The live mark items (one per copy), or null. */
  mark: ItemRef[] | null;
}

interface LaneWriter {
  block: number;
  pending: { ref: ItemRef; bytes: Uint8Array }[];
  pendingSlots: number;
}

interface KeyState {
  exists: boolean;
  length: number;
  marked: boolean;
  tomb: boolean;
  /** Version of the mark (rollover takes the oldest first). */
  order: number;
}

interface PlannedItem {
  kind: number;
  type: number;
  id: number;
  flags: number;
  version: number;
  value?: Uint8Array;
}

const keyOf = (type: number, id: number): number => type * 0x1_0000_0000 + id;
/** The second-copy slot of a non-critical record: always empty, never written. */
const NO_COPY: ItemRef[] = Object.freeze([]) as unknown as ItemRef[];

function newRec(type: number, id: number, kind: number, version: number): Rec {
  return { type, id, kind, version, length: 0, copies: [[], type < CRITICAL_TYPE_LIMIT ? [] : NO_COPY], mark: null };
}
/** newRec(...) with `ref` (fragment 0 of a copy the type has) already in its copy slot. */
function newRecFrom(ref: ItemRef, kind: number): Rec {
  const first = [ref];
  const copies = copyIndex(ref) === 0 ? [first, ref.type < CRITICAL_TYPE_LIMIT ? [] : NO_COPY] : [[], first];
  return { type: ref.type, id: ref.id, kind, version: ref.version, length: 0, copies, mark: null };
}
const copiesFor = (type: number): number => (type < CRITICAL_TYPE_LIMIT ? 2 : 1);
const copyIndex = (ref: ItemRef): number => (ref.flags & FLAG_COPY2 ? 1 : 0);

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`flash store invariant violated: ${message}`);
}

function checkDataKey(key: unknown): asserts key is Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== SM4_KEY_BYTES) {
    throw new StoreError("BAD_KEY", `the data key must be a Uint8Array of ${SM4_KEY_BYTES} bytes, got ${key instanceof Uint8Array ? `${key.length} bytes` : typeof key}`);
  }
}

function keyCheckValue(key: Uint8Array, formatId: number): Uint8Array {
  const msg = new Uint8Array(KEY_CHECK_LABEL.length + 4);
  msg.set(KEY_CHECK_LABEL);
  writeU32(msg, KEY_CHECK_LABEL.length, formatId);
  return hmacSm3(key, msg).slice(0, KEY_CHECK_BYTES);
}

export class FlashStore implements RecordStore {
  private readonly g: Geometry;
  private readonly pageTotal: number;
  private readonly slotsPerPage: number;
  private readonly summaryPerPage: number;
  private readonly maxFragment: number;
  private readonly table: BlockTable;
  private readonly recs = new KeyMap<Rec>();
  private readonly frameLive = new Map<number, number>();
  /** The commit item honoured for each frame that still has live items. */
  private readonly commits = new Map<number, ItemRef>();
  /** PUT and MARK items on flash per key (live or dead): a tombstone stays while any exist elsewhere. */
  private readonly keyEntries = new KeyMap<number>();
  private readonly lanes: LaneWriter[] = [];
  private readonly gcQueue = new Set<number>();
  private readonly repairQueue = new Set<number>();
  private readonly pageCache = new Map<number, Uint8Array>();
  private nextVersion = 1;
  private nextFrame = 1;
  private nextBlockSeq = 1;
  private reclaimedTotal = 0;
  private liveCost = 0;
  private poisoned = false;
  private readonly counters = { eccCorrections: 0, eccUncorrectable: 0, gcRuns: 0, scrubs: 0, itemsRelocated: 0, repairs: 0, lostItems: 0, payloadBytesWritten: 0 };
  private readonly wearLevelDelta: number;

  private constructor(
    readonly chip: NandChip,
    private readonly key: Uint8Array | null,
    private formatId: number,
    private readonly readOnly: boolean,
    wearLevelDelta: number,
    private readonly cache: DecryptCache | null = null,
  ) {
    this.g = chip.geometry;
    this.table = new BlockTable(this.g.blocks);
    this.pageTotal = pageTotalBytes(this.g);
    this.slotsPerPage = Math.floor((this.g.pageBytes - PAGE_HEADER_BYTES) / SLOT_BYTES);
    this.summaryPerPage = Math.floor((this.g.pageBytes - PAGE_HEADER_BYTES) / SUMMARY_ENTRY_BYTES);
    this.maxFragment = this.slotsPerPage * SLOT_BYTES - ITEM_HEADER_BYTES;
    assert(this.maxFragment > 0 && this.summaryPerPage > 0, "page too small for the store");
    this.wearLevelDelta = wearLevelDelta;
    for (let lane = 0; lane < LANES; lane++) this.lanes.push({ block: -1, pending: [], pendingSlots: 0 });
  }

  // ---- format and mount --------------------------------------------------------------------

  /** Erases every good block and writes an empty store. Not atomic: a cut during format leaves an unformatted chip. */
  static format(chip: NandChip, options: FormatOptions): FlashStore {
    checkDataKey(options.key);
    const formatId = options.formatId ?? DEFAULT_FORMAT_ID;
    if (!Number.isInteger(formatId) || formatId < 0 || formatId > 0xffff_ffff) throw new StoreError("BAD_IMAGE", `formatId must be a 32-bit unsigned integer, got ${formatId}`);
    const store = new FlashStore(chip, options.key, formatId, false, options.wearLevelDelta ?? WEAR_LEVEL_DELTA, options.cache ?? null);
    return store.guard(() => {
      for (let b = 0; b < chip.geometry.blocks; b++) {
        const info = store.block(b);
        let start: { bad: boolean; header: BlockHeader | null };
        try {
          start = store.readBlockStart(b);
        } catch (error) {
          if (!(error instanceof StoreError)) throw error;
          start = { bad: false, header: null };
        }
        if (start.bad) {
          info.state = BlockState.Bad;
          continue;
        }
        if (start.header) info.eraseCount = start.header.eraseCount;
        store.eraseOrRetire(b);
      }
      if (store.goodBlocks() < RESERVE_BLOCKS + GC_LOW_WATER + 1) throw new StoreError("BAD_GEOMETRY", `too few good blocks for a store: ${store.goodBlocks()}`);
      store.writeFrame([], 0);
      return store;
    });
  }

  /** Mounts the store on a chip; throws StoreError WRONG_KEY, BAD_IMAGE, BAD_GEOMETRY. */
  static mount(chip: NandChip, options: FlashStoreOptions): FlashStore {
    checkDataKey(options.key);
    const store = new FlashStore(chip, options.key, 0, options.readOnly ?? false, options.wearLevelDelta ?? WEAR_LEVEL_DELTA, options.cache ?? null);
    return store.guard(() => {
      store.load();
      if (!store.readOnly) store.repairCritical();
      return store;
    });
  }

  /** Mounts without the key, read-only: metadata only (counts, sizes, wear), never payloads. */
  static inspect(chip: NandChip): FlashStore {
    const store = new FlashStore(chip, null, 0, true, WEAR_LEVEL_DELTA);
    return store.guard(() => {
      store.load();
      return store;
    });
  }

  private load(): void {
    const all: ItemRef[] = [];
    let headers = 0;
    for (let b = 0; b < this.g.blocks; b++) {
      const info = this.block(b);
      info.eraseCount = -1;
      const start = this.readBlockStart(b);
      if (start.bad) {
        info.state = BlockState.Bad;
        continue;
      }
      const header = start.header;
      if (!header) continue;
      if (headers === 0) this.adoptFormat(header);
      else if (header.formatId !== this.formatId) continue; // a block of an older format: free
      headers++;
      info.eraseCount = header.eraseCount;
      info.lane = header.lane;
      this.nextBlockSeq = Math.max(this.nextBlockSeq, header.seq + 1);
      const sealed = this.readSummary(b);
      if (sealed) {
        info.state = BlockState.Sealed;
        info.items = sealed;
      } else {
        info.state = BlockState.Unsealed;
        info.items = this.scanBlock(b);
        this.gcQueue.add(b);
      }
      info.nextPage = this.g.pagesPerBlock;
      for (const ref of info.items) all.push(ref);
    }
    if (headers === 0) throw new StoreError("BAD_IMAGE", "no flash store on this chip (not formatted, or every block header is unreadable)");
    let maxKnown = 0;
    const counts = this.table.eraseCount;
    for (let b = 0; b < counts.length; b++) maxKnown = Math.max(maxKnown, counts[b] as number);
    for (let b = 0; b < counts.length; b++) if ((counts[b] as number) < 0) counts[b] = maxKnown; // unknown: assume the worst seen
    this.rebuildIndex(all);
  }

  private adoptFormat(header: BlockHeader): void {
    if (!sameGeometry(header.geometry, this.g)) {
      throw new StoreError("BAD_GEOMETRY", `the store was formatted for ${JSON.stringify(header.geometry)} but the chip is ${JSON.stringify(this.g)}`);
    }
    this.formatId = header.formatId;
    if (this.key) {
      const expected = this.keyCheck();
      for (let i = 0; i < KEY_CHECK_BYTES; i++) {
        if (expected[i] !== header.keyCheck[i]) throw new StoreError("WRONG_KEY", "the data key does not match this store (key check value differs)");
      }
    }
  }

  /** Builds the index from every item found on flash (any order). Hot on mount: no per-item allocation. */
  private rebuildIndex(all: ItemRef[]): void {
    let maxVersion = 0;
    let maxFrame = 0;
    const committed = new Set<number>();
    const relocatedCommits: ItemRef[] = [];
    for (const ref of all) {
      if (ref.frame > maxFrame) maxFrame = ref.frame;
      if (ref.kind === ITEM_COMMIT) {
        if (ref.version === ref.frame) committed.add(ref.frame);
        else relocatedCommits.push(ref);
      } else if (ref.version > maxVersion) {
        maxVersion = ref.version;
      }
    }
    for (let changed = true; changed; ) {
      changed = false;
      for (const ref of relocatedCommits) {
        if (committed.has(ref.frame) && !committed.has(ref.version)) {
          committed.add(ref.version);
          changed = true;
        }
      }
    }
    const marks = new KeyMap<ItemRef[]>();
    let lastFrame = -1;
    let lastCommitted = false;
    for (const ref of all) {
      const kind = ref.kind;
      if (ref.frame !== lastFrame) {
        lastFrame = ref.frame;
        lastCommitted = committed.has(lastFrame);
      }
      if (kind === ITEM_COMMIT) {
        if (lastCommitted && ref.extra > this.reclaimedTotal) this.reclaimedTotal = ref.extra;
        continue;
      }
      if (!lastCommitted) continue;
      if (kind === ITEM_MARK) {
        const m = marks.getTI(ref.type, ref.id);
        if (!m || (m[0] as ItemRef).version < ref.version) marks.setTI(ref.type, ref.id, [ref]);
        else if ((m[0] as ItemRef).version === ref.version && !m.some((x) => copyIndex(x) === copyIndex(ref))) m.push(ref);
        continue;
      }
      const index = kind === ITEM_PUT ? ref.fragIndex : 0;
      let rec = this.recs.getTI(ref.type, ref.id);
      if (!rec || rec.version < ref.version) {
        if (index === 0 && (copyIndex(ref) === 0 || ref.type < CRITICAL_TYPE_LIMIT)) {
          // The common first item of a record: an exact one-element array, not an empty one
          // grown on first store (V8 grows [] to 16 slots; mount makes one per record).
          this.recs.setTI(ref.type, ref.id, newRecFrom(ref, kind));
          continue;
        }
        rec = newRec(ref.type, ref.id, kind, ref.version);
        this.recs.setTI(ref.type, ref.id, rec);
      }
      if (rec.version !== ref.version || rec.kind !== kind) continue;
      const slot = rec.copies[copyIndex(ref)] as ItemRef[];
      if (!slot[index]) slot[index] = ref;
    }
    // Live accounting in bulk: refs of one frame mostly come together, so count runs locally.
    let runFrame = -1;
    let runCount = 0;
    const liveCosts = this.table.liveCost;
    let total = 0;
    const live = (r: ItemRef) => {
      if (r.frame !== runFrame) {
        if (runCount) this.frameLive.set(runFrame, (this.frameLive.get(runFrame) ?? 0) + runCount);
        runFrame = r.frame;
        runCount = 0;
      }
      runCount++;
      const cost = this.refCost(r);
      (liveCosts[r.block] as number) += cost;
      total += cost;
    };
    for (let type = 0; type <= RECORD_TYPE_MAX; type++) {
      const inner = this.recs.ofType(type);
      if (!inner) continue;
      for (const rec of inner.values()) {
        if (rec.kind === ITEM_PUT) {
          rec.length = recordLength(rec);
          const m = marks.getTI(rec.type, rec.id);
          if (m && (m[0] as ItemRef).version > rec.version) rec.mark = m;
        }
        for (const copy of rec.copies) for (const r of copy) if (r) live(r);
        if (rec.mark) for (const r of rec.mark) live(r);
      }
    }
    if (runCount) this.frameLive.set(runFrame, (this.frameLive.get(runFrame) ?? 0) + runCount);
    this.liveCost += total;
    // Commits: every frame with live items needs its commit; a relocated commit keeps its carrier alive.
    const byFrame = new Map<number, ItemRef>();
    for (const ref of all) {
      if (ref.kind !== ITEM_COMMIT || !committed.has(ref.frame)) continue;
      const have = byFrame.get(ref.version);
      if (!have || (have.version !== have.frame && ref.version === ref.frame)) byFrame.set(ref.version, ref);
    }
    const work = [...this.frameLive.keys()];
    while (work.length) {
      const frame = work.pop() as number;
      if (this.commits.has(frame)) continue;
      const c = byFrame.get(frame);
      assert(c !== undefined, `frame ${frame} has live items but no commit`);
      this.commits.set(frame, c);
      if (c.frame !== frame) {
        const before = this.frameLive.get(c.frame) ?? 0;
        this.addLive(c);
        if (before === 0) work.push(c.frame);
      }
    }
    this.nextVersion = maxVersion + SEQUENCE_GAP_AFTER_MOUNT;
    this.nextFrame = maxFrame + SEQUENCE_GAP_AFTER_MOUNT;
  }

  /** Critical records whose copies are not both readable are rewritten (the other copy repairs them). */
  private repairCritical(): void {
    // Only critical types have two copies: visit just those (same order as iterating
    // this.recs, which goes type by type), not every record of the device.
    for (let type = 0; type < CRITICAL_TYPE_LIMIT; type++) {
      const inner = this.recs.ofType(type);
      if (!inner) continue;
      for (const rec of inner.values()) {
        if (rec.kind !== ITEM_PUT) continue;
        if (!this.copyReadable(rec, 0) || !this.copyReadable(rec, 1)) this.repairQueue.add(keyOf(rec.type, rec.id));
      }
    }
    if (this.repairQueue.size) this.runRepairs();
  }

  private runRepairs(): void {
    for (const key of [...this.repairQueue]) {
      this.repairQueue.delete(key);
      const rec = this.recs.get(key);
      if (!rec || rec.kind !== ITEM_PUT) continue;
      let value: Uint8Array | undefined;
      try {
        value = this.get(rec.type, rec.id);
      } catch (error) {
        if (error instanceof StoreError && error.code === "CORRUPT") continue; // nothing good left to copy
        throw error;
      }
      if (!value) continue;
      const wasMarked = rec.mark !== null;
      const ops: TxOp[] = [{ kind: "put", type: rec.type, id: rec.id, value }];
      if (wasMarked) ops.push({ kind: "reclaimable", type: rec.type, id: rec.id });
      try {
        this.commitInner(ops);
      } catch (error) {
        // No room to repair now: the record is still readable from its good copy; retry later.
        if (error instanceof StoreError && error.code === "STORAGE_FULL") {
          this.repairQueue.add(key);
          return;
        }
        throw error;
      }
      this.counters.repairs++;
    }
  }

  // ---- RecordStore --------------------------------------------------------------------------

  get(type: number, id: number): Uint8Array | undefined {
    return this.guard(() => {
      const rec = this.recs.get(keyOf(type, id));
      if (!rec || rec.kind !== ITEM_PUT) return undefined;
      if (!this.key) throw new StoreError("READ_ONLY", "this store was opened for inspection without a key: payloads are not readable");
      for (let c = 0; c < copiesFor(rec.type); c++) {
        const value = this.readCopy(rec, c);
        if (value) {
          if (c > 0) this.repairQueue.add(keyOf(type, id)); // the first copy is bad: rewrite both
          return value;
        }
      }
      throw new StoreError("CORRUPT", `record ${type}/${id}: every copy is unreadable (uncorrectable flash errors)`);
    });
  }

  ids(type: number): number[] {
    const out: number[] = [];
    const inner = this.recs.ofType(type);
    if (inner) for (const rec of inner.values()) if (rec.kind === ITEM_PUT) out.push(rec.id);
    return out.sort((a, b) => a - b);
  }

  isReclaimable(type: number, id: number): boolean {
    const rec = this.recs.get(keyOf(type, id));
    return !!rec && rec.kind === ITEM_PUT && rec.mark !== null;
  }

  commit(ops: readonly TxOp[]): void {
    this.guard(() => {
      if (this.readOnly) throw new StoreError("READ_ONLY", "the store is read-only (opened for inspection)");
      checkTransaction(ops);
      for (const op of ops) if (op.kind === "put" && !(op.value instanceof Uint8Array)) throw new StoreError("BAD_KEY", `record ${op.type}/${op.id}: value must be a Uint8Array`);
      if (this.repairQueue.size) this.runRepairs();
      this.commitInner(ops);
    });
  }

  stats(): StoreStats {
    const recordsByType: Record<number, number> = {};
    let records = 0;
    let reclaimableRecords = 0;
    let usedBytes = 0;
    let reclaimableBytes = 0;
    for (const rec of this.recs.values()) {
      if (rec.kind !== ITEM_PUT) continue;
      records++;
      recordsByType[rec.type] = (recordsByType[rec.type] ?? 0) + 1;
      usedBytes += rec.length;
      if (rec.mark) {
        reclaimableRecords++;
        reclaimableBytes += rec.length;
      }
    }
    return {
      records, recordsByType, reclaimableRecords, reclaimedRecords: this.reclaimedTotal,
      freeBytes: Math.max(0, this.capacityCost() - this.liveCost), usedBytes, reclaimableBytes,
      eccCorrections: this.counters.eccCorrections,
    };
  }

  flashStats(): FlashStats {
    const eraseCounts = [...this.table.eraseCount];
    const goodIndex = eraseCounts.flatMap((_, b) => (this.table.state[b] !== BlockState.Bad ? [b] : []));
    const good = goodIndex;
    const scannedFree = eraseCounts.filter((_, b) => this.table.state[b] === BlockState.Free).length;
    assert(this.table.freeCount === scannedFree && this.table.badCount === eraseCounts.length - good.length, "free/bad block counts differ from the state table");
    const goodCounts = goodIndex.map((b) => eraseCounts[b] as number);
    const sum = goodCounts.reduce((a, b) => a + b, 0);
    return {
      geometry: this.g,
      goodBlocks: good.length,
      badBlocks: eraseCounts.flatMap((_, b) => (this.table.state[b] === BlockState.Bad ? [b] : [])),
      freeBlocks: this.freeBlockCount(),
      eraseCounts,
      eraseMin: goodCounts.length ? Math.min(...goodCounts) : 0,
      eraseMax: goodCounts.length ? Math.max(...goodCounts) : 0,
      eraseMean: goodCounts.length ? sum / goodCounts.length : 0,
      ...this.counters,
      capacityBytes: this.capacityCost(),
      liveBytes: this.liveCost,
    };
  }

  /** Where the copies of a record live (diagnostics and tests): one entry per fragment per copy. */
  locations(type: number, id: number): { copy: number; fragment: number; block: number; page: number; lane: number }[] {
    const rec = this.recs.get(keyOf(type, id));
    if (!rec || rec.kind !== ITEM_PUT) return [];
    const out: { copy: number; fragment: number; block: number; page: number; lane: number }[] = [];
    rec.copies.forEach((frags, copy) => frags.forEach((r) => out.push({ copy, fragment: r.fragIndex, block: r.block, page: r.page, lane: this.block(r.block).lane })));
    return out;
  }

  /** Runs pending maintenance now: relocation of blocks left open by a cut, scrubs, repairs. */
  maintain(): void {
    this.guard(() => {
      if (this.readOnly) return;
      if (this.repairQueue.size) this.runRepairs();
      while (this.gcQueue.size) if (!this.gcOne()) break;
    });
  }

  // ---- commit -------------------------------------------------------------------------------

  private commitInner(ops: readonly TxOp[]): void {
    const { items, delta } = this.plan(ops);
    if (items.length === 0) return;
    const rolled = this.rollover(items, delta);
    this.levelWear();
    this.ensureFree(this.blocksFor(items));
    const reclaimedBefore = this.reclaimedTotal;
    try {
      this.writeFrame(items, rolled);
    } catch (error) {
      // Nothing of the frame is committed; forget what was staged so RAM matches flash.
      this.reclaimedTotal = reclaimedBefore;
      for (const w of this.lanes) {
        w.pending = [];
        w.pendingSlots = 0;
      }
      throw error;
    }
  }

  /** Static wear levelling: when the erase-count spread passes the bound, collect the coldest sealed block. */
  private levelWear(): void {
    if (this.freeBlockCount() <= GC_LOW_WATER) return;
    let minEc = Infinity;
    let maxEc = -Infinity;
    let coldest = -1;
    const { state, eraseCount } = this.table;
    for (let b = 0; b < this.g.blocks; b++) {
      const st = state[b] as BlockState;
      if (st === BlockState.Bad) continue;
      const ec = eraseCount[b] as number;
      if (ec > maxEc) maxEc = ec;
      if (st === BlockState.Sealed && ec < minEc) {
        minEc = ec;
        coldest = b;
      }
    }
    if (coldest < 0 || maxEc - minEc <= this.wearLevelDelta) return;
    this.collect(coldest);
  }

  /** Turns ops into items (in version order) and the change in live cost they cause. */
  private plan(ops: readonly TxOp[]): { items: PlannedItem[]; delta: number } {
    this.overlay.clear();
    const baseline = new Map<number, KeyState>();
    const stateOf = (type: number, id: number): KeyState => {
      const key = keyOf(type, id);
      let s = this.overlay.get(key);
      if (!s) {
        s = this.baselineOf(key);
        baseline.set(key, { ...s });
        this.overlay.set(key, s);
      }
      return s;
    };
    const items: PlannedItem[] = [];
    let version = this.nextVersion;
    for (const op of ops) {
      const s = stateOf(op.type, op.id);
      if (op.kind === "put") {
        items.push({ kind: ITEM_PUT, type: op.type, id: op.id, flags: 0, version: version++, value: op.value.slice() });
        Object.assign(s, { exists: true, length: op.value.length, marked: false, tomb: false, order: 0 });
      } else if (op.kind === "delete") {
        if (!s.exists) continue;
        items.push({ kind: ITEM_TOMBSTONE, type: op.type, id: op.id, flags: 0, version: version++ });
        Object.assign(s, { exists: false, length: 0, marked: false, tomb: true, order: 0 });
      } else {
        if (!s.exists || s.marked) continue;
        s.marked = true;
        s.order = version;
        items.push({ kind: ITEM_MARK, type: op.type, id: op.id, flags: 0, version: version++ });
      }
    }
    let delta = 0;
    for (const [key, after] of this.overlay) {
      const type = Math.floor(key / 0x1_0000_0000);
      delta += this.stateCost(type, after) - this.stateCost(type, baseline.get(key) as KeyState);
    }
    return { items, delta };
  }

  /** Per-key state while a transaction is planned. */
  private readonly overlay = new KeyMap<KeyState>();

  private baselineOf(key: number): KeyState {
    const rec = this.recs.get(key);
    return { exists: rec?.kind === ITEM_PUT, length: rec?.length ?? 0, marked: rec?.mark != null, tomb: rec?.kind === ITEM_TOMBSTONE, order: rec?.mark ? (rec.mark[0] as ItemRef).version : 0 };
  }

  private stateCost(type: number, s: KeyState): number {
    const copies = copiesFor(type);
    if (s.exists) return copies * (this.putCost(s.length) + (s.marked ? this.itemCost(0) : 0));
    return s.tomb ? copies * this.itemCost(0) : 0;
  }

  /** Adds rollover tombstones (oldest mark first) until the live cost fits; returns how many. */
  private rollover(items: PlannedItem[], delta: number): number {
    const capacity = this.capacityCost();
    if (this.liveCost + delta <= capacity) return 0;
    const candidates: { key: number; type: number; id: number; order: number }[] = [];
    for (const [key, rec] of this.recs) {
      const s = this.overlay.get(key) ?? (rec.mark ? this.baselineOf(key) : undefined);
      if (s && s.exists && s.marked) candidates.push({ key, type: rec.type, id: rec.id, order: s.order });
    }
    for (const [key, s] of this.overlay) {
      if (this.recs.has(key) || !s.exists || !s.marked) continue;
      candidates.push({ key, type: Math.floor(key / 0x1_0000_0000), id: key % 0x1_0000_0000, order: s.order });
    }
    candidates.sort((a, b) => a.order - b.order);
    let version = items.length ? (items[items.length - 1] as PlannedItem).version + 1 : this.nextVersion;
    let count = 0;
    for (const c of candidates) {
      if (this.liveCost + delta <= capacity) break;
      const before = this.overlay.get(c.key) ?? this.baselineOf(c.key);
      const after: KeyState = { exists: false, length: 0, marked: false, tomb: true, order: 0 };
      delta += this.stateCost(c.type, after) - this.stateCost(c.type, before);
      this.overlay.set(c.key, after);
      items.push({ kind: ITEM_TOMBSTONE, type: c.type, id: c.id, flags: FLAG_ROLLOVER, version: version++ });
      count++;
    }
    if (this.liveCost + delta > capacity) {
      throw new StoreError("STORAGE_FULL", `storage full: the transaction needs ${delta} more bytes of flash, ${Math.max(0, capacity - this.liveCost)} are free and nothing reclaimable is left`);
    }
    return count;
  }

  /** Writes a frame: lane-1 copies, then lane-0 items and the commit; then updates the index. */
  private writeFrame(items: PlannedItem[], rolled: number): void {
    const frame = this.nextFrame++;
    const written: ItemRef[] = [];
    // Both copies of a critical fragment have the same counter block (version, fragment), so
    // the same ciphertext: encrypt each fragment once, for whichever lane writes it first.
    const ciphers = new Map<PlannedItem, Uint8Array[]>();
    for (const lane of [LANE_MIRROR, LANE_MAIN]) {
      for (const item of items) {
        const copies = copiesFor(item.type);
        if (lane === LANE_MIRROR && copies < 2) continue;
        const flags = item.flags | (lane === LANE_MIRROR ? FLAG_COPY2 : 0);
        if (item.kind === ITEM_PUT) {
          const value = item.value as Uint8Array;
          let frags = ciphers.get(item);
          if (!frags) ciphers.set(item, (frags = this.encryptFragments(item.version, value)));
          for (let f = 0; f < frags.length; f++) {
            written.push(this.addItem(lane, { kind: ITEM_PUT, flags, type: item.type, id: item.id, fragIndex: f, fragCount: frags.length, version: item.version, frame }, frags[f] as Uint8Array));
          }
          if (lane === LANE_MAIN) this.counters.payloadBytesWritten += value.length;
        } else {
          written.push(this.addItem(lane, { kind: item.kind, flags, type: item.type, id: item.id, fragIndex: 0, fragCount: 1, version: item.version, frame }, EMPTY_PAYLOAD));
        }
      }
      if (lane === LANE_MIRROR) this.flush(LANE_MIRROR);
    }
    this.reclaimedTotal += rolled;
    const commit = this.addCommit(LANE_MAIN, frame, frame);
    this.flush(LANE_MAIN);
    // Committed. A frame with critical items also gets a copy of its commit in lane 1, so
    // losing the lane-0 commit page to an uncorrectable error does not lose the frame.
    if (items.some((it) => copiesFor(it.type) > 1)) {
      this.addCommit(LANE_MIRROR, frame, frame);
      this.flush(LANE_MIRROR);
    }
    // Durable: apply to the index.
    if (items.length) this.nextVersion = (items[items.length - 1] as PlannedItem).version + 1;
    this.applyWritten(written);
    if (this.frameLive.has(frame)) this.commits.set(frame, commit);
  }

  /** The ciphertext of each fragment of a record value (at least one fragment, maybe empty). */
  private encryptFragments(version: number, value: Uint8Array): Uint8Array[] {
    const count = Math.max(1, Math.ceil(value.length / this.maxFragment));
    const out: Uint8Array[] = [];
    for (let f = 0; f < count; f++) out.push(this.encrypt(version, f, value.subarray(f * this.maxFragment, Math.min(value.length, (f + 1) * this.maxFragment))));
    return out;
  }

  /** Applies durable items to the index, in version order (lane-1 copies were written first). */
  private applyWritten(written: ItemRef[]): void {
    const groups = new Map<number, ItemRef[]>();
    for (const ref of written) {
      const g = groups.get(ref.version);
      if (g) g.push(ref);
      else groups.set(ref.version, [ref]);
    }
    for (const version of [...groups.keys()].sort((a, b) => a - b)) this.applyGroup(groups.get(version) as ItemRef[]);
  }

  private applyGroup(refs: ItemRef[]): void {
    const first = refs[0] as ItemRef;
    const key = keyOf(first.type, first.id);
    for (const r of refs) if (r.kind === ITEM_PUT || r.kind === ITEM_MARK) this.bumpKeyEntries(key, 1);
    const old = this.recs.get(key);
    if (first.kind === ITEM_MARK) {
      assert(old !== undefined && old.kind === ITEM_PUT && old.mark === null, "mark on a missing or marked record");
      old.mark = refs;
      for (const r of refs) this.addLive(r);
      return;
    }
    const rec = newRec(first.type, first.id, first.kind, first.version);
    for (const r of refs) (rec.copies[copyIndex(r)] as ItemRef[])[r.kind === ITEM_PUT ? r.fragIndex : 0] = r;
    if (rec.kind === ITEM_PUT) rec.length = recordLength(rec);
    this.recs.set(key, rec);
    for (const r of liveRefs(rec)) this.addLive(r);
    if (old) for (const r of liveRefs(old)) this.dropLive(r);
  }

  // ---- live accounting -------------------------------------------------------------------------

  private addLive(ref: ItemRef): void {
    this.frameLive.set(ref.frame, (this.frameLive.get(ref.frame) ?? 0) + 1);
    const cost = this.refCost(ref);
    (this.table.liveCost[ref.block] as number) += cost;
    this.liveCost += cost;
  }

  private dropLive(ref: ItemRef): void {
    const n = (this.frameLive.get(ref.frame) ?? 0) - 1;
    assert(n >= 0, `frame ${ref.frame} live count below zero`);
    const cost = this.refCost(ref);
    (this.table.liveCost[ref.block] as number) -= cost;
    this.liveCost -= cost;
    if (n > 0) {
      this.frameLive.set(ref.frame, n);
      return;
    }
    this.frameLive.delete(ref.frame);
    const c = this.commits.get(ref.frame);
    this.commits.delete(ref.frame);
    if (c && c.frame !== ref.frame) this.dropLive(c);
  }

  private refCost(ref: ItemRef): number {
    return ref.kind === ITEM_PUT ? this.itemCost(ref.length) : this.itemCost(ref.kind === ITEM_COMMIT ? COMMIT_PAYLOAD_BYTES : 0);
  }

  private itemCost(payload: number): number {
    return slotsFor(ITEM_HEADER_BYTES + payload) * SLOT_BYTES + SUMMARY_ENTRY_BYTES;
  }

  private putCost(length: number): number {
    const frags = Math.max(1, Math.ceil(length / this.maxFragment));
    let cost = 0;
    for (let f = 0; f < frags; f++) cost += this.itemCost(Math.min(this.maxFragment, length - f * this.maxFragment));
    return cost;
  }

  /**
   * keyEntries is built lazily, the first time garbage collection meets a tombstone (mount
   * does not pay for it): a full count over the blocks' item lists, then kept incrementally.
   * Both give the same numbers: every item on flash that the store knows of is in the item
   * list of its block, and a list is emptied exactly when its block is erased or retired.
   */
  private keyEntriesReady = false;

  private ensureKeyEntries(): void {
    if (this.keyEntriesReady) return;
    this.keyEntries.clear();
    for (let b = 0; b < this.g.blocks; b++) {
      for (const ref of this.block(b).items) {
        if (ref.kind === ITEM_PUT || ref.kind === ITEM_MARK) this.keyEntries.setTI(ref.type, ref.id, (this.keyEntries.getTI(ref.type, ref.id) ?? 0) + 1);
      }
    }
    this.keyEntriesReady = true;
  }

  private bumpKeyEntries(key: number, by: number): void {
    if (!this.keyEntriesReady) return;
    const n = (this.keyEntries.get(key) ?? 0) + by;
    if (n > 0) this.keyEntries.set(key, n);
    else this.keyEntries.delete(key);
  }

  private block(b: number): BlockView {
    return new BlockView(this.table, b);
  }

  private goodBlocks(): number {
    return this.table.length - this.table.badCount;
  }

  private freeBlockCount(): number {
    return this.table.freeCount;
  }

  /** Flash the live items may use: good blocks less the reserve, data pages only, times the fill factor. */
  private capacityCost(): number {
    const dataPages = this.g.pagesPerBlock - 2; // block header page and summary rounding
    const blocks = Math.max(0, this.goodBlocks() - RESERVE_BLOCKS);
    return Math.floor((blocks * dataPages * this.slotsPerPage * SLOT_BYTES * FILL_NUMERATOR) / FILL_DENOMINATOR);
  }

  private blocksFor(items: PlannedItem[]): number {
    let bytes = 0;
    for (const it of items) bytes += (it.value ? this.putCost(it.value.length) : this.itemCost(0)) * copiesFor(it.type);
    const perBlock = (this.g.pagesPerBlock - 2) * this.slotsPerPage * SLOT_BYTES;
    return Math.ceil(bytes / perBlock) + LANES;
  }

  // ---- garbage collection -----------------------------------------------------------------------

  private ensureFree(needed: number): void {
    let stalls = 0;
    const limit = this.g.blocks * 4;
    for (let i = 0; i < limit && this.gcQueue.size > 0 && this.freeBlockCount() >= GC_LOW_WATER; i++) if (!this.gcOne()) break;
    for (let i = 0; i < limit && this.freeBlockCount() < needed + GC_LOW_WATER; i++) {
      const before = this.freeBlockCount();
      if (!this.gcOne()) break;
      if (this.freeBlockCount() <= before) {
        if (++stalls > this.g.blocks) break;
      } else stalls = 0;
    }
    if (this.freeBlockCount() < needed) throw new StoreError("STORAGE_FULL", `storage full: garbage collection cannot free ${needed} blocks (${this.freeBlockCount()} free)`);
  }

  private isActive(b: number): boolean {
    return this.lanes.some((l) => l.block === b);
  }

  private pickVictim(): number {
    for (const b of this.gcQueue) {
      const info = this.block(b);
      if (info.state === BlockState.Bad || info.state === BlockState.Free) {
        this.gcQueue.delete(b);
        continue;
      }
      if (!this.isActive(b)) return b;
    }
    let minEc = Infinity;
    let maxEc = -Infinity;
    let coldest = -1;
    let best = -1;
    let bestCost = Infinity;
    const { state, eraseCount, liveCost } = this.table;
    for (let b = 0; b < this.g.blocks; b++) {
      const st = state[b] as BlockState;
      if (st === BlockState.Bad) continue;
      const ec = eraseCount[b] as number;
      maxEc = Math.max(maxEc, ec);
      if (st !== BlockState.Sealed) continue;
      if (ec < minEc) {
        minEc = ec;
        coldest = b;
      }
      const cost = liveCost[b] as number;
      if (cost < bestCost || (cost === bestCost && ec < (eraseCount[best] as number))) {
        bestCost = cost;
        best = b;
      }
    }
    void coldest;
    void minEc;
    void maxEc;
    return best;
  }

  /** Collects one block; returns false when there is nothing to collect. */
  private gcOne(): boolean {
    const victim = this.pickVictim();
    if (victim < 0) return false;
    this.collect(victim);
    return true;
  }

  private collect(victim: number): void {
    this.gcQueue.delete(victim);
    // Invariant: some block always carries a valid header, or a cut during the erase below
    // could leave a chip that no longer looks formatted. An open lane block is such a block.
    if (this.lanes.every((l) => l.block < 0)) this.openBlock(LANE_MAIN);
    this.relocate(victim);
    this.counters.gcRuns++;
    if (this.retiring.delete(victim)) {
      const info = this.block(victim);
      this.forgetItems(info);
      this.pageCache.clear();
      this.chip.markBad(victim);
      info.state = BlockState.Bad;
      return;
    }
    this.eraseOrRetire(victim);
  }

  /** Copies the live items of `victim` into a new frame in its lane; the victim then holds nothing live. */
  private relocate(victim: number): void {
    const info = this.block(victim);
    const lane = info.lane;
    const frame = this.nextFrame++;
    const moves: { old: ItemRef; neo: ItemRef }[] = [];
    if (info.items.some((r) => r.kind === ITEM_TOMBSTONE)) this.ensureKeyEntries(); // before any relocation is written
    const putMarkHere = new Map<number, number>();
    for (const ref of info.items) if (ref.kind === ITEM_PUT || ref.kind === ITEM_MARK) putMarkHere.set(keyOf(ref.type, ref.id), (putMarkHere.get(keyOf(ref.type, ref.id)) ?? 0) + 1);
    for (const ref of info.items) {
      if (ref.kind === ITEM_COMMIT || !this.isLive(ref)) continue;
      const key = keyOf(ref.type, ref.id);
      if (ref.kind === ITEM_TOMBSTONE && (this.keyEntries.get(key) ?? 0) - (putMarkHere.get(key) ?? 0) <= 0) {
        this.dropTombstone(ref);
        continue;
      }
      const bytes = this.readItemBytes(ref) ?? this.otherCopyBytes(ref);
      if (!bytes) {
        this.counters.lostItems++;
        continue;
      }
      const neo = this.addItem(lane, { ...ref, frame }, bytes.subarray(ITEM_HEADER_BYTES));
      moves.push({ old: ref, neo });
    }
    // commits still needed by live items elsewhere
    for (const ref of info.items) {
      if (ref.kind !== ITEM_COMMIT || this.commits.get(ref.version) !== ref) continue;
      const stillNeeded = (this.frameLive.get(ref.version) ?? 0) - moves.filter((m) => m.old.frame === ref.version).length;
      if (stillNeeded <= 0) continue;
      moves.push({ old: ref, neo: this.addCommit(lane, ref.version, frame, ref.extra) });
    }
    if (moves.length === 0) return;
    const commit = this.addCommit(lane, frame, frame);
    this.flush(lane);
    for (const { old, neo } of moves) {
      if (neo.kind === ITEM_COMMIT) continue;
      this.replaceRef(old, neo);
      if (neo.kind === ITEM_PUT || neo.kind === ITEM_MARK) this.bumpKeyEntries(keyOf(neo.type, neo.id), 1);
    }
    for (const { old, neo } of moves) {
      if (neo.kind !== ITEM_COMMIT) continue;
      if (this.commits.get(old.version) !== old) continue;
      if (!this.frameLive.has(old.version)) continue;
      this.commits.set(old.version, neo);
      this.addLive(neo);
      if (old.frame !== old.version) this.dropLive(old);
    }
    if (this.frameLive.has(frame)) this.commits.set(frame, commit);
    this.counters.itemsRelocated += moves.length;
  }

  private isLive(ref: ItemRef): boolean {
    const rec = this.recs.get(keyOf(ref.type, ref.id));
    if (!rec) return false;
    if (ref.kind === ITEM_MARK) return rec.mark !== null && rec.mark.includes(ref);
    const copy = rec.copies[copyIndex(ref)] as ItemRef[];
    return copy[ref.kind === ITEM_PUT ? ref.fragIndex : 0] === ref;
  }

  private replaceRef(old: ItemRef, neo: ItemRef): void {
    const rec = this.recs.get(keyOf(old.type, old.id)) as Rec;
    if (old.kind === ITEM_MARK) {
      const m = rec.mark as ItemRef[];
      m[m.indexOf(old)] = neo;
    } else {
      (rec.copies[copyIndex(old)] as ItemRef[])[old.kind === ITEM_PUT ? old.fragIndex : 0] = neo;
    }
    this.addLive(neo);
    this.dropLive(old);
  }

  private dropTombstone(ref: ItemRef): void {
    const key = keyOf(ref.type, ref.id);
    const rec = this.recs.get(key) as Rec;
    const copy = rec.copies[copyIndex(ref)] as ItemRef[];
    copy.length = 0;
    this.dropLive(ref);
    if ((rec.copies[0] as ItemRef[]).length === 0 && (rec.copies[1] as ItemRef[]).length === 0) this.recs.delete(key);
  }

  private otherCopyBytes(ref: ItemRef): Uint8Array | null {
    const rec = this.recs.get(keyOf(ref.type, ref.id));
    if (!rec || copiesFor(ref.type) < 2) return null;
    const other = ref.kind === ITEM_MARK ? rec.mark?.find((r) => r !== ref) : (rec.copies[1 - copyIndex(ref)] as ItemRef[])[ref.kind === ITEM_PUT ? ref.fragIndex : 0];
    return other ? this.readItemBytes(other) : null;
  }

  /** Erases a block whose live items are gone; a failing erase retires it (bad-block marker). */
  private eraseOrRetire(b: number): void {
    const info = this.block(b);
    this.forgetItems(info);
    this.pageCache.clear();
    if (this.chip.erase(b)) {
      info.eraseCount++;
      info.state = BlockState.Free;
      info.clean = true;
      info.nextPage = 0;
      return;
    }
    info.eraseCount++;
    this.chip.markBad(b);
    info.state = BlockState.Bad;
  }

  private forgetItems(info: BlockView): void {
    for (const ref of info.items) if (ref.kind === ITEM_PUT || ref.kind === ITEM_MARK) this.bumpKeyEntries(keyOf(ref.type, ref.id), -1);
    info.items = [];
    info.liveCost = 0;
  }

  // ---- page writing --------------------------------------------------------------------------------

  private addCommit(lane: number, committedFrame: number, carrier: number, reclaimed = this.reclaimedTotal): ItemRef {
    const payload = new Uint8Array(COMMIT_PAYLOAD_BYTES);
    writeU48(payload, 0, reclaimed);
    const ref = this.addItem(lane, { kind: ITEM_COMMIT, flags: 0, type: 0, id: 0, fragIndex: 0, fragCount: 1, version: committedFrame, frame: carrier }, payload);
    ref.extra = reclaimed;
    return ref;
  }

  private addItem(lane: number, fields: Omit<ItemRef, "block" | "page" | "offset" | "length" | "extra">, payload: Uint8Array): ItemRef {
    const size = ITEM_HEADER_BYTES + payload.length;
    const slots = slotsFor(size);
    assert(slots <= this.slotsPerPage, "item larger than a page");
    const ref: ItemRef = {
      kind: fields.kind, flags: fields.flags, type: fields.type, id: fields.id, fragIndex: fields.fragIndex, fragCount: fields.fragCount,
      length: payload.length, version: fields.version, frame: fields.frame, block: -1, page: -1, offset: -1, extra: 0,
    };
    const bytes = new Uint8Array(size);
    bytes[IT_KIND] = ref.kind;
    bytes[IT_FLAGS] = ref.flags;
    bytes[IT_TYPE] = ref.type;
    bytes[IT_FRAG_INDEX] = ref.fragIndex;
    bytes[IT_FRAG_COUNT] = ref.fragCount;
    writeU16(bytes, IT_LENGTH, ref.length);
    writeU32(bytes, IT_ID, ref.id);
    writeU48(bytes, IT_VERSION, ref.version);
    writeU48(bytes, IT_FRAME, ref.frame);
    bytes.set(payload, ITEM_HEADER_BYTES);
    writeU32(bytes, IT_CRC, itemCrc(bytes, 0, payload.length));
    for (let guardLoops = 0; ; guardLoops++) {
      assert(guardLoops < this.g.blocks * 4, "addItem cannot place an item");
      const w = this.lanes[lane] as LaneWriter;
      if (w.block < 0) this.openBlock(lane);
      const info = this.block(w.block);
      if (w.pendingSlots + slots > this.slotsPerPage) {
        this.flush(lane);
        continue;
      }
      const n = info.items.length + w.pending.length + 1;
      if (info.nextPage + 1 + this.summaryPages(n) > this.g.pagesPerBlock) {
        if (w.pending.length) this.flush(lane);
        else this.seal(lane);
        continue;
      }
      w.pending.push({ ref, bytes });
      w.pendingSlots += slots;
      return ref;
    }
  }

  private summaryPages(entries: number): number {
    return Math.max(1, Math.ceil(entries / this.summaryPerPage));
  }

  /** Programs the lane's pending page; on a program failure the block is retired and the page goes to a new block. */
  private flush(lane: number): void {
    const w = this.lanes[lane] as LaneWriter;
    if (w.pending.length === 0) return;
    for (let attempts = 0; ; attempts++) {
      assert(attempts < this.g.blocks, "no block accepts the page");
      if (w.block < 0) this.openBlock(lane);
      const b = w.block;
      const info = this.block(b);
      const page = new Uint8Array(this.pageTotal).fill(0xff);
      let at = PAGE_HEADER_BYTES;
      for (const p of w.pending) {
        p.ref.block = b;
        p.ref.page = info.nextPage;
        p.ref.offset = at;
        page.set(p.bytes, at);
        at += p.bytes.length;
      }
      page[PH_KIND] = PAGE_KIND_DATA;
      page[PH_LANE] = lane;
      writeU16(page, PH_USED, at);
      writeU16(page, PH_COUNT, w.pending.length);
      writeU16(page, PH_INDEX, 0);
      writeU16(page, PH_TOTAL, 0);
      sealPageHeader(page);
      writeEcc(page, this.g);
      const ok = this.chip.program(b, info.nextPage, page);
      info.nextPage++;
      if (ok) {
        for (const p of w.pending) info.pushItem(p.ref);
        w.pending = [];
        w.pendingSlots = 0;
        return;
      }
      this.retireActive(lane);
    }
  }

  /** The lane's active block failed a program: stop using it, relocate it later, then mark it bad. */
  private retireActive(lane: number): void {
    const w = this.lanes[lane] as LaneWriter;
    const info = this.block(w.block);
    info.state = BlockState.Unsealed;
    this.gcQueue.add(w.block);
    this.retiring.add(w.block);
    w.block = -1;
  }

  private readonly retiring = new Set<number>();

  /** Writes the block summary into its last pages and closes the block. */
  private seal(lane: number): void {
    const w = this.lanes[lane] as LaneWriter;
    const b = w.block;
    const info = this.block(b);
    assert(w.pending.length === 0, "seal with a pending page");
    const total = this.summaryPages(info.items.length);
    assert(info.nextPage + total <= this.g.pagesPerBlock, "summary does not fit");
    w.block = -1;
    for (let i = 0; i < total; i++) {
      const page = new Uint8Array(this.pageTotal).fill(0xff);
      const entries = info.items.slice(i * this.summaryPerPage, (i + 1) * this.summaryPerPage);
      let at = PAGE_HEADER_BYTES;
      for (const ref of entries) {
        encodeSummaryEntry(ref, page, at);
        at += SUMMARY_ENTRY_BYTES;
      }
      page[PH_KIND] = PAGE_KIND_SUMMARY;
      page[PH_LANE] = lane;
      writeU16(page, PH_USED, at);
      writeU16(page, PH_COUNT, entries.length);
      writeU16(page, PH_INDEX, i);
      writeU16(page, PH_TOTAL, total);
      sealPageHeader(page);
      writeEcc(page, this.g);
      if (!this.chip.program(b, this.g.pagesPerBlock - total + i, page)) {
        info.state = BlockState.Unsealed;
        this.gcQueue.add(b);
        this.retiring.add(b);
        return;
      }
    }
    info.nextPage = this.g.pagesPerBlock;
    info.state = BlockState.Sealed;
  }

  /** Takes the least-worn free block for a lane: erase if needed, write its header page. */
  private openBlock(lane: number): void {
    for (let attempts = 0; attempts < this.g.blocks; attempts++) {
      let pick = -1;
      const { state, eraseCount } = this.table;
      for (let b = 0; b < this.g.blocks; b++) {
        if (state[b] !== BlockState.Free) continue;
        if (pick < 0 || (eraseCount[b] as number) < (eraseCount[pick] as number)) pick = b;
      }
      if (pick < 0) throw new StoreError("STORAGE_FULL", "storage full: no free flash block is left");
      const info = this.block(pick);
      if (!info.clean) {
        this.eraseOrRetire(pick);
        if (info.state !== BlockState.Free) continue;
      }
      const page = new Uint8Array(this.pageTotal).fill(0xff);
      page[PH_KIND] = PAGE_KIND_BLOCK_HEADER;
      page[PH_LANE] = lane;
      writeU16(page, PH_USED, BLOCK_HEADER_END);
      writeU16(page, PH_COUNT, 0);
      writeU32(page, BH_MAGIC, STORE_MAGIC);
      writeU16(page, BH_VERSION, FORMAT_VERSION);
      writeU16(page, BH_LANE, lane);
      writeU32(page, BH_PAGE_BYTES, this.g.pageBytes);
      writeU32(page, BH_SPARE_BYTES, this.g.spareBytes);
      writeU32(page, BH_PAGES_PER_BLOCK, this.g.pagesPerBlock);
      writeU32(page, BH_BLOCKS, this.g.blocks);
      writeU32(page, BH_ERASE_COUNT, info.eraseCount);
      writeU48(page, BH_BLOCK_SEQ, this.nextBlockSeq++);
      writeU32(page, BH_FORMAT_ID, this.formatId);
      page.set(this.keyCheck(), BH_KEY_CHECK);
      sealPageHeader(page);
      writeEcc(page, this.g);
      info.clean = false;
      if (!this.chip.program(pick, 0, page)) {
        this.chip.markBad(pick);
        info.state = BlockState.Bad;
        continue;
      }
      info.state = BlockState.Active;
      info.lane = lane;
      info.nextPage = 1;
      info.items = [];
      info.liveCost = 0;
      info.corrections = 0;
      (this.lanes[lane] as LaneWriter).block = pick;
      return;
    }
    throw new StoreError("STORAGE_FULL", "storage full: no usable flash block is left");
  }

  // ---- reading ---------------------------------------------------------------------------------------

  /** Reads and verifies a page: CRC first, ECC only when the CRC fails. Null when unreadable or erased. */
  private readValidPage(b: number, p: number): Uint8Array | null {
    const cacheKey = b * this.g.pagesPerBlock + p;
    const cached = this.pageCache.get(cacheKey);
    if (cached) return cached;
    return this.validatePage(b, p, this.chip.readPage(b, p));
  }

  /** Verifies a page just read (CRC, then ECC when the CRC fails) and caches it when valid. */
  private validatePage(b: number, p: number, page: Uint8Array): Uint8Array | null {
    const cacheKey = b * this.g.pagesPerBlock + p;
    if (!pageLooksValid(page, this.g.pageBytes)) {
      if (isErased(page, this.pageTotal)) return null;
      const outcome = correctPage(page, this.g);
      if (outcome.uncorrectable > 0 || !pageLooksValid(page, this.g.pageBytes)) {
        if (outcome.uncorrectable > 0) this.counters.eccUncorrectable++;
        return null;
      }
      this.noteCorrections(b, outcome.corrected);
    }
    if (this.pageCache.size > 64) this.pageCache.clear();
    this.pageCache.set(cacheKey, page);
    return page;
  }

  private noteCorrections(b: number, n: number): void {
    if (n === 0) return;
    this.counters.eccCorrections += n;
    if (b < 0 || b >= this.g.blocks) return;
    const info = this.block(b);
    info.corrections += n;
    if (info.corrections >= SCRUB_THRESHOLD && (info.state === BlockState.Sealed || info.state === BlockState.Unsealed) && !this.gcQueue.has(b)) {
      this.gcQueue.add(b);
      this.counters.scrubs++;
    }
  }

  private readHeader(b: number): BlockHeader | null {
    return this.parseHeader(b, this.readValidPage(b, 0));
  }

  /** Reads page 0 once: the bad-block marker (spare byte 0) and the block header. */
  private readBlockStart(b: number): { bad: boolean; header: BlockHeader | null } {
    const raw = this.chip.readPage(b, 0);
    if (isBadMarker(raw[this.g.pageBytes + BAD_BLOCK_MARKER_OFFSET] as number)) return { bad: true, header: null };
    return { bad: false, header: this.parseHeader(b, this.validatePage(b, 0, raw)) };
  }

  private parseHeader(b: number, page: Uint8Array | null): BlockHeader | null {
    if (!page || page[PH_KIND] !== PAGE_KIND_BLOCK_HEADER || readU32(page, BH_MAGIC) !== STORE_MAGIC) return null;
    if (readU16(page, BH_VERSION) !== FORMAT_VERSION) throw new StoreError("BAD_IMAGE", `block ${b}: store format version ${readU16(page, BH_VERSION)} is not supported (this build reads ${FORMAT_VERSION})`);
    const lane = readU16(page, BH_LANE);
    if (lane >= LANES) return null;
    return {
      lane,
      geometry: { pageBytes: readU32(page, BH_PAGE_BYTES), spareBytes: readU32(page, BH_SPARE_BYTES), pagesPerBlock: readU32(page, BH_PAGES_PER_BLOCK), blocks: readU32(page, BH_BLOCKS) },
      eraseCount: readU32(page, BH_ERASE_COUNT),
      seq: readU48(page, BH_BLOCK_SEQ),
      formatId: readU32(page, BH_FORMAT_ID),
      keyCheck: page.slice(BH_KEY_CHECK, BH_KEY_CHECK + KEY_CHECK_BYTES),
    };
  }

  /** The block's summary, or null when the block was never sealed (or its summary is unreadable). */
  private readSummary(b: number): ItemRef[] | null {
    const last = this.readValidPage(b, this.g.pagesPerBlock - 1);
    if (!last || last[PH_KIND] !== PAGE_KIND_SUMMARY) return null;
    const total = readU16(last, PH_TOTAL);
    if (total < 1 || readU16(last, PH_INDEX) !== total - 1 || total >= this.g.pagesPerBlock) return null;
    const out: ItemRef[] = [];
    for (let i = 0; i < total; i++) {
      const page = i === total - 1 ? last : this.readValidPage(b, this.g.pagesPerBlock - total + i);
      if (!page || page[PH_KIND] !== PAGE_KIND_SUMMARY || readU16(page, PH_INDEX) !== i) return null;
      const count = readU16(page, PH_COUNT);
      if (PAGE_HEADER_BYTES + count * SUMMARY_ENTRY_BYTES > readU16(page, PH_USED)) return null;
      for (let e = 0; e < count; e++) {
        const ref = decodeSummaryEntry(page, PAGE_HEADER_BYTES + e * SUMMARY_ENTRY_BYTES, b);
        if (ref) out.push(ref);
      }
    }
    return out;
  }

  /** Reads every data page of a block that was open at a cut; torn pages are skipped. */
  private scanBlock(b: number): ItemRef[] {
    const out: ItemRef[] = [];
    for (let p = 1; p < this.g.pagesPerBlock; p++) {
      const page = this.readValidPage(b, p);
      if (!page || page[PH_KIND] !== PAGE_KIND_DATA) continue;
      const used = readU16(page, PH_USED);
      const count = readU16(page, PH_COUNT);
      let at = PAGE_HEADER_BYTES;
      for (let i = 0; i < count && at + ITEM_HEADER_BYTES <= used; i++) {
        const ref = decodeItemHeader(page, at, b, p);
        if (!ref || at + ITEM_HEADER_BYTES + ref.length > used || readU32(page, at + IT_CRC) !== itemCrc(page, at, ref.length)) break;
        if (ref.kind === ITEM_COMMIT) ref.extra = readU48(page, at + ITEM_HEADER_BYTES);
        out.push(ref);
        at += ITEM_HEADER_BYTES + ref.length;
      }
    }
    return out;
  }

  /**
   * The item's bytes (header + ciphertext), verified, or null. A view into the cached page,
   * not a copy: callers only read it (cached pages are never modified once validated).
   */
  private readItemBytes(ref: ItemRef): Uint8Array | null {
    const page = this.readValidPage(ref.block, ref.page);
    if (!page) return null;
    const end = ref.offset + ITEM_HEADER_BYTES + ref.length;
    if (end > this.g.pageBytes) return null;
    if (page[ref.offset + IT_KIND] !== ref.kind || readU48(page, ref.offset + IT_VERSION) !== ref.version) return null;
    if (readU32(page, ref.offset + IT_CRC) !== itemCrc(page, ref.offset, ref.length)) return null;
    return page.subarray(ref.offset, end);
  }

  /** Every fragment of copy `c` reads back with a valid CRC (no decryption). */
  private copyReadable(rec: Rec, c: number): boolean {
    const frags = rec.copies[c] as ItemRef[];
    const first = frags[0];
    if (!first || frags.length !== first.fragCount) return false;
    for (const ref of frags) if (!ref || !this.readItemBytes(ref)) return false;
    return true;
  }

  private readCopy(rec: Rec, c: number): Uint8Array | null {
    const frags = rec.copies[c] as ItemRef[];
    const first = frags[0];
    if (!first || frags.length !== first.fragCount) return null;
    const out = new Uint8Array(rec.length);
    let at = 0;
    for (let f = 0; f < frags.length; f++) {
      const ref = frags[f];
      if (!ref) return null;
      const bytes = this.readItemBytes(ref);
      if (!bytes) return null;
      if (!this.key) return out;
      const plain = this.decryptItem(ref, bytes);
      out.set(plain, at);
      at += plain.length;
    }
    return at === rec.length ? out : null;
  }

  private keyCheck(): Uint8Array {
    const cached = this.cache?.keyChecks.get(this.formatId);
    if (cached) return cached;
    const kcv = keyCheckValue(this.key as Uint8Array, this.formatId);
    this.cache?.keyChecks.set(this.formatId, kcv);
    return kcv;
  }

  private encrypt(version: number, frag: number, plain: Uint8Array): Uint8Array {
    if (plain.length === 0) return new Uint8Array(0);
    return sm4Ctr(this.key as Uint8Array, counterBlock(version, frag), plain);
  }

  private decryptItem(ref: ItemRef, bytes: Uint8Array): Uint8Array {
    const cipher = bytes.subarray(ITEM_HEADER_BYTES);
    if (!this.cache) return this.encrypt(ref.version, ref.fragIndex, cipher);
    const crc = crc32(cipher);
    const memoKey = ref.version * 256 + ref.fragIndex;
    const hit = this.cache.plain.get(memoKey);
    if (hit && hit.crc === crc) return hit.plain;
    const plain = this.encrypt(ref.version, ref.fragIndex, cipher);
    if (this.cache.plain.size >= DecryptCache.LIMIT) this.cache.plain.clear();
    this.cache.plain.set(memoKey, { crc, plain });
    return plain;
  }

  /** Runs `body`; a power loss poisons the store (remount needed) and surfaces as StoreError POWER_LOST. */
  private guard<T>(body: () => T): T {
    if (this.poisoned) throw new StoreError("POWER_LOST", "power was lost: remount the store");
    try {
      return body();
    } catch (error) {
      if (error instanceof PowerLossError) {
        this.poisoned = true;
        const e = new StoreError("POWER_LOST", `power lost during a flash operation: ${error.message}`);
        (e as { cause?: unknown }).cause = error;
        throw e;
      }
      throw error;
    }
  }
}

interface BlockHeader {
  lane: number;
  geometry: Geometry;
  eraseCount: number;
  seq: number;
  formatId: number;
  keyCheck: Uint8Array;
}

function counterBlock(version: number, frag: number): Uint8Array {
  const block = new Uint8Array(16);
  writeU48(block, 0, version);
  block[6] = frag;
  return block;
}

function recordLength(rec: Rec): number {
  for (const copy of rec.copies) {
    if (copy.length && copy.every((r) => r !== undefined)) return copy.reduce((n, r) => n + r.length, 0);
  }
  return 0;
}

function liveRefs(rec: Rec): ItemRef[] {
  const out: ItemRef[] = [];
  for (const copy of rec.copies) for (const r of copy) if (r) out.push(r);
  if (rec.mark) out.push(...rec.mark);
  return out;
}

function decodeItemHeader(page: Uint8Array, at: number, block: number, pageIndex: number): ItemRef | null {
  const kind = page[at + IT_KIND] as number;
  if (kind < ITEM_PUT || kind > ITEM_COMMIT) return null;
  const fragCount = page[at + IT_FRAG_COUNT] as number;
  const fragIndex = page[at + IT_FRAG_INDEX] as number;
  if (fragCount < 1 || fragIndex >= fragCount) return null;
  return {
    kind, flags: page[at + IT_FLAGS] as number, type: page[at + IT_TYPE] as number, id: readU32(page, at + IT_ID),
    fragIndex, fragCount, length: readU16(page, at + IT_LENGTH), version: readU48(page, at + IT_VERSION), frame: readU48(page, at + IT_FRAME),
    block, page: pageIndex, offset: at, extra: 0,
  };
}

function encodeSummaryEntry(ref: ItemRef, page: Uint8Array, at: number): void {
  page[at + IT_KIND] = ref.kind;
  page[at + IT_FLAGS] = ref.flags;
  page[at + IT_TYPE] = ref.type;
  page[at + IT_FRAG_INDEX] = ref.fragIndex;
  page[at + IT_FRAG_COUNT] = ref.fragCount;
  page[at + 5] = 0;
  writeU16(page, at + IT_LENGTH, ref.length);
  writeU32(page, at + IT_ID, ref.id);
  writeU48(page, at + IT_VERSION, ref.version);
  writeU48(page, at + IT_FRAME, ref.frame);
  writeU16(page, at + SE_PAGE, ref.page);
  writeU16(page, at + SE_OFFSET, ref.offset);
  writeU48(page, at + SE_EXTRA, ref.extra);
  writeU16(page, at + SE_EXTRA + 6, 0);
}

function decodeSummaryEntry(page: Uint8Array, at: number, block: number): ItemRef | null {
  const ref = decodeItemHeader(page, at, block, readU16(page, at + SE_PAGE));
  if (!ref) return null;
  ref.offset = readU16(page, at + SE_OFFSET);
  ref.extra = readU48(page, at + SE_EXTRA);
  return ref;
}
