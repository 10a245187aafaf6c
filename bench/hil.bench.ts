/** hil.differential_seq_per_s: fast-check command sequences run on the in-process NAND target and the ModelStore reference. */
import type { BenchModule } from "./harness.ts";
import { runDifferential } from "../hil/index.ts";

const RUNS = 60;

const bench: BenchModule = {
  ids: ["hil.differential_seq_per_s"],
  async run() {
    await runDifferential({ seed: 1, runs: 2 }); // warm-up (personalizes both sides)
    const t0 = performance.now();
    const r = await runDifferential({ seed: 2, runs: RUNS });
    const seconds = (performance.now() - t0) / 1000;
    if (!r.ok) throw new Error(r.message);
    return { "hil.differential_seq_per_s": { value: Math.round((r.runs / seconds) * 10) / 10, unit: "seq/s", note: `${RUNS} sequences of up to 12 commands, incl. personalizing both sides once` } };
  },
};
export default bench;
