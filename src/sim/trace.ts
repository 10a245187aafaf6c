/**
 * Trace events: what a run did, one JSON object per line, so a run can be replayed and
 * compared byte for byte. Bytes are lower-case hex strings. The full format is in
 * docs/trace-format.md.
 */
import { appendFileSync, writeFileSync } from "node:fs";

export type TraceEvent =
  | { kind: "run"; seed: number; tool: string; params: Record<string, unknown> }
  | { kind: "apdu"; seq: number; command: string; response: string }
  | { kind: "power"; seq: number; state: "on" | "off"; atr?: string }
  /** A flash operation; `index` is the chip's operation counter, `markBad` marks a bad-block marking. */
  | { kind: "flash"; seq: number; op: "read" | "program" | "erase"; block: number; page?: number; index?: number; markBad?: true }
  | { kind: "fault"; seq: number; fault: string; detail: Record<string, unknown> }
  | { kind: "check"; seq: number; name: string; ok: boolean; detail?: string }
  | { kind: "note"; seq: number; text: string }
  | { kind: "end"; seq: number; imageDigest?: string; ok: boolean };

export interface TraceSink {
  emit(event: TraceEvent): void;
}

/** Discards events; the default where nobody asked for a trace. */
export const NULL_TRACE: TraceSink = { emit() {} };

/** Keeps events in memory: for tests, replay and comparison. */
export class MemoryTrace implements TraceSink {
  readonly events: TraceEvent[] = [];
  emit(event: TraceEvent): void {
    this.events.push(event);
  }
  toJsonLines(): string {
    return this.events.map((e) => JSON.stringify(e)).join("\n") + (this.events.length ? "\n" : "");
  }
}

/** Appends events to a JSON-lines file as they happen, so a crash keeps the trace so far. */
export class FileTrace implements TraceSink {
  constructor(readonly path: string) {
    writeFileSync(path, "");
  }
  emit(event: TraceEvent): void {
    appendFileSync(this.path, JSON.stringify(event) + "\n");
  }
}

/** Fans one event stream out to several sinks. */
export class TeeTrace implements TraceSink {
  constructor(private readonly sinks: readonly TraceSink[]) {}
  emit(event: TraceEvent): void {
    for (const sink of this.sinks) sink.emit(event);
  }
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, "");
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) throw new SyntaxError(`not a hex string: "${hex}"`);
  return new Uint8Array(Buffer.from(clean, "hex"));
}
