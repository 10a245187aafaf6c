/**
 * Child of bench/flash.bench.ts: creates N formatted, empty 128 MiB in-memory devices in one
 * process and prints the RSS (MiB) as JSON, so the figure is not polluted by the parent.
 */
import { FlashStore, NandChip } from "../src/flash-store/index.ts";

const count = Number(process.argv[2] ?? 1000);
const key = new Uint8Array(16).fill(1);
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const baseline = process.memoryUsage().rss;
const devices: FlashStore[] = [];
for (let i = 0; i < count; i++) devices.push(FlashStore.format(NandChip.memory(), { key, formatId: i + 1 }));
gc?.();
const rss = process.memoryUsage().rss;
console.log(JSON.stringify({ count: devices.length, rssMiB: rss / 2 ** 20, baselineMiB: baseline / 2 ** 20 }));
