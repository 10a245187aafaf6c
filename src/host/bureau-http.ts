/**
 * The host's HTTPS client for the bureau API (docs/bureau-api.md): JSON over HTTPS, trusting
 * only the configured CA, with a per-request timeout. Every failure is a BureauHttpError with
 * a stable code, so the uploader can tell what to retry:
 *   NETWORK  refused / reset / unreachable (retry)
 *   TIMEOUT  no answer in time (retry)
 *   TLS      the server certificate is refused (do not retry: see `ukeysim diagnose`)
 *   HTTP     a 4xx/5xx answer; `status` and the bureau's `code` (retry 5xx only)
 *   BAD_RESPONSE the answer is not the JSON we expect (do not retry)
 */
import { request, type RequestOptions } from "node:https";
import type { IncomingMessage } from "node:http";

export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;
export const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
export const API_PREFIX = "/api/v1";

export type BureauHttpErrorCode = "NETWORK" | "TIMEOUT" | "TLS" | "HTTP" | "BAD_RESPONSE" | "BAD_URL";

const TLS_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME|DEPTH_ZERO|SSL|TLS|ERR_SSL/;

export class BureauHttpError extends Error {
  constructor(
    readonly code: BureauHttpErrorCode,
    message: string,
    readonly status = 0,
    readonly bureauCode = "",
    readonly cause_?: string,
  ) {
    super(message);
    this.name = "BureauHttpError";
  }
  get retryable(): boolean {
    return this.code === "NETWORK" || this.code === "TIMEOUT" || (this.code === "HTTP" && this.status >= 500);
  }
}

export interface BureauHttpOptions {
  /** https://host:port (the API lives under /api/v1). */
  serverUrl: string;
  /** PEM of the CA the bureau's TLS certificate must chain to. */
  caPem: string;
  timeoutMs?: number;
}

export class BureauHttp {
  readonly base: URL;
  private readonly timeoutMs: number;

  constructor(private readonly options: BureauHttpOptions) {
    let url: URL;
    try {
      url = new URL(options.serverUrl);
    } catch {
      throw new BureauHttpError("BAD_URL", `server URL "${options.serverUrl}" is not a URL`);
    }
    if (url.protocol !== "https:") throw new BureauHttpError("BAD_URL", `server URL must be https://, got ${url.protocol}`);
    this.base = url;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
  }

  get<T = unknown>(path: string, query: Record<string, string> = {}): Promise<T> {
    return this.json<T>("GET", path, query, undefined);
  }

  post<T = unknown>(path: string, body: unknown): Promise<T> {
    return this.json<T>("POST", path, {}, JSON.stringify(body));
  }

  /** GET returning raw bytes (the CRL). */
  async getBytes(path: string, query: Record<string, string> = {}): Promise<Uint8Array> {
    const r = await this.exchange("GET", path, query, undefined);
    if (r.status !== 200) throw httpError(r.status, r.body);
    return new Uint8Array(r.body);
  }

  private async json<T>(method: string, path: string, query: Record<string, string>, body: string | undefined): Promise<T> {
    const r = await this.exchange(method, path, query, body);
    if (r.status !== 200) throw httpError(r.status, r.body);
    try {
      return JSON.parse(r.body.toString("utf8")) as T;
    } catch {
      throw new BureauHttpError("BAD_RESPONSE", `${method} ${path}: answer is not JSON`);
    }
  }

  private exchange(method: string, path: string, query: Record<string, string>, body: string | undefined): Promise<{ status: number; body: Buffer }> {
    const url = new URL(API_PREFIX + path, this.base);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const options: RequestOptions = {
      method, ca: this.options.caPem, agent: false, timeout: this.timeoutMs,
      headers: body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
    };
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (e: BureauHttpError) => {
        if (!settled) {
          settled = true;
          reject(e);
        }
      };
      const req = request(url, options, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy();
            fail(new BureauHttpError("BAD_RESPONSE", `answer over ${MAX_RESPONSE_BYTES} bytes`));
          } else chunks.push(c);
        });
        res.on("end", () => {
          if (!settled) {
            settled = true;
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
          }
        });
        res.on("error", (e) => fail(new BureauHttpError("NETWORK", `${method} ${path}: ${e.message}`)));
      });
      req.on("timeout", () => {
        req.destroy();
        fail(new BureauHttpError("TIMEOUT", `${method} ${path}: no answer within ${this.timeoutMs} ms`));
      });
      req.on("error", (e: NodeJS.ErrnoException) => fail(classify(e, `${method} ${path}`)));
      req.end(body);
    });
  }
}

function classify(e: NodeJS.ErrnoException, what: string): BureauHttpError {
  const code = e.code ?? "";
  if (TLS_ERRORS.test(code)) return new BureauHttpError("TLS", `${what}: TLS: ${code}: ${e.message}`, 0, "", code);
  return new BureauHttpError("NETWORK", `${what}: ${code || e.message}`, 0, "", code);
}

function httpError(status: number, body: Buffer): BureauHttpError {
  let code = "";
  let message = "";
  try {
    const j = JSON.parse(body.toString("utf8")) as { code?: unknown; message?: unknown };
    if (typeof j.code === "string") code = j.code;
    if (typeof j.message === "string") message = j.message;
  } catch {
    // not JSON: keep the status alone
  }
  return new BureauHttpError("HTTP", `bureau answered ${status}${code ? ` ${code}` : ""}${message ? `: ${message}` : ""}`, status, code);
}
