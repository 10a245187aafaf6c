/**
 * Reading and comparing JSON-lines traces (docs/trace-format.md). A trace that is not
 * well-formed gets a clear error naming the line; comparison reports the first divergence
 * with the events around it.
 */
import { readFileSync } from "node:fs";
import type { TraceEvent } from "../src/sim/index.ts";

const EVENT_KINDS = new Set(["run", "apdu", "power", "flash", "fault", "check", "note", "end"]);
/** Events shown on each side of a divergence. */
export const DIVERGENCE_CONTEXT = 3;

export class TraceFormatError extends Error {
  constructor(readonly line: number, message: string) {
    super(`trace line ${line}: ${message}`);
    this.name = "TraceFormatError";
  }
}

export function parseTrace(text: string): TraceEvent[] {
  const events: TraceEvent[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new TraceFormatError(i + 1, "not JSON");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new TraceFormatError(i + 1, "not a JSON object");
    const kind = (value as { kind?: unknown }).kind;
    if (typeof kind !== "string" || !EVENT_KINDS.has(kind)) throw new TraceFormatError(i + 1, `unknown event kind ${JSON.stringify(kind)}`);
    events.push(value as TraceEvent);
  });
  if (events.length === 0) throw new TraceFormatError(1, "empty trace");
  if (events[0]?.kind !== "run") throw new TraceFormatError(1, 'a trace starts with a "run" event (seed and parameters)');
  return events;
}

export function readTrace(path: string): TraceEvent[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`cannot read trace ${path}: ${(error as Error).message}`);
  }
  return parseTrace(text);
}

export type TraceComparison =
  | { identical: true; events: number }
  | { identical: false; index: number; expected?: TraceEvent; actual?: TraceEvent; context: TraceEvent[] };

export function compareTraces(expected: readonly TraceEvent[], actual: readonly TraceEvent[]): TraceComparison {
  const length = Math.max(expected.length, actual.length);
  for (let i = 0; i < length; i++) {
    const e = expected[i];
    const a = actual[i];
    if (e !== undefined && a !== undefined && JSON.stringify(e) === JSON.stringify(a)) continue;
    return {
      identical: false,
      index: i,
      ...(e !== undefined ? { expected: e } : {}),
      ...(a !== undefined ? { actual: a } : {}),
      context: expected.slice(Math.max(0, i - DIVERGENCE_CONTEXT), i),
    };
  }
  return { identical: true, events: expected.length };
}
