/**
 * KeyMap: a Map keyed by record key (type * 2^32 + id) that stores one inner Map per type,
 * keyed by id. Record keys are above the small-integer range, and V8 hashes such keys as
 * heap numbers (slow, and an allocation per key); ids are small integers in practice.
 */
const TYPE_SPAN = 0x1_0000_0000;
const TYPES = 256;

export class KeyMap<V> {
  private readonly byType: (Map<number, V> | undefined)[] = new Array<Map<number, V> | undefined>(TYPES);
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(key: number): V | undefined {
    return this.byType[Math.floor(key / TYPE_SPAN)]?.get(key % TYPE_SPAN);
  }

  /** get() by type and id, without building the key. */
  getTI(type: number, id: number): V | undefined {
    return this.byType[type]?.get(id);
  }

  setTI(type: number, id: number, value: V): void {
    let inner = this.byType[type];
    if (!inner) this.byType[type] = inner = new Map<number, V>();
    const before = inner.size;
    inner.set(id, value);
    this.count += inner.size - before;
  }

  has(key: number): boolean {
    return this.byType[Math.floor(key / TYPE_SPAN)]?.has(key % TYPE_SPAN) ?? false;
  }

  set(key: number, value: V): this {
    const type = Math.floor(key / TYPE_SPAN);
    let inner = this.byType[type];
    if (!inner) this.byType[type] = inner = new Map<number, V>();
    const before = inner.size;
    inner.set(key % TYPE_SPAN, value);
    this.count += inner.size - before;
    return this;
  }

  delete(key: number): boolean {
    const inner = this.byType[Math.floor(key / TYPE_SPAN)];
    if (!inner || !inner.delete(key % TYPE_SPAN)) return false;
    this.count--;
    return true;
  }

  clear(): void {
    this.byType.fill(undefined);
    this.count = 0;
  }

  /** The inner map of one type (ids to values), if any. */
  ofType(type: number): ReadonlyMap<number, V> | undefined {
    return this.byType[type];
  }

  *values(): IterableIterator<V> {
    for (const inner of this.byType) if (inner) yield* inner.values();
  }

  *entries(): IterableIterator<[number, V]> {
    for (let type = 0; type < TYPES; type++) {
      const inner = this.byType[type];
      if (inner) for (const [id, v] of inner) yield [type * TYPE_SPAN + id, v];
    }
  }

  [Symbol.iterator](): IterableIterator<[number, V]> {
    return this.entries();
  }
}
