/** The bureau's refusals: an HTTP status and a stable code (docs/bureau-api.md). */
export class BureauError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly detail?: Record<string, unknown>) {
    super(message);
    this.name = "BureauError";
  }
}

export function bad(code: string, message: string): BureauError {
  return new BureauError(400, code, message);
}
