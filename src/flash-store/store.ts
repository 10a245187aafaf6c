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
 * In memory, items are integer handles into an ItemTable (typed arrays, no object per item)
 * linked into per-block lists, and records are rows of a RecTable (an open-addressing hash on
 * (type, id)): mount decodes summaries straight into these tables, with no allocation per item.
 *
 * Invariants (asserted):
 *  - a live item is referenced from exactly one place in the index (identity), and counted
 *    once in frameLive and its block's liveCost (its ItemTable live flag says so);
 *  - the two copies of a critical item are in blocks of different lanes;
 *  - versions and frame numbers only grow; after mount they restart above anything on flash;
 *  - liveCost <= capacityCost after every commit (else rollover or STORAGE_FULL, nothing written);
 *  - an item handle is freed only when its block is erased and nothing refers to it.
 */
import { hmacSm3, sm4Ctr, SM4_KEY_BYTES } from "../crypto/index.ts";
import { checkTransaction, CRITICAL_TYPE_LIMIT, RECORD_TYPE_MAX, StoreError, type RecordStore, type StoreStats, type TxOp } from "./api.ts";
import { allocColumns, releaseColumns, scratchBytes } from "./columns.ts";
import { Slab } from "./slab.ts";
import { BAD_BLOCK_MARKER_OFFSET, pageTotalBytes, sameGeometry, type Geometry } from "./geometry.ts";
import {
  bytesEqual, BH_BLOCKS, BH_BLOCK_SEQ, BH_ERASE_COUNT, BH_FORMAT_ID, BH_KEY_CHECK, BH_LANE, BH_MAGIC, BH_PAGES_PER_BLOCK, BH_PAGE_BYTES,
  BH_SPARE_BYTES, BH_VERSION, BLOCK_HEADER_END, COMMIT_PAYLOAD_BYTES, correctPage, FLAG_COPY2, FLAG_ROLLOVER, FORMAT_VERSION,
  isBadMarker, isErased, ITEM_COMMIT, ITEM_HEADER_BYTES, ITEM_MARK, ITEM_PUT, ITEM_TOMBSTONE, itemCrc, IT_CRC, IT_FLAGS, IT_FRAG_COUNT,
  IT_FRAG_INDEX, IT_FRAME, IT_ID, IT_KIND, IT_LENGTH, IT_TYPE, IT_VERSION, KEY_CHECK_BYTES, PAGE_HEADER_BYTES,
  PAGE_KIND_BLOCK_HEADER, PAGE_KIND_DATA, PAGE_KIND_SUMMARY, pageLooksValid, PH_COUNT, PH_INDEX, PH_KIND, PH_LANE, PH_TOTAL,
  PH_USED, readU16, readU32, readU48, sealPageHeader, SE_EXTRA, SE_OFFSET, SE_PAGE, slotsFor, SLOT_BYTES, STORE_MAGIC,
  SUMMARY_ENTRY_BYTES, writeEcc, writeU16, writeU32, writeU48,
} from "./layout.ts";
import { ItemTable, NIL } from "./item-table.ts";
import { KeyMap } from "./keymap.ts";
import { RecTable } from "./rec-table.ts";
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
/** 2^32: the high 16 bits of a 48-bit field are worth this much each. */
const U32_SPAN = 2 ** 32;
/** Indices of the store's sequence counters (FlashStore.seq). */
const SEQ_VERSION = 0;
const SEQ_FRAME = 1;
/** After a mount, versions and frames restart this far above the largest seen (nonce safety). */
export const SEQUENCE_GAP_AFTER_MOUNT = 1 << 22;
/** A store's format id when the caller gives none. */
export const DEFAULT_FORMAT_ID = 1;

const KEY_CHECK_LABEL = new TextEncoder().encode("ukeysim flash key check v1");

/**
 * Memo for campaigns that mount thousands of forks of one chip with one key:
 *  - plaintext by (version, fragment), trusted only when the CRC-32 of the (already
 *    verified) item matches;
 *  - the page views (NandChip.readPageView) already found valid (header and CRC), by
 *    identity. Sound because nobody modifies a view once read (the chip's contract): a
 *    copy-on-write fork hands out the very arrays its parent validated, and a torn or
 *    faulted page is a new array, checked afresh.
 * Create one per data key; never share across keys.
 */
export class DecryptCache {
  readonly plain = new Map<number, { crc: number; plain: Uint8Array }>();
  readonly keyChecks = new Map<number, Uint8Array>();
  readonly validPages = new WeakSet<Uint8Array>();
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

/** An item: a handle into the store's ItemTable (see item-table.ts). */
type Item = number;

const enum BlockState { Free, Active, Sealed, Unsealed, Bad }

interface BlockInfo {
  state: BlockState;
  lane: number;
  eraseCount: number;
  /** Known to be fully erased (so it may be used without another erase). */
  clean: boolean;
  nextPage: number;
  liveCost: number;
  corrections: number;
}

/**
 * The buffers get() returns are pieces of shared slabs (slab.ts), as Node's small Buffers
 * are: a campaign reads every record of every mounted fork, and a fresh buffer per value
 * was most of a read's cost. Each piece is the caller's own.
 */
const valueBuffers = new Slab(0);

/** The payload of tombstones and marks (never written to). */
const EMPTY_PAYLOAD = new Uint8Array(0);

/**
 * Per-block state as parallel typed arrays (struct of arrays): 1024 small objects per
 * device cost ~130 KiB, the arrays ~30 KiB. `BlockView` gives the object-shaped access.
 * Each block also heads a list of its items (live or not) in write order, linked through
 * ItemTable.next: head/tail/count here.
 */
const BLOCK_COLUMNS = {
  state: Uint8Array, lane: Uint8Array, eraseCount: Int32Array, clean: Uint8Array, nextPage: Uint16Array,
  liveCost: Int32Array, corrections: Uint32Array, head: Int32Array, tail: Int32Array, count: Uint16Array,
} as const;

class BlockTable {
  readonly state: Uint8Array;
  readonly lane: Uint8Array;
  readonly eraseCount: Int32Array;
  readonly clean: Uint8Array;
  readonly nextPage: Uint16Array;
  /** Integer costs (itemCost sums), < 2^31 for any supported geometry. */
  readonly liveCost: Int32Array;
  readonly corrections: Uint32Array;
  readonly head: Int32Array;
  readonly tail: Int32Array;
  /** Items listed: < 2^16 (at most (pagesPerBlock - 1) x slotsPerPage <= 255 x 255 within GEOMETRY_LIMITS). */
  readonly count: Uint16Array;
  /**
   * Blocks in state Free and in state Bad. Invariant: always equal to a count over `state`
   * (every state change goes through setState), so commits do not scan the table for them.
   */
  freeCount: number;
  badCount = 0;

  constructor(readonly length: number) {
    this.freeCount = length; // a new table is all Free (BlockState.Free = 0)
    const c = allocColumns(BLOCK_COLUMNS, length); // one buffer (columns.ts)
    this.state = c.state;
    this.lane = c.lane;
    this.eraseCount = c.eraseCount;
    this.clean = c.clean;
    this.nextPage = c.nextPage;
    this.liveCost = c.liveCost;
    this.corrections = c.corrections;
    this.head = c.head.fill(NIL);
    this.tail = c.tail.fill(NIL);
    this.count = c.count;
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

  /** Appends item `h` (already placed in block b) to the block's list. */
  pushItem(b: number, h: Item, items: ItemTable): void {
    items.next[h] = NIL;
    const tail = this.tail[b] as number;
    if (tail === NIL) this.head[b] = h;
    else items.next[tail] = h;
    this.tail[b] = h;
    assert((this.count[b] as number) < 0xffff, `block ${b} lists more items than a block can hold`);
    (this.count[b] as number)++;
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
  get liveCost(): number { return this.t.liveCost[this.index] as number; }
  set liveCost(v: number) { this.t.liveCost[this.index] = v; }
  get corrections(): number { return this.t.corrections[this.index] as number; }
  set corrections(v: number) { this.t.corrections[this.index] = v; }
}

interface LaneWriter {
  block: number;
  pending: { ref: Item; bytes: Uint8Array }[];
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

/** The header fields of an item to write (the rest is set when it is placed). */
interface NewItem {
  kind: number;
  flags: number;
  type: number;
  id: number;
  fragIndex: number;
  fragCount: number;
  version: number;
  frame: number;
}

/** What mount finds out about the items as it decodes them (MountTally, scanCommits). */
interface ItemScan {
  maxVersion: number;
  maxFrame: number;
  /** Frames whose commit item is on flash (closed over relocated commits by closeRelocatedCommits). */
  committed: Set<number>;
  commitItems: Item[];
  /** Commit items copied by GC (version = the frame committed, frame = the carrier's frame). */
  relocatedCommits: Item[];
  /** First fragments of PUTs and tombstones, second copies not counted: about the records' rows. */
  recordItems: number;
}

/**
 * Items a mount pass handles per call of its loop function. Why: a loop function called once
 * per mount is compiled by V8 while it runs (on-stack replacement), without type feedback for
 * the code after the loop, and that compiled loop was thrown away at every mount
 * (--trace-deopt); called ~50 times per mount, the function is compiled whole, in the first
 * mount, for every later one.
 */
const MOUNT_CHUNK_ITEMS = 4096;

/** Slots of the totals a mount accumulates while it decodes items (MountTally). */
const TOTAL_MAX_VERSION = 0;
const TOTAL_MAX_FRAME = 1;
const TOTAL_RECORD_ITEMS = 2;
const TOTAL_SLOTS = 3;

/** Slots of what mountAccounting carries from one chunk of rows to the next: the open run of a frame. */
const RUN_FRAME = 0;
const RUN_COUNT = 1;
const RUN_SLOTS = 2;

/**
 * What mount gathers about the items while it decodes them (loadSummaryPage, loadDataPages),
 * instead of in a pass of its own over the whole item table: the largest version and frame,
 * the commit items, and how many items are first copies of records. The totals sit in a
 * typed array so the decode loop keeps them in one place V8 compiles for (see
 * MOUNT_CHUNK_ITEMS on loops compiled while they run).
 */
class MountTally {
  readonly totals = new Float64Array(TOTAL_SLOTS);
  readonly commitItems: Item[] = [];

  /** Counts one decoded item (the rare path: data pages of unsealed blocks). */
  note(h: Item, kind: number, flags: number, fragIndex: number, version: number, frame: number): void {
    const totals = this.totals;
    if (frame > (totals[TOTAL_MAX_FRAME] as number)) totals[TOTAL_MAX_FRAME] = frame;
    if (kind === ITEM_COMMIT) {
      this.commitItems.push(h);
      return;
    }
    if (version > (totals[TOTAL_MAX_VERSION] as number)) totals[TOTAL_MAX_VERSION] = version;
    if (kind !== ITEM_MARK && fragIndex === 0 && (flags & FLAG_COPY2) === 0) (totals[TOTAL_RECORD_ITEMS] as number)++;
  }
}

/** What the tally found, and which commit items commit their own frame, which were relocated. */
function scanCommits(it: ItemTable, tally: MountTally): ItemScan {
  const { totals, commitItems } = tally;
  const { version, frame } = it;
  const committed = new Set<number>();
  const relocatedCommits: Item[] = [];
  for (const h of commitItems) {
    const f = frame[h] as number;
    if (version[h] === f) committed.add(f);
    else relocatedCommits.push(h);
  }
  return { maxVersion: totals[TOTAL_MAX_VERSION] as number, maxFrame: totals[TOTAL_MAX_FRAME] as number, committed, commitItems, relocatedCommits, recordItems: totals[TOTAL_RECORD_ITEMS] as number };
}

/** A relocated commit counts when the frame carrying it was committed (repeat until nothing changes). */
function closeRelocatedCommits(it: ItemTable, relocated: readonly Item[], committed: Set<number>): void {
  const { version, frame } = it;
  for (let changed = true; changed; ) {
    changed = false;
    for (const h of relocated) {
      if (committed.has(frame[h] as number) && !committed.has(version[h] as number)) {
        committed.add(version[h] as number);
        changed = true;
      }
    }
  }
}

/** Record key: type * 2^32 + id (ids are 32-bit). */
const TYPE_SPAN = 0x1_0000_0000;
const keyOf = (type: number, id: number): number => type * TYPE_SPAN + id;
const copiesFor = (type: number): number => (type < CRITICAL_TYPE_LIMIT ? 2 : 1);
const copyOfFlags = (flags: number): number => (flags & FLAG_COPY2 ? 1 : 0);

/**
 * A summary page, kept for pass 2, or null when its entry count overruns its used bytes. A page
 * read into `into` is copied (its used part) into `scratch`; any other page is a media's
 * immutable view and is kept as it is.
 */
function keepSummary(page: Uint8Array, scratch: PageScratch, into: Uint8Array): Uint8Array | null {
  const used = PAGE_HEADER_BYTES + readU16(page, PH_COUNT) * SUMMARY_ENTRY_BYTES;
  if (used > readU16(page, PH_USED)) return null;
  return page === into ? scratch.keep(page, used) : page;
}

const SCRATCH_ALIGN = 8;

const NO_BYTES = new Uint8Array(0);
/** Mount's page buffers for reads into the caller's buffer (Media.readPage `into`): slab pieces, not a backing store per mount. */
const mountPages = new Slab(0);

/**
 * The summary pages mount keeps from pass 1 to pass 2 when they were read into its one page
 * buffer (a file: Media.readPage `into`), copied into buffers of the spare table memory
 * (columns.ts), so pages cost no allocation each and a remount reuses the scratch. Buffers
 * only grow (a full one is kept whole: views into it are live) and all go back at release,
 * after pass 2.
 */
class PageScratch {
  private bytes: Uint8Array = NO_BYTES;
  private used = 0;
  private readonly full: Uint8Array[] = [];
  private markBytes: Uint8Array = NO_BYTES;
  private markUsed = 0;
  constructor(private readonly firstBytes: number) {}

  keep(page: Uint8Array, length: number): Uint8Array {
    if (this.used + length > this.bytes.length) {
      if (this.bytes.length) this.full.push(this.bytes);
      this.bytes = scratchBytes(Math.max(this.bytes.length * 2, this.firstBytes, length));
      this.used = 0;
    }
    this.bytes.set(page.subarray(0, length), this.used);
    const out = this.bytes.subarray(this.used, this.used + length);
    this.used += (length + SCRATCH_ALIGN - 1) & ~(SCRATCH_ALIGN - 1);
    return out;
  }

  /** Remembers where keep() stands now, for rewind(). */
  mark(): void {
    this.markBytes = this.bytes;
    this.markUsed = this.used;
  }

  /** Drops what was kept since mark() (when still in the same buffer; else it is merely left unused). */
  rewind(): void {
    if (this.markBytes === this.bytes) this.used = this.markUsed;
  }

  /** Hands the buffers back; no view of them may be used afterwards. */
  release(): void {
    for (const bytes of this.full) releaseColumns({ bytes });
    releaseColumns({ bytes: this.bytes });
    this.full.length = 0;
    this.bytes = NO_BYTES;
    this.markBytes = NO_BYTES;
    this.used = 0;
  }
}

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
  private readonly items = new ItemTable();
  private readonly recs = new RecTable();
  /** Fragments 1.. of multi-fragment copies, by rec row * 2 + copy (index = fragment; fragment 0 is the row's copy0/copy1). */
  private readonly moreFrags = new Map<number, Item[]>();
  private readonly frameLive = new Map<number, number>();
  /** The commit item honoured for each frame that still has live items. */
  private readonly commits = new Map<number, Item>();
  /** PUT and MARK items on flash per key (live or dead): a tombstone stays while any exist elsewhere. */
  private readonly keyEntries = new KeyMap<number>();
  private readonly lanes: LaneWriter[] = [];
  private readonly gcQueue = new Set<number>();
  private readonly repairQueue = new Set<number>();
  private readonly pageCache = new Map<number, Uint8Array>();
  /**
   * The next version and frame numbers (SEQ_VERSION, SEQ_FRAME): 48-bit counters, exact in a
   * double. In a Float64Array, not number fields: a field that starts as a small integer and
   * later holds a value read from the item table (a double) changes representation, and V8
   * then drops all code compiled for the store (--trace-deopt, "wrong map", at a second mount).
   */
  private readonly seq = Float64Array.of(1, 1);
  private nextBlockSeq = 1;
  private reclaimedTotal = 0;
  private liveCost = 0;
  private poisoned = false;
  /** False after unmount(): the tables were handed back, and every call throws UNMOUNTED. */
  private mounted = true;
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
    // Pass 1 reads every block (same reads, same order as ever) and keeps the verified pages;
    // pass 2 decodes them into tables sized once from the entry counts (no growth while loading).
    const loaded: { b: number; pages: (Uint8Array | null)[]; sealed: boolean }[] = [];
    let entries = 0;
    let headers = 0;
    const scratch = new PageScratch(this.g.blocks * this.g.pageBytes); // one summary page per block, then doubling
    const into = mountPages.carve(this.pageTotal); // a page read lands here, or is a media's immutable view
    for (let b = 0; b < this.g.blocks; b++) {
      const info = this.block(b);
      info.eraseCount = -1;
      const start = this.readBlockStart(b, into);
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
      const summary = this.readSummaryPages(b, scratch, into);
      if (summary) {
        info.state = BlockState.Sealed;
        loaded.push({ b, pages: summary, sealed: true });
      } else {
        info.state = BlockState.Unsealed;
        loaded.push({ b, pages: this.readDataPages(b), sealed: false });
        this.gcQueue.add(b);
      }
      for (const page of loaded[loaded.length - 1]?.pages ?? []) if (page) entries += readU16(page, PH_COUNT);
      info.nextPage = this.g.pagesPerBlock;
    }
    if (headers === 0) throw new StoreError("BAD_IMAGE", "no flash store on this chip (not formatted, or every block header is unreadable)");
    let maxKnown = 0;
    const counts = this.table.eraseCount;
    for (let b = 0; b < counts.length; b++) maxKnown = Math.max(maxKnown, counts[b] as number);
    for (let b = 0; b < counts.length; b++) if ((counts[b] as number) < 0) counts[b] = maxKnown; // unknown: assume the worst seen
    this.items.reserve(entries);
    const tally = new MountTally();
    for (const { b, pages, sealed } of loaded) {
      if (sealed) for (const page of pages) this.loadSummaryPage(page as Uint8Array, b, tally.totals, tally.commitItems);
      else this.loadDataPages(b, pages, tally);
    }
    scratch.release();
    this.rebuildIndex(tally);
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


  /**
   * Builds the index from every item found on flash. Hot on mount: passes over the item
   * table's typed arrays, no allocation per item. Mount loaded blocks into a fresh table, so
   * the handles 0..top-1 are exactly the items on flash.
   */
  private rebuildIndex(tally: MountTally): void {
    const it = this.items;
    assert(it.size === it.top, "mount expects an item table without free rows");
    const scan = scanCommits(it, tally);
    // About one row per record item (old versions count too; a key seen only in a mark or a
    // lone second copy grows the table): reserving a row per item, as before, made the table
    // of a store full of superseded versions many times larger than its records.
    this.recs.reserve(scan.recordItems);
    closeRelocatedCommits(it, scan.relocatedCommits, scan.committed);
    this.indexRecords(scan.committed);
    this.mountAccounting();
    this.mountCommits(scan.commitItems, scan.committed);
    this.seq[SEQ_VERSION] = scan.maxVersion + SEQUENCE_GAP_AFTER_MOUNT;
    this.seq[SEQ_FRAME] = scan.maxFrame + SEQUENCE_GAP_AFTER_MOUNT;
  }

  /**
   * Mount: every item of a committed frame into the record table (newest version wins; a
   * tombstone is a version too), MOUNT_CHUNK_ITEMS per call of indexRange (see there why).
   */
  private indexRecords(committed: ReadonlySet<number>): void {
    const n = this.items.top;
    for (let from = 0; from < n; from += MOUNT_CHUNK_ITEMS) this.indexRange(from, Math.min(n, from + MOUNT_CHUNK_ITEMS), committed);
  }

  /** indexRecords over items [from, to). */
  private indexRange(from: number, to: number, committed: ReadonlySet<number>): void {
    const it = this.items;
    // No item is allocated below, so the arrays stay the table's own.
    const { kind, flags, type, id, fragIndex, version, frame } = it;
    const recs = this.recs;
    let lastFrame = -1;
    let lastCommitted = false;
    for (let h = from; h < to; h++) {
      const k = kind[h] as number;
      const f = frame[h] as number;
      if (f !== lastFrame) {
        lastFrame = f;
        lastCommitted = committed.has(f);
      }
      if (!lastCommitted) continue;
      if (k === ITEM_COMMIT) {
        const reclaimed = it.extraOf(h);
        if (reclaimed > this.reclaimedTotal) this.reclaimedTotal = reclaimed;
        continue;
      }
      const t = type[h] as number;
      const c = copyOfFlags(flags[h] as number);
      if (c === 1 && t >= CRITICAL_TYPE_LIMIT) continue; // never written: a non-critical record has one copy
      const v = version[h] as number;
      const r = recs.findOrInsert(t, id[h] as number);
      if (k === ITEM_MARK) {
        this.mountMark(r, c, h);
        continue;
      }
      // The row's arrays are read afresh through `recs`: findOrInsert may grow them.
      const rk = recs.kind[r] as number;
      if (rk === 0) {
        // A new row (or one with marks only): no items and length 0 yet, nothing to clear.
        recs.kind[r] = k;
        recs.version[r] = v;
        recs.moveToTail(r); // a row made by a mark takes its place at its first record item
      } else if ((recs.version[r] as number) < v) {
        this.resetRec(r, k, v);
      } else if (recs.version[r] !== v || rk !== k) {
        continue;
      }
      const index = k === ITEM_PUT ? (fragIndex[h] as number) : 0;
      if (index === 0) {
        const copies = c === 0 ? recs.copy0 : recs.copy1;
        if (copies[r] === NIL) copies[r] = h;
      } else if (this.fragAt(r, c, index) === NIL) {
        this.setFrag(r, c, index, h);
      }
    }
  }

  /** Mount: keeps the newest mark of a key, one per copy (the record it applies to is settled later). */
  private mountMark(r: number, c: number, h: Item): void {
    const recs = this.recs;
    const have = this.markVersion(r);
    const v = this.items.version[h] as number;
    if (have < v) {
      recs.mark0[r] = NIL;
      recs.mark1[r] = NIL;
    } else if (have !== v) {
      return;
    }
    if (c === 0 && recs.mark0[r] === NIL) recs.mark0[r] = h;
    else if (c === 1 && recs.mark1[r] === NIL) recs.mark1[r] = h;
  }

  /**
   * Mount: settles each row (a mark counts only when newer than its PUT; rows with marks but
   * no record go), then counts every live item in bulk. Rows are visited by index, not along
   * their type's list: a mount's table has no free row (every row below rowsEnd is in the
   * hash), sums do not depend on order, and a list walk made each step wait for the load of
   * the next link. Items of one frame mostly come together, so frameLive is updated per run
   * of a frame, not per item. MOUNT_CHUNK_ITEMS rows per call of accountRange.
   */
  private mountAccounting(): void {
    const recs = this.recs;
    const end = recs.rowsEnd;
    assert(recs.size === end, "mount expects a record table without free rows");
    const run = new Float64Array(RUN_SLOTS);
    run[RUN_FRAME] = -1;
    const orphans: number[] = [];
    // The total is summed from the chunks' integer results, not kept in `run`: a double read
    // from a Float64Array stored into this.liveCost changed the field's representation, and
    // with it the store's hidden class, so every compiled store method was thrown away.
    let total = 0;
    for (let from = 0; from < end; from += MOUNT_CHUNK_ITEMS) total += this.accountRange(from, Math.min(end, from + MOUNT_CHUNK_ITEMS), run, orphans);
    const runCount = run[RUN_COUNT] as number;
    const runFrame = run[RUN_FRAME] as number;
    if (runCount) this.frameLive.set(runFrame, (this.frameLive.get(runFrame) ?? 0) + runCount);
    this.liveCost += total;
    for (const r of orphans) recs.remove(r);
  }

  /** mountAccounting over rows [from, to); returns the live cost counted. The open run of a frame carries over in `run`. */
  private accountRange(from: number, to: number, run: Float64Array, orphans: number[]): number {
    const recs = this.recs;
    const it = this.items;
    const { kind: rkind, version: rversion, length: rlength, copy0, copy1, mark0, mark1 } = recs;
    const { frame, live, block, length, version } = it;
    const liveCosts = this.table.liveCost;
    const multi = this.moreFrags.size > 0; // some value spans several fragments (rare)
    const four: Item[] = [NIL, NIL, NIL, NIL];
    let total = 0;
    for (let r = from; r < to; r++) {
      const k = rkind[r] as number;
      if (k === 0) {
        orphans.push(r);
        continue;
      }
      const m0 = mark0[r] as number;
      const m1 = mark1[r] as number;
      if (m0 !== NIL || m1 !== NIL) {
        const markVersion = version[m0 !== NIL ? m0 : m1] as number;
        if (k !== ITEM_PUT || markVersion <= (rversion[r] as number)) {
          mark0[r] = NIL;
          mark1[r] = NIL;
        }
      }
      let refs = four;
      if (multi && (this.moreFrags.has(r * 2) || this.moreFrags.has(r * 2 + 1))) {
        if (k === ITEM_PUT) rlength[r] = this.recordLength(r);
        refs = this.liveItemsOf(r);
      } else {
        // One fragment per copy: the length is that of the first copy present (recordLength).
        const c0 = copy0[r] as number;
        const c1 = copy1[r] as number;
        if (k === ITEM_PUT) rlength[r] = c0 !== NIL ? (length[c0] as number) : c1 !== NIL ? (length[c1] as number) : 0;
        four[0] = c0;
        four[1] = c1;
        four[2] = mark0[r] as number;
        four[3] = mark1[r] as number;
      }
      for (let j = 0; j < refs.length; j++) {
        const h = refs[j] as Item;
        if (h === NIL) continue;
        const f = frame[h] as number;
        if (f !== run[RUN_FRAME]) {
          const runCount = run[RUN_COUNT] as number;
          const runFrame = run[RUN_FRAME] as number;
          if (runCount) this.frameLive.set(runFrame, (this.frameLive.get(runFrame) ?? 0) + runCount);
          run[RUN_FRAME] = f;
          run[RUN_COUNT] = 0;
        }
        (run[RUN_COUNT] as number)++;
        live[h] = 1;
        const cost = this.refCost(h);
        (liveCosts[block[h] as number] as number) += cost;
        total += cost;
      }
    }
    return total;
  }

  /** Mount: every frame with live items needs its commit; a relocated commit keeps its carrier alive. */
  private mountCommits(commitItems: readonly Item[], committed: ReadonlySet<number>): void {
    const { version, frame } = this.items;
    const byFrame = new Map<number, Item>();
    for (const h of commitItems) {
      if (!committed.has(frame[h] as number)) continue;
      const v = version[h] as number;
      const have = byFrame.get(v);
      if (have === undefined || (version[have] !== frame[have] && v === frame[h])) byFrame.set(v, h);
    }
    const work = [...this.frameLive.keys()];
    while (work.length) {
      const f = work.pop() as number;
      if (this.commits.has(f)) continue;
      const c = byFrame.get(f);
      assert(c !== undefined, `frame ${f} has live items but no commit`);
      this.commits.set(f, c);
      if (frame[c] !== f) {
        const carrier = frame[c] as number;
        const before = this.frameLive.get(carrier) ?? 0;
        this.addLive(c);
        if (before === 0) work.push(carrier);
      }
    }
  }

  /** Critical records whose copies are not both readable are rewritten (the other copy repairs them). */
  private repairCritical(): void {
    // Only critical types have two copies: visit just those (type by type, as everywhere).
    const recs = this.recs;
    for (let type = 0; type < CRITICAL_TYPE_LIMIT; type++) {
      for (let r = recs.firstOf(type); r !== NIL; r = recs.nextOf(r)) {
        if (recs.kind[r] !== ITEM_PUT) continue;
        if (!this.copyReadable(r, 0) || !this.copyReadable(r, 1)) this.repairQueue.add(keyOf(type, recs.id[r] as number));
      }
    }
    if (this.repairQueue.size) this.runRepairs();
  }

  private runRepairs(): void {
    for (const key of [...this.repairQueue]) {
      this.repairQueue.delete(key);
      const type = Math.floor(key / TYPE_SPAN);
      const id = key % TYPE_SPAN;
      const r = this.recs.find(type, id);
      if (r === NIL || this.recs.kind[r] !== ITEM_PUT) continue;
      let value: Uint8Array | undefined;
      try {
        value = this.get(type, id);
      } catch (error) {
        if (error instanceof StoreError && error.code === "CORRUPT") continue; // nothing good left to copy
        throw error;
      }
      if (!value) continue;
      const wasMarked = this.hasMark(r);
      const ops: TxOp[] = [{ kind: "put", type, id, value }];
      if (wasMarked) ops.push({ kind: "reclaimable", type, id });
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

  // ---- record rows ---------------------------------------------------------------------------

  /** Item of fragment f of copy c of row r, or NIL. */
  private fragAt(r: number, c: number, f: number): Item {
    if (f === 0) return (c === 0 ? this.recs.copy0[r] : this.recs.copy1[r]) as number;
    return this.moreFrags.get(r * 2 + c)?.[f] ?? NIL;
  }

  private setFrag(r: number, c: number, f: number, h: Item): void {
    if (f === 0) {
      if (c === 0) this.recs.copy0[r] = h;
      else this.recs.copy1[r] = h;
      return;
    }
    let more = this.moreFrags.get(r * 2 + c);
    if (!more) this.moreFrags.set(r * 2 + c, (more = [NIL]));
    while (more.length <= f) more.push(NIL);
    more[f] = h;
  }

  /** Fragment slots of a copy (highest fragment present + 1; 0 when the copy is empty). */
  private fragSlots(r: number, c: number): number {
    const more = this.moreFrags.size ? this.moreFrags.get(r * 2 + c) : undefined;
    if (more) return more.length;
    return this.fragAt(r, c, 0) !== NIL ? 1 : 0;
  }

  private clearCopy(r: number, c: number): void {
    if (c === 0) this.recs.copy0[r] = NIL;
    else this.recs.copy1[r] = NIL;
    if (this.moreFrags.size) this.moreFrags.delete(r * 2 + c);
  }

  /** Makes row r a record of `kind` at `version` with no items yet (marks untouched). */
  private resetRec(r: number, kind: number, version: number): void {
    this.recs.kind[r] = kind;
    this.recs.version[r] = version;
    this.recs.length[r] = 0;
    this.clearCopy(r, 0);
    this.clearCopy(r, 1);
  }

  private deleteRec(r: number): void {
    this.clearCopy(r, 0);
    this.clearCopy(r, 1);
    this.recs.remove(r);
  }

  private hasMark(r: number): boolean {
    return this.recs.mark0[r] !== NIL || this.recs.mark1[r] !== NIL;
  }

  /** Version of the row's marks (both copies have the same), or -1. */
  private markVersion(r: number): number {
    const m = this.recs.mark0[r] !== NIL ? (this.recs.mark0[r] as number) : (this.recs.mark1[r] as number);
    return m === NIL ? -1 : (this.items.version[m] as number);
  }

  /** Value length: the fragments present of the first copy that has any. */
  private recordLength(r: number): number {
    for (let c = 0; c < 2; c++) {
      const slots = this.fragSlots(r, c);
      if (!slots) continue;
      let sum = 0;
      for (let f = 0; f < slots; f++) {
        const h = this.fragAt(r, c, f);
        if (h !== NIL) sum += this.items.length[h] as number;
      }
      return sum;
    }
    return 0;
  }

  /** Calls `visit` for each item the row refers to: fragments of copy 0, of copy 1, then the marks. */
  private forEachLiveItem(r: number, visit: (h: Item) => void): void {
    for (let c = 0; c < 2; c++) {
      const slots = this.fragSlots(r, c);
      for (let f = 0; f < slots; f++) {
        const h = this.fragAt(r, c, f);
        if (h !== NIL) visit(h);
      }
    }
    const m0 = this.recs.mark0[r] as number;
    const m1 = this.recs.mark1[r] as number;
    if (m0 !== NIL) visit(m0);
    if (m1 !== NIL) visit(m1);
  }

  private liveItemsOf(r: number): Item[] {
    const out: Item[] = [];
    this.forEachLiveItem(r, (h) => out.push(h));
    return out;
  }

  // ---- RecordStore --------------------------------------------------------------------------

  get(type: number, id: number): Uint8Array | undefined {
    return this.guard(() => {
      const r = this.recs.find(type, id);
      if (r === NIL || this.recs.kind[r] !== ITEM_PUT) return undefined;
      if (!this.key) throw new StoreError("READ_ONLY", "this store was opened for inspection without a key: payloads are not readable");
      for (let c = 0; c < copiesFor(type); c++) {
        const value = this.readCopy(r, c);
        if (value) {
          if (c > 0) this.repairQueue.add(keyOf(type, id)); // the first copy is bad: rewrite both
          return value;
        }
      }
      throw new StoreError("CORRUPT", `record ${type}/${id}: every copy is unreadable (uncorrectable flash errors)`);
    });
  }

  /**
   * True when record (type, id) is live in this store and in `other` and get() must return
   * equal values on both, shown without reading it: every fragment of every copy is the same
   * item (kind, version, fragment, length, block, page, offset) and each such page is the very
   * same buffer in both chips' MemoryMedia, read without faults, under the same data key.
   * Sound because MemoryMedia never mutates a stored page (copy-on-write: forks share them),
   * so one buffer is equal bytes, and get() is a function of those bytes, the item and the key.
   * Both stores must be read-only and their chips not written while they are open (what a
   * page cache holds is then what the media holds). False means "not shown", not "different":
   * compare the values then. Why: a power-cut campaign compares every record of a torn fork
   * with its step boundary's, hundreds per cut point on a full store; reading them was most of it.
   */
  readsSameAs(other: FlashStore, type: number, id: number): boolean {
    this.checkMounted();
    other.checkMounted();
    if (!this.readOnly || !other.readOnly || !this.key || !other.key || !bytesEqual(this.key, other.key)) return false;
    if (!sameGeometry(this.g, other.g) || !this.chip.readsExact || !other.chip.readsExact) return false;
    const r = this.recs.find(type, id);
    const o = other.recs.find(type, id);
    if (r === NIL || o === NIL || this.recs.kind[r] !== ITEM_PUT || other.recs.kind[o] !== ITEM_PUT) return false;
    if (this.recs.length[r] !== other.recs.length[o]) return false;
    for (let c = 0; c < copiesFor(type); c++) {
      const slots = this.fragSlots(r, c);
      if (other.fragSlots(o, c) !== slots) return false;
      for (let f = 0; f < slots; f++) if (!this.sameItemAs(other, this.fragAt(r, c, f), other.fragAt(o, c, f))) return false;
    }
    return true;
  }

  /** Item h here and item k of `other` are the same bytes on flash (see readsSameAs). */
  private sameItemAs(other: FlashStore, h: Item, k: Item): boolean {
    if (h === NIL || k === NIL) return h === k;
    const a = this.items;
    const b = other.items;
    const block = a.block[h] as number;
    const page = a.page[h] as number;
    if (block < 0 || block !== b.block[k] || page !== b.page[k] || a.offset[h] !== b.offset[k] || a.length[h] !== b.length[k]) return false;
    if (a.kind[h] !== b.kind[k] || a.version[h] !== b.version[k] || a.fragIndex[h] !== b.fragIndex[k] || a.fragCount[h] !== b.fragCount[k]) return false;
    const bytes = this.chip.media.readPage(block, page);
    return bytes !== null && bytes === other.chip.media.readPage(block, page);
  }

  ids(type: number): number[] {
    this.checkMounted();
    const out: number[] = [];
    const recs = this.recs;
    if (Number.isInteger(type) && type >= 0 && type <= RECORD_TYPE_MAX) {
      for (let r = recs.firstOf(type); r !== NIL; r = recs.nextOf(r)) if (recs.kind[r] === ITEM_PUT) out.push(recs.id[r] as number);
    }
    return out.sort((a, b) => a - b);
  }

  isReclaimable(type: number, id: number): boolean {
    this.checkMounted();
    const r = this.recs.find(type, id);
    return r !== NIL && this.recs.kind[r] === ITEM_PUT && this.hasMark(r);
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
    this.checkMounted();
    const recordsByType: Record<number, number> = {};
    let records = 0;
    let reclaimableRecords = 0;
    let usedBytes = 0;
    let reclaimableBytes = 0;
    const recs = this.recs;
    for (let type = 0; type <= RECORD_TYPE_MAX; type++) {
      for (let r = recs.firstOf(type); r !== NIL; r = recs.nextOf(r)) {
        if (recs.kind[r] !== ITEM_PUT) continue;
        const length = recs.length[r] as number;
        records++;
        recordsByType[type] = (recordsByType[type] ?? 0) + 1;
        usedBytes += length;
        if (this.hasMark(r)) {
          reclaimableRecords++;
          reclaimableBytes += length;
        }
      }
    }
    return {
      records, recordsByType, reclaimableRecords, reclaimedRecords: this.reclaimedTotal,
      freeBytes: Math.max(0, this.capacityCost() - this.liveCost), usedBytes, reclaimableBytes,
      eccCorrections: this.counters.eccCorrections,
    };
  }

  flashStats(): FlashStats {
    this.checkMounted();
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
    this.checkMounted();
    const r = this.recs.find(type, id);
    if (r === NIL || this.recs.kind[r] !== ITEM_PUT) return [];
    const out: { copy: number; fragment: number; block: number; page: number; lane: number }[] = [];
    const it = this.items;
    for (let copy = 0; copy < 2; copy++) {
      const slots = this.fragSlots(r, copy);
      for (let f = 0; f < slots; f++) {
        const h = this.fragAt(r, copy, f);
        if (h === NIL) continue;
        const block = it.block[h] as number;
        out.push({ copy, fragment: it.fragIndex[h] as number, block, page: it.page[h] as number, lane: block < 0 ? -1 : (this.table.lane[block] as number) });
      }
    }
    return out;
  }

  /**
   * Recounts the in-memory index from first principles and throws (invariant violated) when
   * anything differs: block lists (membership, counts, placement, lanes), records (hash,
   * identity: each live item named once), live flags, frameLive, commits, liveCost per block
   * and in total, keyEntries when built. For tests and diagnostics: O(items), allocates.
   * Returns the table sizes it saw.
   */
  checkIndex(): { items: number; itemRows: number; freeItemRows: number; detachedItems: number; records: number } {
    this.checkMounted();
    const it = this.items;
    const recs = this.recs;
    const t = this.table;
    const top = it.top;
    const where = new Int32Array(top).fill(-2); // -2: nowhere yet, -1: pending, b: listed in block b
    const blockCost = new Int32Array(this.g.blocks);
    let listed = 0;
    for (let b = 0; b < this.g.blocks; b++) {
      let n = 0;
      let last = NIL;
      for (let h = t.head[b] as number; h !== NIL; h = it.next[h] as number) {
        assert(h >= 0 && h < top && it.kind[h] !== 0, `block ${b} lists a free or invalid item row ${h}`);
        assert(where[h] === -2, `item ${h} listed twice`);
        where[h] = b;
        assert(it.block[h] === b, `item ${h} listed in block ${b} but placed in ${it.block[h]}`);
        if (it.live[h]) blockCost[b] = (blockCost[b] as number) + this.refCost(h);
        n++;
        last = h;
      }
      assert(n === t.count[b] && last === t.tail[b], `block ${b}: list of ${n} items, count says ${t.count[b]}`);
      assert(n === 0 || (t.state[b] !== BlockState.Free && t.state[b] !== BlockState.Bad), `free or bad block ${b} lists items`);
      assert(blockCost[b] === t.liveCost[b], `block ${b}: live cost ${t.liveCost[b]}, recount ${blockCost[b]}`);
      listed += n;
    }
    let pending = 0;
    for (const w of this.lanes) {
      for (const p of w.pending) {
        assert(where[p.ref] === -2, `pending item ${p.ref} is also listed`);
        where[p.ref] = -1;
        pending++;
      }
    }
    const named = new Uint8Array(top);
    const name = (h: Item, what: string): void => {
      assert(h >= 0 && h < top && it.kind[h] !== 0, `${what} names a free or invalid item row ${h}`);
      assert(named[h] === 0, `${what}: item ${h} is referenced twice`);
      assert(it.live[h] === 1, `${what}: referenced item ${h} is not counted live`);
      named[h] = 1;
    };
    let rows = 0;
    for (let type = 0; type <= RECORD_TYPE_MAX; type++) {
      for (let r = recs.firstOf(type); r !== NIL; r = recs.nextOf(r)) {
        rows++;
        const id = recs.id[r] as number;
        const kind = recs.kind[r] as number;
        const what = `record ${type}/${id}`;
        assert(recs.type[r] === type && recs.find(type, id) === r, `${what}: not found by its key`);
        assert(kind === ITEM_PUT || kind === ITEM_TOMBSTONE, `${what}: kind ${kind}`);
        for (let c = 0; c < 2; c++) {
          const slots = this.fragSlots(r, c);
          assert(c === 0 || slots === 0 || type < CRITICAL_TYPE_LIMIT, `${what}: a second copy of a non-critical type`);
          for (let f = 0; f < slots; f++) {
            const h = this.fragAt(r, c, f);
            if (h === NIL) continue;
            name(h, what);
            assert(it.type[h] === type && it.id[h] === id && it.kind[h] === kind && it.version[h] === recs.version[r], `${what}: item ${h} is of another key or version`);
            assert(copyOfFlags(it.flags[h] as number) === c && (kind !== ITEM_PUT || it.fragIndex[h] === f), `${what}: item ${h} in the wrong copy or fragment slot`);
            const b = it.block[h] as number;
            assert(b < 0 || t.lane[b] === c, `${what}: copy ${c} is in a block of lane ${t.lane[b]}`);
          }
        }
        if (kind === ITEM_PUT) assert(recs.length[r] === this.recordLength(r), `${what}: length ${recs.length[r]}, recount ${this.recordLength(r)}`);
        const marks = [recs.mark0[r] as number, recs.mark1[r] as number];
        marks.forEach((h, c) => {
          if (h === NIL) return;
          assert(kind === ITEM_PUT, `${what}: a tombstone with a mark`);
          name(h, `${what} mark`);
          assert(it.kind[h] === ITEM_MARK && it.type[h] === type && it.id[h] === id && copyOfFlags(it.flags[h] as number) === c, `${what}: mark ${h} is not this key's mark of copy ${c}`);
          assert((it.version[h] as number) > (recs.version[r] as number) && it.version[h] === this.markVersion(r), `${what}: mark ${h} not newer than the record, or copies disagree`);
        });
      }
    }
    assert(rows === recs.size, `record rows: ${rows} in the type lists, ${recs.size} in the hash`);
    for (const [frame, c] of this.commits) {
      assert(this.frameLive.has(frame), `commit kept for frame ${frame} without live items`);
      assert(it.kind[c] === ITEM_COMMIT && it.version[c] === frame, `commit of frame ${frame} is item ${c}, not a commit of that frame`);
      if (it.frame[c] !== frame) name(c, `relocated commit of frame ${frame}`);
      else assert(it.live[c] === 0, `commit of frame ${frame} counted live in its own frame`);
    }
    const frames = new Map<number, number>();
    let liveTotal = 0;
    let detached = 0;
    for (let h = 0; h < top; h++) {
      if (it.kind[h] === 0) {
        assert(it.live[h] === 0 && where[h] === -2, `free item row ${h} is live or listed`);
        continue;
      }
      if (it.live[h]) {
        assert(named[h] === 1, `item ${h} is counted live but nothing refers to it`);
        liveTotal += this.refCost(h);
        frames.set(it.frame[h] as number, (frames.get(it.frame[h] as number) ?? 0) + 1);
      }
      if (where[h] === -2) {
        // Detached: its block was erased while something still referred to it.
        detached++;
        assert(it.block[h] === -1, `item ${h} is in no list but placed in block ${it.block[h]}`);
        assert(it.live[h] === 1 || (it.kind[h] === ITEM_COMMIT && this.commits.get(it.version[h] as number) === h), `item row ${h} leaked: in no list, pending in no lane, referred to by nothing`);
      }
    }
    assert(frames.size === this.frameLive.size, `frameLive has ${this.frameLive.size} frames, recount ${frames.size}`);
    for (const [frame, n] of frames) {
      assert(this.frameLive.get(frame) === n, `frame ${frame}: frameLive ${this.frameLive.get(frame)}, recount ${n}`);
      assert(this.commits.has(frame), `frame ${frame} has live items but no commit`);
    }
    assert(liveTotal === this.liveCost, `liveCost ${this.liveCost}, recount ${liveTotal}`);
    assert(listed + pending + detached === it.size, `item rows in use ${it.size}, found ${listed} listed + ${pending} pending + ${detached} detached`);
    if (this.keyEntriesReady) {
      const recount = new Map<number, number>();
      for (let h = 0; h < top; h++) {
        if ((where[h] as number) < 0 || (it.kind[h] !== ITEM_PUT && it.kind[h] !== ITEM_MARK)) continue;
        const key = keyOf(it.type[h] as number, it.id[h] as number);
        recount.set(key, (recount.get(key) ?? 0) + 1);
      }
      assert(recount.size === this.keyEntries.size, `keyEntries has ${this.keyEntries.size} keys, recount ${recount.size}`);
      for (const [key, n] of recount) assert(this.keyEntries.get(key) === n, `keyEntries of ${key}: ${this.keyEntries.get(key)}, recount ${n}`);
    }
    return { items: listed + pending, itemRows: top, freeItemRows: it.freeRows(), detachedItems: detached, records: rows };
  }

  /**
   * Ends the store and hands its RAM back: the large index tables go to the spare memory the
   * next mount takes (columns.ts), as a device's firmware reuses its static index RAM after a
   * power cycle. Flash is untouched: a commit is on flash when it returns, nothing is buffered.
   * Every later call on this store throws UNMOUNTED; unmounting again does nothing.
   */
  unmount(): void {
    if (!this.mounted) return;
    this.mounted = false;
    this.items.release();
    this.recs.release();
    this.moreFrags.clear();
    this.frameLive.clear();
    this.commits.clear();
    this.pageCache.clear();
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
      // Staged items are in no block list and nothing refers to them: their rows go back.
      this.reclaimedTotal = reclaimedBefore;
      for (const w of this.lanes) {
        for (const p of w.pending) this.items.free(p.ref);
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
    let version = this.seq[SEQ_VERSION] as number;
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
    const r = this.recs.find(Math.floor(key / TYPE_SPAN), key % TYPE_SPAN);
    if (r === NIL) return { exists: false, length: 0, marked: false, tomb: false, order: 0 };
    const marked = this.hasMark(r);
    return { exists: this.recs.kind[r] === ITEM_PUT, length: this.recs.length[r] as number, marked, tomb: this.recs.kind[r] === ITEM_TOMBSTONE, order: marked ? this.markVersion(r) : 0 };
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
    const recs = this.recs;
    for (let type = 0; type <= RECORD_TYPE_MAX; type++) {
      for (let r = recs.firstOf(type); r !== NIL; r = recs.nextOf(r)) {
        const key = keyOf(type, recs.id[r] as number);
        const s = this.overlay.get(key) ?? (this.hasMark(r) ? this.baselineOf(key) : undefined);
        if (s && s.exists && s.marked) candidates.push({ key, type, id: recs.id[r] as number, order: s.order });
      }
    }
    for (const [key, s] of this.overlay) {
      if (!s.exists || !s.marked || recs.find(Math.floor(key / TYPE_SPAN), key % TYPE_SPAN) !== NIL) continue;
      candidates.push({ key, type: Math.floor(key / TYPE_SPAN), id: key % TYPE_SPAN, order: s.order });
    }
    candidates.sort((a, b) => a.order - b.order);
    let version = items.length ? (items[items.length - 1] as PlannedItem).version + 1 : (this.seq[SEQ_VERSION] as number);
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
    const frame = this.takeFrame();
    const written: Item[] = [];
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
    if (items.length) this.seq[SEQ_VERSION] = (items[items.length - 1] as PlannedItem).version + 1;
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
  private applyWritten(written: Item[]): void {
    const version = this.items.version;
    const groups = new Map<number, Item[]>();
    for (const h of written) {
      const v = version[h] as number;
      const g = groups.get(v);
      if (g) g.push(h);
      else groups.set(v, [h]);
    }
    for (const v of [...groups.keys()].sort((a, b) => a - b)) this.applyGroup(groups.get(v) as Item[]);
  }

  private applyGroup(group: Item[]): void {
    const it = this.items;
    const first = group[0] as Item;
    const type = it.type[first] as number;
    const id = it.id[first] as number;
    const kind = it.kind[first] as number;
    const key = keyOf(type, id);
    for (const h of group) if (it.kind[h] === ITEM_PUT || it.kind[h] === ITEM_MARK) this.bumpKeyEntries(key, 1);
    const old = this.recs.find(type, id);
    if (kind === ITEM_MARK) {
      assert(old !== NIL && this.recs.kind[old] === ITEM_PUT && !this.hasMark(old), "mark on a missing or marked record");
      for (const h of group) {
        if (copyOfFlags(it.flags[h] as number) === 0) this.recs.mark0[old] = h;
        else this.recs.mark1[old] = h;
      }
      for (const h of group) this.addLive(h);
      return;
    }
    // The new record takes the old one's row (so its place in iteration order) or a new row.
    const oldLive = old !== NIL ? this.liveItemsOf(old) : [];
    const r = old !== NIL ? old : this.recs.findOrInsert(type, id);
    this.resetRec(r, kind, it.version[first] as number);
    this.recs.mark0[r] = NIL;
    this.recs.mark1[r] = NIL;
    for (const h of group) this.setFrag(r, copyOfFlags(it.flags[h] as number), kind === ITEM_PUT ? (it.fragIndex[h] as number) : 0, h);
    if (kind === ITEM_PUT) this.recs.length[r] = this.recordLength(r);
    this.forEachLiveItem(r, (h) => this.addLive(h));
    for (const h of oldLive) this.dropLive(h);
  }

  // ---- live accounting -------------------------------------------------------------------------

  private addLive(h: Item): void {
    const it = this.items;
    assert(it.live[h] === 0, "item counted live twice");
    it.live[h] = 1;
    const frame = it.frame[h] as number;
    this.frameLive.set(frame, (this.frameLive.get(frame) ?? 0) + 1);
    const cost = this.refCost(h);
    const b = it.block[h] as number;
    if (b >= 0) (this.table.liveCost[b] as number) += cost;
    this.liveCost += cost;
  }

  private dropLive(h: Item): void {
    const it = this.items;
    assert(it.live[h] === 1, "dropping an item that is not live");
    it.live[h] = 0;
    const frame = it.frame[h] as number;
    const n = (this.frameLive.get(frame) ?? 0) - 1;
    assert(n >= 0, `frame ${frame} live count below zero`);
    const cost = this.refCost(h);
    const b = it.block[h] as number;
    if (b >= 0) (this.table.liveCost[b] as number) -= cost; // b < 0: its block was erased with the item lost (liveCost reset then)
    this.liveCost -= cost;
    if (n > 0) {
      this.frameLive.set(frame, n);
      this.freeIfDetached(h);
      return;
    }
    this.frameLive.delete(frame);
    const c = this.commits.get(frame);
    this.commits.delete(frame);
    if (c !== undefined && it.frame[c] !== frame) this.dropLive(c);
    else if (c !== undefined) this.freeIfDetached(c);
    this.freeIfDetached(h);
  }

  /**
   * A row whose block was erased while it was still referred to (forgetItems) goes back to
   * the table once nothing refers to it any more. Staged items (also block -1) are never
   * live nor a kept commit, so they never get here.
   */
  private freeIfDetached(h: Item): void {
    const it = this.items;
    if (it.block[h] !== -1 || it.live[h] === 1 || it.kind[h] === 0) return;
    if (it.kind[h] === ITEM_COMMIT && this.commits.get(it.version[h] as number) === h) return;
    it.free(h);
  }

  private refCost(h: Item): number {
    const kind = this.items.kind[h] as number;
    return kind === ITEM_PUT ? this.itemCost(this.items.length[h] as number) : this.itemCost(kind === ITEM_COMMIT ? COMMIT_PAYLOAD_BYTES : 0);
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
    const it = this.items;
    for (let b = 0; b < this.g.blocks; b++) {
      for (let h = this.table.head[b] as number; h !== NIL; h = it.next[h] as number) {
        const kind = it.kind[h];
        if (kind !== ITEM_PUT && kind !== ITEM_MARK) continue;
        const type = it.type[h] as number;
        const id = it.id[h] as number;
        this.keyEntries.setTI(type, id, (this.keyEntries.getTI(type, id) ?? 0) + 1);
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

  /** A fresh frame number. */
  private takeFrame(): number {
    const frame = this.seq[SEQ_FRAME] as number;
    this.seq[SEQ_FRAME] = frame + 1;
    return frame;
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
      this.forgetItems(victim);
      this.pageCache.clear();
      this.chip.markBad(victim);
      info.state = BlockState.Bad;
      return;
    }
    this.eraseOrRetire(victim);
  }

  /** Copies the live items of `victim` into a new frame in its lane; the victim then holds nothing live. */
  private relocate(victim: number): void {
    // `it` is the table object: its arrays may be replaced while items are added below.
    const it = this.items;
    const lane = this.table.lane[victim] as number;
    const frame = this.takeFrame();
    const olds: Item[] = [];
    const neos: Item[] = [];
    const head = this.table.head[victim] as number;
    const putMarkHere = new Map<number, number>();
    let tombstones = false;
    for (let h = head; h !== NIL; h = it.next[h] as number) {
      const kind = it.kind[h];
      if (kind === ITEM_TOMBSTONE) tombstones = true;
      if (kind !== ITEM_PUT && kind !== ITEM_MARK) continue;
      const key = keyOf(it.type[h] as number, it.id[h] as number);
      putMarkHere.set(key, (putMarkHere.get(key) ?? 0) + 1);
    }
    if (tombstones) this.ensureKeyEntries(); // before any relocation is written
    for (let h = head; h !== NIL; h = it.next[h] as number) {
      const kind = it.kind[h] as number;
      if (kind === ITEM_COMMIT || it.live[h] === 0) continue;
      const key = keyOf(it.type[h] as number, it.id[h] as number);
      if (kind === ITEM_TOMBSTONE && (this.keyEntries.get(key) ?? 0) - (putMarkHere.get(key) ?? 0) <= 0) {
        this.dropTombstone(h);
        continue;
      }
      const bytes = this.readItemBytes(h) ?? this.otherCopyBytes(h);
      if (!bytes) {
        this.counters.lostItems++;
        continue;
      }
      const fields: NewItem = {
        kind, flags: it.flags[h] as number, type: it.type[h] as number, id: it.id[h] as number, fragIndex: it.fragIndex[h] as number,
        fragCount: it.fragCount[h] as number, version: it.version[h] as number, frame,
      };
      olds.push(h);
      neos.push(this.addItem(lane, fields, bytes.subarray(ITEM_HEADER_BYTES)));
    }
    // commits still needed by live items elsewhere
    for (let h = head; h !== NIL; h = it.next[h] as number) {
      if (it.kind[h] !== ITEM_COMMIT) continue;
      const committedFrame = it.version[h] as number;
      if (this.commits.get(committedFrame) !== h) continue;
      let moved = 0;
      for (const o of olds) if (it.frame[o] === committedFrame) moved++;
      const stillNeeded = (this.frameLive.get(committedFrame) ?? 0) - moved;
      if (stillNeeded <= 0) continue;
      const extra = it.extraOf(h);
      olds.push(h);
      neos.push(this.addCommit(lane, committedFrame, frame, extra));
    }
    if (olds.length === 0) return;
    const commit = this.addCommit(lane, frame, frame);
    this.flush(lane);
    for (let i = 0; i < olds.length; i++) {
      const neo = neos[i] as Item;
      const kind = it.kind[neo];
      if (kind === ITEM_COMMIT) continue;
      this.replaceRef(olds[i] as Item, neo);
      if (kind === ITEM_PUT || kind === ITEM_MARK) this.bumpKeyEntries(keyOf(it.type[neo] as number, it.id[neo] as number), 1);
    }
    for (let i = 0; i < olds.length; i++) {
      const old = olds[i] as Item;
      const neo = neos[i] as Item;
      if (it.kind[neo] !== ITEM_COMMIT) continue;
      const committedFrame = it.version[old] as number;
      if (this.commits.get(committedFrame) !== old) continue;
      if (!this.frameLive.has(committedFrame)) continue;
      this.commits.set(committedFrame, neo);
      this.addLive(neo);
      if (it.frame[old] !== committedFrame) this.dropLive(old);
    }
    if (this.frameLive.has(frame)) this.commits.set(frame, commit);
    this.counters.itemsRelocated += olds.length;
  }

  /** Points the index at `neo` (the relocated copy of `old`) and moves the live accounting. */
  private replaceRef(old: Item, neo: Item): void {
    const it = this.items;
    const r = this.recs.find(it.type[old] as number, it.id[old] as number);
    assert(r !== NIL, "relocated item of a missing record");
    const c = copyOfFlags(it.flags[old] as number);
    if (it.kind[old] === ITEM_MARK) {
      const marks = c === 0 ? this.recs.mark0 : this.recs.mark1;
      assert(marks[r] === old, "relocated mark is not the record's mark");
      marks[r] = neo;
    } else {
      this.setFrag(r, c, it.kind[old] === ITEM_PUT ? (it.fragIndex[old] as number) : 0, neo);
    }
    this.addLive(neo);
    this.dropLive(old);
  }

  private dropTombstone(h: Item): void {
    const it = this.items;
    const r = this.recs.find(it.type[h] as number, it.id[h] as number);
    assert(r !== NIL, "dropping the tombstone of a missing record");
    this.clearCopy(r, copyOfFlags(it.flags[h] as number));
    this.dropLive(h);
    if (this.fragSlots(r, 0) === 0 && this.fragSlots(r, 1) === 0) this.deleteRec(r);
  }

  private otherCopyBytes(h: Item): Uint8Array | null {
    const it = this.items;
    const type = it.type[h] as number;
    const r = this.recs.find(type, it.id[h] as number);
    if (r === NIL || copiesFor(type) < 2) return null;
    let other: Item;
    if (it.kind[h] === ITEM_MARK) {
      const m0 = this.recs.mark0[r] as number;
      const m1 = this.recs.mark1[r] as number;
      other = m0 !== NIL && m0 !== h ? m0 : m1 !== NIL && m1 !== h ? m1 : NIL;
    } else {
      other = this.fragAt(r, 1 - copyOfFlags(it.flags[h] as number), it.kind[h] === ITEM_PUT ? (it.fragIndex[h] as number) : 0);
    }
    return other !== NIL ? this.readItemBytes(other) : null;
  }

  /** Erases a block whose live items are gone; a failing erase retires it (bad-block marker). */
  private eraseOrRetire(b: number): void {
    const info = this.block(b);
    this.forgetItems(b);
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

  /**
   * Empties a block's item list (its flash is about to go). Rows nothing refers to go back to
   * the item table. A row still referred to (a live item whose bytes were lost, or a commit
   * the index still names) is kept, detached (block -1, unreadable), so its handle is never
   * reused while it is referred to.
   */
  private forgetItems(b: number): void {
    const it = this.items;
    for (let h = this.table.head[b] as number; h !== NIL; ) {
      const next = it.next[h] as number;
      const kind = it.kind[h];
      if (kind === ITEM_PUT || kind === ITEM_MARK) this.bumpKeyEntries(keyOf(it.type[h] as number, it.id[h] as number), -1);
      if (it.live[h] === 1 || (kind === ITEM_COMMIT && this.commits.get(it.version[h] as number) === h)) {
        it.block[h] = -1;
        it.next[h] = NIL;
      } else {
        it.free(h);
      }
      h = next;
    }
    this.table.head[b] = NIL;
    this.table.tail[b] = NIL;
    this.table.count[b] = 0;
    this.table.liveCost[b] = 0;
  }

  // ---- page writing --------------------------------------------------------------------------------

  private addCommit(lane: number, committedFrame: number, carrier: number, reclaimed = this.reclaimedTotal): Item {
    const payload = new Uint8Array(COMMIT_PAYLOAD_BYTES);
    writeU48(payload, 0, reclaimed);
    const h = this.addItem(lane, { kind: ITEM_COMMIT, flags: 0, type: 0, id: 0, fragIndex: 0, fragCount: 1, version: committedFrame, frame: carrier }, payload);
    this.items.setExtra(h, reclaimed);
    return h;
  }

  /** Stages an item in the lane's page being filled (flushing or sealing first when it does not fit); returns its handle. */
  private addItem(lane: number, fields: NewItem, payload: Uint8Array): Item {
    const size = ITEM_HEADER_BYTES + payload.length;
    const slots = slotsFor(size);
    assert(slots <= this.slotsPerPage, "item larger than a page");
    const bytes = new Uint8Array(size);
    bytes[IT_KIND] = fields.kind;
    bytes[IT_FLAGS] = fields.flags;
    bytes[IT_TYPE] = fields.type;
    bytes[IT_FRAG_INDEX] = fields.fragIndex;
    bytes[IT_FRAG_COUNT] = fields.fragCount;
    writeU16(bytes, IT_LENGTH, payload.length);
    writeU32(bytes, IT_ID, fields.id);
    writeU48(bytes, IT_VERSION, fields.version);
    writeU48(bytes, IT_FRAME, fields.frame);
    bytes.set(payload, ITEM_HEADER_BYTES);
    writeU32(bytes, IT_CRC, itemCrc(bytes, 0, payload.length));
    for (let guardLoops = 0; ; guardLoops++) {
      assert(guardLoops < this.g.blocks * 4, "addItem cannot place an item");
      const w = this.lanes[lane] as LaneWriter;
      if (w.block < 0) this.openBlock(lane);
      if (w.pendingSlots + slots > this.slotsPerPage) {
        this.flush(lane);
        continue;
      }
      const n = (this.table.count[w.block] as number) + w.pending.length + 1;
      if ((this.table.nextPage[w.block] as number) + 1 + this.summaryPages(n) > this.g.pagesPerBlock) {
        if (w.pending.length) this.flush(lane);
        else this.seal(lane);
        continue;
      }
      const it = this.items;
      const h = it.alloc();
      it.kind[h] = fields.kind;
      it.flags[h] = fields.flags;
      it.type[h] = fields.type;
      it.id[h] = fields.id;
      it.fragIndex[h] = fields.fragIndex;
      it.fragCount[h] = fields.fragCount;
      it.length[h] = payload.length;
      it.version[h] = fields.version;
      it.frame[h] = fields.frame;
      it.page[h] = 0;
      it.offset[h] = 0;
      w.pending.push({ ref: h, bytes });
      w.pendingSlots += slots;
      return h;
    }
  }


  private summaryPages(entries: number): number {
    return Math.max(1, Math.ceil(entries / this.summaryPerPage));
  }


  /** Programs the lane's pending page; on a program failure the block is retired and the page goes to a new block. */
  private flush(lane: number): void {
    const w = this.lanes[lane] as LaneWriter;
    if (w.pending.length === 0) return;
    const it = this.items;
    for (let attempts = 0; ; attempts++) {
      assert(attempts < this.g.blocks, "no block accepts the page");
      if (w.block < 0) this.openBlock(lane);
      const b = w.block;
      const info = this.block(b);
      const page = new Uint8Array(this.pageTotal).fill(0xff);
      let at = PAGE_HEADER_BYTES;
      for (const p of w.pending) {
        it.block[p.ref] = b;
        it.page[p.ref] = info.nextPage;
        it.offset[p.ref] = at;
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
      const ok = this.chip.program(b, info.nextPage, page, true); // a fresh page, never touched again
      info.nextPage++;
      if (ok) {
        for (const p of w.pending) this.table.pushItem(b, p.ref, it);
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
    const it = this.items;
    assert(w.pending.length === 0, "seal with a pending page");
    const total = this.summaryPages(this.table.count[b] as number);
    assert(info.nextPage + total <= this.g.pagesPerBlock, "summary does not fit");
    w.block = -1;
    let h = this.table.head[b] as number; // the block's items, in write order, summaryPerPage per page
    for (let i = 0; i < total; i++) {
      const page = new Uint8Array(this.pageTotal).fill(0xff);
      let at = PAGE_HEADER_BYTES;
      let entries = 0;
      for (; h !== NIL && entries < this.summaryPerPage; h = it.next[h] as number, entries++) {
        encodeSummaryEntry(it, h, page, at);
        at += SUMMARY_ENTRY_BYTES;
      }
      page[PH_KIND] = PAGE_KIND_SUMMARY;
      page[PH_LANE] = lane;
      writeU16(page, PH_USED, at);
      writeU16(page, PH_COUNT, entries);
      writeU16(page, PH_INDEX, i);
      writeU16(page, PH_TOTAL, total);
      sealPageHeader(page);
      writeEcc(page, this.g);
      if (!this.chip.program(b, this.g.pagesPerBlock - total + i, page, true)) {
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
      if (!this.chip.program(pick, 0, page, true)) {
        this.chip.markBad(pick);
        info.state = BlockState.Bad;
        continue;
      }
      info.state = BlockState.Active;
      info.lane = lane;
      info.nextPage = 1;
      assert(this.table.count[pick] === 0, "a free block still lists items");
      info.liveCost = 0;
      info.corrections = 0;
      (this.lanes[lane] as LaneWriter).block = pick;
      return;
    }
    throw new StoreError("STORAGE_FULL", "storage full: no usable flash block is left");
  }

  // ---- reading ---------------------------------------------------------------------------------------

  /** Reads and verifies a page: CRC first, ECC only when the CRC fails. Null when unreadable or erased. */
  private readValidPage(b: number, p: number, into?: Uint8Array): Uint8Array | null {
    const cacheKey = b * this.g.pagesPerBlock + p;
    const cached = this.pageCache.get(cacheKey);
    if (cached) return cached;
    return this.validatePage(b, p, this.chip.readPageView(b, p, into), into);
  }

  /**
   * Verifies a page just read (CRC, then ECC when the CRC fails) and caches it when valid.
   * `page` may be a read-only view shorter than a page (readPageView): it is kept as is when
   * its used part is all there and its CRC holds (readers stay within the used part);
   * otherwise a full copy (trimmed bytes 0xFF) is what gets checked and corrected.
   */
  private validatePage(b: number, p: number, view: Uint8Array, into?: Uint8Array): Uint8Array | null {
    if (view.length === 0) return null; // erased (a view stores no byte past its end: all read 0xFF)
    const cacheKey = b * this.g.pagesPerBlock + p;
    const transient = view === into; // the caller's buffer, reused by its next read: neither cached nor memoized
    let page = view;
    if (!this.viewValid(view, transient)) {
      page = new Uint8Array(this.pageTotal).fill(0xff);
      page.set(view.subarray(0, this.pageTotal));
      if (!pageLooksValid(page, this.g.pageBytes)) {
        if (isErased(page, this.pageTotal)) return null;
        const outcome = correctPage(page, this.g);
        if (outcome.uncorrectable > 0 || !pageLooksValid(page, this.g.pageBytes)) {
          if (outcome.uncorrectable > 0) this.counters.eccUncorrectable++;
          return null;
        }
        this.noteCorrections(b, outcome.corrected);
      }
    }
    if (transient && page === view) return page;
    if (this.pageCache.size > 64) this.pageCache.clear();
    this.pageCache.set(cacheKey, page);
    return page;
  }

  /** The view holds its whole used part and its header and CRC hold (remembered across mounts: DecryptCache). */
  private viewValid(view: Uint8Array, transient: boolean): boolean {
    const known = transient ? undefined : this.cache?.validPages;
    if (known?.has(view)) return true;
    if (!(view.length >= PAGE_HEADER_BYTES && readU16(view, PH_USED) <= view.length && pageLooksValid(view, this.g.pageBytes))) return false;
    known?.add(view);
    return true;
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

  /**
   * Reads page 0 once: the bad-block marker (spare byte 0) and the block header. With `into`
   * (see Media.readPage) the header's keyCheck may view `into`: use it before the next read.
   */
  private readBlockStart(b: number, into?: Uint8Array): { bad: boolean; header: BlockHeader | null } {
    const raw = this.chip.readPageView(b, 0, into);
    const at = this.g.pageBytes + BAD_BLOCK_MARKER_OFFSET;
    if (at < raw.length && isBadMarker(raw[at] as number)) return { bad: true, header: null }; // past a view's end: erased (good)
    return { bad: false, header: this.parseHeader(b, this.validatePage(b, 0, raw, into)) };
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
      keyCheck: page.subarray(BH_KEY_CHECK, BH_KEY_CHECK + KEY_CHECK_BYTES), // a view: validated pages are never modified
    };
  }

  /**
   * The block's summary pages, verified and kept in `scratch`, or null when the block was never
   * sealed or its summary is unreadable. Every page is checked before any entry is used, so a
   * bad summary leaves nothing behind (the block is then scanned instead; its copies are
   * dropped from the scratch). Each page is read into `into` (Media.readPage) and copied out at
   * once. Reads: the last page first, then the others in order (as always).
   */
  private readSummaryPages(b: number, scratch: PageScratch, into: Uint8Array): Uint8Array[] | null {
    const ppb = this.g.pagesPerBlock;
    scratch.mark();
    const lastPage = this.readValidPage(b, ppb - 1, into);
    if (!lastPage || lastPage[PH_KIND] !== PAGE_KIND_SUMMARY) return null;
    const total = readU16(lastPage, PH_TOTAL);
    if (total < 1 || readU16(lastPage, PH_INDEX) !== total - 1 || total >= ppb) return null;
    const last = keepSummary(lastPage, scratch, into);
    const pages: Uint8Array[] = [];
    for (let i = 0; i < total - 1; i++) {
      const page = this.readValidPage(b, ppb - total + i, into);
      const kept = page && page[PH_KIND] === PAGE_KIND_SUMMARY && readU16(page, PH_INDEX) === i ? keepSummary(page, scratch, into) : null;
      if (!kept) {
        scratch.rewind();
        return null;
      }
      pages.push(kept);
    }
    if (!last) {
      scratch.rewind();
      return null;
    }
    pages.push(last);
    return pages;
  }

  /**
   * Decodes one summary page's entries straight into consecutive rows of the item table
   * (room reserved by the caller) and appends them to the block's list as one run.
   */
  private loadSummaryPage(page: Uint8Array, b: number, totals: Float64Array, commitItems: Item[]): void {
    const it = this.items;
    const { kind, flags, type, id, fragIndex, fragCount, length, version, frame, next, live, block, offset } = it;
    const pageOf = it.page;
    const base = it.top;
    assert(base + readU16(page, PH_COUNT) <= it.capacity, "summary entries past the reserved item rows");
    const count = readU16(page, PH_COUNT);
    // Big-endian fields through a DataView: one load each, where readU16/32/48 load byte by byte.
    const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
    let n = 0;
    for (let e = 0, at = PAGE_HEADER_BYTES; e < count; e++, at += SUMMARY_ENTRY_BYTES) {
      const k = page[at + IT_KIND] as number;
      const fc = page[at + IT_FRAG_COUNT] as number;
      const fi = page[at + IT_FRAG_INDEX] as number;
      if (k < ITEM_PUT || k > ITEM_COMMIT || fc < 1 || fi >= fc) continue; // not an item: skipped, as on any page
      const h = base + n++;
      kind[h] = k;
      flags[h] = page[at + IT_FLAGS] as number;
      type[h] = page[at + IT_TYPE] as number;
      fragIndex[h] = fi;
      fragCount[h] = fc;
      length[h] = view.getUint16(at + IT_LENGTH);
      id[h] = view.getUint32(at + IT_ID);
      const v = view.getUint16(at + IT_VERSION) * U32_SPAN + view.getUint32(at + IT_VERSION + 2);
      const f = view.getUint16(at + IT_FRAME) * U32_SPAN + view.getUint32(at + IT_FRAME + 2);
      version[h] = v;
      frame[h] = f;
      pageOf[h] = view.getUint16(at + SE_PAGE);
      offset[h] = view.getUint16(at + SE_OFFSET);
      block[h] = b;
      live[h] = 0;
      next[h] = h + 1;
      // MountTally.note, inline: this loop runs for every item of a full device.
      if (f > (totals[TOTAL_MAX_FRAME] as number)) totals[TOTAL_MAX_FRAME] = f;
      if (k === ITEM_COMMIT) {
        it.setExtra(h, readU48(page, at + SE_EXTRA)); // other entries: zeros
        commitItems.push(h);
        continue;
      }
      if (v > (totals[TOTAL_MAX_VERSION] as number)) totals[TOTAL_MAX_VERSION] = v;
      if (k !== ITEM_MARK && fi === 0 && ((flags[h] as number) & FLAG_COPY2) === 0) (totals[TOTAL_RECORD_ITEMS] as number)++;
    }
    if (n === 0) return;
    it.claimRun(n);
    const last = base + n - 1;
    next[last] = NIL;
    const t = this.table;
    const tail = t.tail[b] as number;
    if (tail === NIL) t.head[b] = base;
    else next[tail] = base;
    t.tail[b] = last;
    (t.count[b] as number) += n;
  }

  /** The verified data pages of a block that was open at a cut (index = page; null = torn, erased or not data). */
  private readDataPages(b: number): (Uint8Array | null)[] {
    const pages: (Uint8Array | null)[] = [null];
    for (let p = 1; p < this.g.pagesPerBlock; p++) {
      const page = this.readValidPage(b, p);
      pages.push(page && page[PH_KIND] === PAGE_KIND_DATA ? page : null);
    }
    return pages;
  }

  /** Loads the items of a scanned block's data pages; a page's items stop at the first torn one. */
  private loadDataPages(b: number, pages: readonly (Uint8Array | null)[], tally: MountTally): void {
    const it = this.items;
    for (let p = 1; p < pages.length; p++) {
      const page = pages[p];
      if (!page) continue;
      const used = readU16(page, PH_USED);
      const count = readU16(page, PH_COUNT);
      let at = PAGE_HEADER_BYTES;
      for (let i = 0; i < count && at + ITEM_HEADER_BYTES <= used; i++) {
        const k = page[at + IT_KIND] as number;
        const fc = page[at + IT_FRAG_COUNT] as number;
        const fi = page[at + IT_FRAG_INDEX] as number;
        if (k < ITEM_PUT || k > ITEM_COMMIT || fc < 1 || fi >= fc) break;
        const len = readU16(page, at + IT_LENGTH);
        if (at + ITEM_HEADER_BYTES + len > used || readU32(page, at + IT_CRC) !== itemCrc(page, at, len)) break;
        const h = it.alloc();
        it.kind[h] = k;
        it.flags[h] = page[at + IT_FLAGS] as number;
        it.type[h] = page[at + IT_TYPE] as number;
        it.fragIndex[h] = fi;
        it.fragCount[h] = fc;
        it.length[h] = len;
        it.id[h] = readU32(page, at + IT_ID);
        it.version[h] = readU48(page, at + IT_VERSION);
        it.frame[h] = readU48(page, at + IT_FRAME);
        it.page[h] = p;
        it.offset[h] = at;
        if (k === ITEM_COMMIT) it.setExtra(h, readU48(page, at + ITEM_HEADER_BYTES));
        it.block[h] = b;
        this.table.pushItem(b, h, it);
        tally.note(h, k, it.flags[h] as number, fi, it.version[h] as number, it.frame[h] as number);
        at += ITEM_HEADER_BYTES + len;
      }
    }
  }

  /**
   * The item's bytes (header + ciphertext), verified, or null. A view into the cached page,
   * not a copy: callers only read it (cached pages are never modified once validated).
   */
  private readItemBytes(h: Item): Uint8Array | null {
    const it = this.items;
    const b = it.block[h] as number;
    if (b < 0) return null; // its block was erased (the item was lost)
    const page = this.readValidPage(b, it.page[h] as number);
    if (!page) return null;
    const offset = it.offset[h] as number;
    const length = it.length[h] as number;
    const end = offset + ITEM_HEADER_BYTES + length;
    if (end > this.g.pageBytes) return null;
    if (page[offset + IT_KIND] !== it.kind[h] || readU48(page, offset + IT_VERSION) !== it.version[h]) return null;
    if (readU32(page, offset + IT_CRC) !== itemCrc(page, offset, length)) return null;
    return page.subarray(offset, end);
  }

  /** Every fragment of copy `c` reads back with a valid CRC (no decryption). */
  private copyReadable(r: number, c: number): boolean {
    const first = this.fragAt(r, c, 0);
    if (first === NIL) return false;
    const count = this.items.fragCount[first] as number;
    if (this.fragSlots(r, c) !== count) return false;
    for (let f = 0; f < count; f++) {
      const h = this.fragAt(r, c, f);
      if (h === NIL || !this.readItemBytes(h)) return false;
    }
    return true;
  }

  private readCopy(r: number, c: number): Uint8Array | null {
    const first = this.fragAt(r, c, 0);
    if (first === NIL) return null;
    const count = this.items.fragCount[first] as number;
    if (this.fragSlots(r, c) !== count) return null;
    const length = this.recs.length[r] as number;
    const out = valueBuffers.carve(length);
    let at = 0;
    for (let f = 0; f < count; f++) {
      const h = this.fragAt(r, c, f);
      if (h === NIL) return null;
      const bytes = this.readItemBytes(h);
      if (!bytes) return null;
      if (!this.key) return out;
      const plain = this.decryptItem(h, bytes);
      out.set(plain, at);
      at += plain.length;
    }
    return at === length ? out : null;
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


  /**
   * The plaintext of a verified item (`bytes` from readItemBytes). The cache is keyed by
   * version and fragment and checked against the item's CRC, which readItemBytes has just
   * verified over the header and the ciphertext: the same test as a CRC of the ciphertext
   * alone, without a second pass over it.
   */
  private decryptItem(h: Item, bytes: Uint8Array): Uint8Array {
    const cipher = bytes.subarray(ITEM_HEADER_BYTES);
    const version = this.items.version[h] as number;
    const fragIndex = this.items.fragIndex[h] as number;
    if (!this.cache) return this.encrypt(version, fragIndex, cipher);
    const crc = readU32(bytes, IT_CRC);
    const memoKey = version * 256 + fragIndex;
    const hit = this.cache.plain.get(memoKey);
    if (hit && hit.crc === crc) return hit.plain;
    const plain = this.encrypt(version, fragIndex, cipher);
    if (this.cache.plain.size >= DecryptCache.LIMIT) this.cache.plain.clear();
    this.cache.plain.set(memoKey, { crc, plain });
    return plain;
  }


  /** Throws UNMOUNTED once the store was unmounted (its tables may serve another store now). */
  private checkMounted(): void {
    if (!this.mounted) throw new StoreError("UNMOUNTED", "the store was unmounted: mount the chip again");
  }

  /** Runs `body`; a power loss poisons the store (remount needed) and surfaces as StoreError POWER_LOST. */
  private guard<T>(body: () => T): T {
    this.checkMounted();
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


function encodeSummaryEntry(it: ItemTable, h: Item, page: Uint8Array, at: number): void {
  page[at + IT_KIND] = it.kind[h] as number;
  page[at + IT_FLAGS] = it.flags[h] as number;
  page[at + IT_TYPE] = it.type[h] as number;
  page[at + IT_FRAG_INDEX] = it.fragIndex[h] as number;
  page[at + IT_FRAG_COUNT] = it.fragCount[h] as number;
  page[at + 5] = 0;
  writeU16(page, at + IT_LENGTH, it.length[h] as number);
  writeU32(page, at + IT_ID, it.id[h] as number);
  writeU48(page, at + IT_VERSION, it.version[h] as number);
  writeU48(page, at + IT_FRAME, it.frame[h] as number);
  writeU16(page, at + SE_PAGE, it.page[h] as number);
  writeU16(page, at + SE_OFFSET, it.offset[h] as number);
  writeU48(page, at + SE_EXTRA, it.extraOf(h));
  writeU16(page, at + SE_EXTRA + 6, 0);
}
