/**
 * What `ukeysim inspect IMAGE` shows: geometry, wear, bad blocks, space, record counts by
 * type, ECC counters. Built without the data key: never a payload, never the secure area.
 */
import { StoreError } from "./api.ts";
import { deviceDataBytes, describeGeometry, type Geometry } from "./geometry.ts";
import type { NandChip } from "./nand.ts";
import { FlashStore } from "./store.ts";

/** Buckets of the erase-count histogram. */
export const HISTOGRAM_BUCKETS = 10;

export interface InspectReport {
  geometry: Geometry;
  geometryText: string;
  deviceBytes: number;
  erase: { min: number; max: number; mean: number; histogram: { from: number; to: number; blocks: number }[] };
  badBlocks: number[];
  store:
    | { formatted: false; reason: string }
    | {
        formatted: true;
        records: number;
        recordsByType: Record<string, number>;
        reclaimableRecords: number;
        reclaimedRecords: number;
        usedBytes: number;
        freeBytes: number;
        reclaimableBytes: number;
        capacityBytes: number;
        freeBlocks: number;
        eccCorrections: number;
        eccUncorrectable: number;
      };
}

export function inspectChip(chip: NandChip): InspectReport {
  const g = chip.geometry;
  const counts: number[] = [];
  for (let b = 0; b < g.blocks; b++) counts.push(chip.eraseCount(b));
  const min = Math.min(...counts);
  const max = Math.max(...counts);
  const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
  const width = Math.max(1, Math.ceil((max - min + 1) / HISTOGRAM_BUCKETS));
  const histogram: { from: number; to: number; blocks: number }[] = [];
  for (let from = min; from <= max; from += width) histogram.push({ from, to: from + width - 1, blocks: counts.filter((c) => c >= from && c < from + width).length });
  const badBlocks: number[] = [];
  for (let b = 0; b < g.blocks; b++) if (chip.readBadMarker(b)) badBlocks.push(b);
  let store: InspectReport["store"];
  try {
    const view = FlashStore.inspect(chip);
    const s = view.stats();
    const f = view.flashStats();
    const byType: Record<string, number> = {};
    for (const [type, n] of Object.entries(s.recordsByType)) byType[`0x${Number(type).toString(16).padStart(2, "0")}`] = n;
    store = {
      formatted: true, records: s.records, recordsByType: byType, reclaimableRecords: s.reclaimableRecords, reclaimedRecords: s.reclaimedRecords,
      usedBytes: s.usedBytes, freeBytes: s.freeBytes, reclaimableBytes: s.reclaimableBytes, capacityBytes: f.capacityBytes, freeBlocks: f.freeBlocks,
      eccCorrections: f.eccCorrections, eccUncorrectable: f.eccUncorrectable,
    };
  } catch (error) {
    if (!(error instanceof StoreError)) throw error;
    store = { formatted: false, reason: error.message };
  }
  return { geometry: g, geometryText: describeGeometry(g), deviceBytes: deviceDataBytes(g), erase: { min, max, mean, histogram }, badBlocks, store };
}

export function formatInspectReport(r: InspectReport): string {
  const lines: string[] = [];
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;
  lines.push(`geometry     ${r.geometryText} (${mib(r.deviceBytes)} data)`);
  lines.push(`erase counts min ${r.erase.min}  max ${r.erase.max}  mean ${r.erase.mean.toFixed(2)}`);
  const peak = Math.max(...r.erase.histogram.map((h) => h.blocks), 1);
  for (const h of r.erase.histogram) lines.push(`  ${String(h.from).padStart(7)}..${String(h.to).padEnd(7)} ${String(h.blocks).padStart(6)} ${"#".repeat(Math.ceil((h.blocks / peak) * 40))}`);
  lines.push(`bad blocks   ${r.badBlocks.length ? r.badBlocks.join(", ") : "none"}`);
  if (!r.store.formatted) {
    lines.push(`store        not readable: ${r.store.reason}`);
    return lines.join("\n");
  }
  const s = r.store;
  lines.push(`records      ${s.records} (${s.reclaimableRecords} reclaimable, ${s.reclaimedRecords} reclaimed by rollover since format)`);
  for (const [type, n] of Object.entries(s.recordsByType)) lines.push(`  type ${type}  ${n}`);
  lines.push(`space        payload ${s.usedBytes} B, reclaimable ${s.reclaimableBytes} B; flash budget ${s.capacityBytes} B, free ${s.freeBytes} B; ${s.freeBlocks} free blocks`);
  lines.push(`ECC          ${s.eccCorrections} corrected, ${s.eccUncorrectable} uncorrectable (while inspecting)`);
  return lines.join("\n");
}
