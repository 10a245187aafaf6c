/**
 * campaign.cut_points, campaign.cut_points_per_s: the exhaustive single-cut power-cut
 * campaign over the standard COS scenarios (hil/campaign.ts). Each point = fork the chip,
 * tear the operation, remount, judge old-or-new. Measured on a warm run (the personalized
 * base device of the seed is made once and forked; scenario runs and boundary judges are
 * included in the time).
 */
import type { BenchModule } from "./harness.ts";
import { runCampaign } from "../hil/index.ts";

const bench: BenchModule = {
  ids: ["campaign.cut_points", "campaign.cut_points_per_s"],
  async run() {
    await runCampaign({ seed: 1, traces: false }); // builds the scenarios' set-ups (rollover fills the store once)
    let timings = { scenariosMs: 0, judgeMs: 0 };
    const t0 = performance.now();
    const r = await runCampaign({ seed: 1, traces: false, now: () => performance.now(), onTimings: (t) => (timings = t) });
    const seconds = (performance.now() - t0) / 1000;
    if (r.failures.length) throw new Error(`campaign found ${r.failures.length} failures: ${r.failures[0]!.replay}`);
    return {
      "campaign.cut_points": { value: r.cutPoints, unit: "points", note: `${Object.keys(r.perScenario).length} scenarios, ${r.fastVerdicts} by record set, the rest by APDU judge` },
      "campaign.cut_points_per_s": {
        value: Math.round(r.cutPoints / seconds), unit: "points/s", goal: ">= 5000",
        note: `warm campaign wall time; judging alone ${Math.round(r.cutPoints / (timings.judgeMs / 1000))}/s, running the scenarios (steps + boundary record sets) ${Math.round(timings.scenariosMs)} ms`,
      },
    };
  },
};
export default bench;
