/**
 * Shards: a campaign of N work items split as `--shard i/n` (1-based, like CI matrices and
 * Kubernetes Indexed Jobs with JOB_COMPLETION_INDEX + 1). Item k belongs to shard (k mod n) + 1,
 * so shards get interleaved, similar-sized slices.
 */
export interface Shard {
  index: number; // 1..count
  count: number;
}

export const WHOLE: Shard = { index: 1, count: 1 };
export const MAX_SHARDS = 10_000;

export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new RangeError(`--shard takes i/n, e.g. 2/8; got "${text}"`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_SHARDS) throw new RangeError(`shard count must be 1..${MAX_SHARDS}, got ${count}`);
  if (index < 1 || index > count) throw new RangeError(`shard index must be 1..${count}, got ${index}`);
  return { index, count };
}

export function inShard(item: number, shard: Shard): boolean {
  return item % shard.count === shard.index - 1;
}
