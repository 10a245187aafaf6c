export { Rng, parseSeed, MAX_SEED, type Seed } from "./rng.ts";
export { VirtualClock, MS_PER_DAY, MS_PER_SECOND, type Clock } from "./clock.ts";
export { NULL_TRACE, MemoryTrace, FileTrace, TeeTrace, toHex, fromHex, type TraceEvent, type TraceSink } from "./trace.ts";
