/**
 * The bureau's HTTP API (JSON over HTTPS; docs/bureau-api.md). Routing, body limits and the
 * error envelope: every refusal is `{ "code": "...", "message": "..." }` with a 4xx/5xx
 * status, and a refused request changes nothing.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { certificateToPem, crlToPem } from "../crypto/index.ts";
import { FaultError, mergeFaults, type BureauFaults } from "./faults.ts";
import { BureauError, type BureauService } from "./service.ts";

export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024;
export const API_PREFIX = "/api/v1";
const MAX_URL_CHARS = 2048;

export interface HandlerOptions {
  service: BureauService;
  faults: () => Readonly<BureauFaults>;
  setFaults: (faults: BureauFaults) => Promise<void>;
  maxBodyBytes: number;
  /** Unexpected errors (bugs), for the operator; the client sees a 500 INTERNAL. */
  onError?: (error: unknown) => void;
}

type Handler = (request: Request) => Promise<Reply> | Reply;

interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  body: () => Promise<unknown>;
}

interface Reply {
  status: number;
  json?: unknown;
  raw?: { contentType: string; body: string | Uint8Array };
}

function ok(json: unknown): Reply {
  return { status: 200, json };
}

function sendJson(res: ServerResponse, status: number, json: unknown, close = false): void {
  const body = JSON.stringify(json);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
    ...(close ? { connection: "close" } : {}),
  });
  res.end(body);
}

function errorJson(code: string, message: string, detail?: Record<string, unknown>): Record<string, unknown> {
  return { code, message, ...(detail ?? {}) };
}

/** Reads a JSON body up to `limit` bytes; oversize, wrong type and bad JSON become BureauErrors. */
function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
    if (type !== "application/json") {
      reject(new BureauError(415, "UNSUPPORTED_MEDIA_TYPE", "request body must be application/json"));
      req.resume();
      return;
    }
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > limit) {
      reject(new BureauError(413, "BODY_TOO_LARGE", `request body of ${declared} bytes exceeds the limit of ${limit}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on("data", (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        reject(new BureauError(413, "BODY_TOO_LARGE", `request body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on("error", (error) => {
      if (!done) reject(new BureauError(400, "BAD_BODY", `request body could not be read: ${error.message}`));
      done = true;
    });
    req.on("end", () => {
      if (done) return;
      done = true;
      let textBody: string;
      try {
        textBody = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
      } catch {
        reject(new BureauError(400, "BAD_JSON", "request body is not UTF-8"));
        return;
      }
      try {
        resolve(JSON.parse(textBody));
      } catch (error) {
        reject(new BureauError(400, "BAD_JSON", `request body is not JSON: ${error instanceof Error ? error.message : String(error)}`));
      }
    });
  });
}

/** Every route, "METHOD /path" under API_PREFIX; docs/bureau-api.md documents each (a test checks). */
export const API_ROUTES = [
  "GET /health", "GET /time", "GET /pki", "GET /crl", "GET /sync", "POST /upload",
  "POST /admin/taxpayers", "POST /admin/devices", "POST /admin/device-certificates", "POST /admin/revocations",
  "GET /admin/faults", "POST /admin/faults",
] as const;

/** Error codes of the HTTP layer itself (the service adds its own). */
export const HTTP_ERROR_CODES = [
  "NOT_FOUND", "METHOD_NOT_ALLOWED", "URI_TOO_LONG", "UNSUPPORTED_MEDIA_TYPE", "BODY_TOO_LARGE", "BAD_BODY", "BAD_JSON",
  "BAD_GATEWAY", "INTERNAL", "BAD_FAULTS",
] as const;

function routes(options: HandlerOptions): Map<string, Handler> {
  const { service } = options;
  const pem = () => ({
    root: certificateToPem(service.pki.root.der),
    intermediate: certificateToPem(service.pki.intermediate.der),
    receiptSigner: certificateToPem(service.pki.signer.der),
  });
  return new Map<string, Handler>([
    ["GET /health", () => ok({ status: "ok", service: "ukeysim bureau", serverTime: service.now() })],
    ["GET /time", () => {
      const now = service.now();
      return ok({ serverTime: now, iso: new Date(now).toISOString() });
    }],
    ["GET /pki", () => ok(pem())],
    ["GET /crl", (r) => {
      const crl = service.currentCrl();
      const format = r.query.get("format") ?? "der";
      if (format === "pem") return { status: 200, raw: { contentType: "application/x-pem-file", body: crlToPem(crl.der) } };
      if (format === "der") return { status: 200, raw: { contentType: "application/pkix-crl", body: crl.der } };
      throw new BureauError(400, "BAD_REQUEST", "format must be der or pem");
    }],
    ["GET /sync", (r) => ok(service.sync(r.query.get("taxpayerId") ?? "", r.query.get("deviceSerial") ?? "", r.query.get("challenge") ?? undefined))],
    ["POST /upload", async (r) => ok(service.upload(await r.body()))],
    ["POST /admin/taxpayers", async (r) => ok(service.registerTaxpayer(await r.body()))],
    ["POST /admin/devices", async (r) => ok(service.registerDevice(await r.body()))],
    ["POST /admin/device-certificates", async (r) => ok(service.issueDeviceCertificate(await r.body()))],
    ["POST /admin/revocations", async (r) => ok(service.revoke(await r.body()))],
    ["GET /admin/faults", () => ok(options.faults())],
    ["POST /admin/faults", async (r) => {
      let merged: BureauFaults;
      try {
        merged = mergeFaults(options.faults(), await r.body());
      } catch (error) {
        if (error instanceof FaultError) throw new BureauError(400, error.code, error.message);
        throw error;
      }
      await options.setFaults(merged);
      return ok(merged);
    }],
  ]);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The request listener for node:https. */
export function createHandler(options: HandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const table = routes(options);
  if ([...table.keys()].join() !== API_ROUTES.join()) throw new Error("bureau routes and API_ROUTES disagree");
  return (req, res) => {
    void handle(req, res).catch((error: unknown) => {
      options.onError?.(error);
      if (!res.headersSent) sendJson(res, 500, errorJson("INTERNAL", "internal error"), true);
      else res.destroy();
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const rawUrl = req.url ?? "/";
    if (rawUrl.length > MAX_URL_CHARS) return sendJson(res, 414, errorJson("URI_TOO_LONG", `URL longer than ${MAX_URL_CHARS} characters`));
    const url = new URL(rawUrl, "https://bureau.invalid");
    if (!url.pathname.startsWith(API_PREFIX + "/")) return sendJson(res, 404, errorJson("NOT_FOUND", `no such path ${url.pathname}`));
    const path = url.pathname.slice(API_PREFIX.length);
    const admin = path.startsWith("/admin/");
    const faults = options.faults();
    // Admin routes are exempt from the service faults, so a test can always switch them off.
    if (!admin && faults.delayMs > 0) await delay(faults.delayMs);
    if (!admin && faults.http502) {
      req.resume();
      return sendJson(res, 502, errorJson("BAD_GATEWAY", "upstream bureau service unavailable (fault switch http502)"));
    }
    const handler = table.get(`${method} ${path}`);
    if (!handler) {
      req.resume();
      const known = [...table.keys()].filter((k) => k.endsWith(` ${path}`));
      return known.length
        ? sendJson(res, 405, errorJson("METHOD_NOT_ALLOWED", `${method} not allowed on ${path}; use ${known.map((k) => k.split(" ")[0]).join(", ")}`))
        : sendJson(res, 404, errorJson("NOT_FOUND", `no such path ${url.pathname}`));
    }
    let reply: Reply;
    try {
      reply = await handler({ method, path, query: url.searchParams, body: () => readJson(req, options.maxBodyBytes) });
    } catch (error) {
      if (error instanceof BureauError) {
        // An oversized body is left unread: close the connection rather than drain it.
        return sendJson(res, error.status, errorJson(error.code, error.message, error.detail), error.status === 413);
      }
      throw error;
    }
    if (reply.raw) {
      const body = typeof reply.raw.body === "string" ? reply.raw.body : Buffer.from(reply.raw.body);
      res.writeHead(reply.status, { "content-type": reply.raw.contentType, "content-length": Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    sendJson(res, reply.status, reply.json);
  }
}
