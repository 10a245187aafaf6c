/**
 * startBureau: the HTTPS listener with its fault switches.
 *
 *   client --TCP--> front listener (net.Server on host:port)
 *                     |-- refuseConnections: the listener is closed (ECONNREFUSED)
 *                     |-- interception: TLS ends at the "SSL inspection" proxy (own CA), which
 *                     |      re-encrypts to the bureau's internal HTTPS listener
 *                     `-- otherwise: the HTTPS server for the selected certificate variant
 *                            (valid / expired / wrong host, with or without intermediate)
 *
 * All HTTPS servers share one request handler, so the API is the same behind every variant.
 */
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { createServer as createHttpsServer, request as httpsRequest, type Server as HttpsServer } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Clock, Rng } from "../sim/index.ts";
import { certificateToPem } from "../crypto/index.ts";
import { mergeFaults, NO_FAULTS, type BureauFaults } from "./faults.ts";
import { createHandler, DEFAULT_MAX_BODY_BYTES } from "./http.ts";
import type { InvoiceFormat } from "./invoice-format.ts";
import { TAX_INVOICE_FORMAT } from "./tax-format.ts";
import { createBureauPki, deserializePki, serializePki, type BureauPki } from "./pki.ts";
import { BureauService } from "./service.ts";
import { BureauStore } from "./store.ts";
import { createTlsMaterial, type TlsIdentity, type TlsMaterial } from "./tls.ts";

export interface StartBureauOptions {
  /** TCP port on `host`; 0 (default) picks a free one. */
  port?: number;
  /** Listen address; loopback by default. */
  host?: string;
  /** SQLite file; ":memory:" by default. */
  dbPath?: string;
  /** The bureau's clock (virtual in tests, wall in `serve`). */
  clock: Clock;
  /** The clock for TLS certificate validity, which clients check against real time; default `clock`. */
  tlsClock?: Clock;
  rng: Rng;
  faults?: Partial<BureauFaults>;
  invoiceFormat?: InvoiceFormat;
  /**
   * The bureau master key (16 bytes) from which card keys are derived, as in the issuance
   * profile's bureauMasterKey. Without it, only devices registered with their own cardKey get
   * issuer messages (secure-messaging commands) from sync and upload.
   */
  masterKey?: Uint8Array;
  maxBodyBytes?: number;
  onError?: (error: unknown) => void;
}

export interface Bureau {
  /** https://host:port */
  url: string;
  host: string;
  port: number;
  /** PEM of the bureau's TLS root CA: what a correctly configured client trusts. */
  caCertPem: string;
  /** PEM of the TLS-inspection proxy's CA (what a middlebox would push to managed hosts). */
  interceptionCaPem: string;
  /** The SM2 side: root, device CA and receipt signer (PEM). */
  sm2: { rootPem: string; intermediatePem: string; receiptSignerPem: string };
  /** In-process API: the same operations as the HTTP admin endpoints. */
  service: BureauService;
  store: BureauStore;
  tls: TlsMaterial;
  faults(): BureauFaults;
  /** Validates and applies a partial fault set; resolves once the listener state matches. */
  setFaults(patch: Partial<BureauFaults>): Promise<BureauFaults>;
  stop(): Promise<void>;
}

type Variant = Exclude<keyof TlsMaterial, "caCertPem" | "intermediatePem" | "interceptionCaPem">;

function variantFor(faults: BureauFaults): Variant {
  const base = faults.serverCertificate === "valid" ? "valid" : faults.serverCertificate === "expired" ? "expired" : "wrongHost";
  return (faults.missingIntermediate ? `${base}NoIntermediate` : base) as Variant;
}

function listen(server: NetServer | HttpsServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function close(server: NetServer | HttpsServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}

function pemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

/** Starts the bureau; see docs/bureau-api.md. */
export async function startBureau(options: StartBureauOptions): Promise<Bureau> {
  const host = options.host ?? "127.0.0.1";
  let faults = mergeFaults(NO_FAULTS, options.faults ?? {});
  if (options.masterKey !== undefined && options.masterKey.length !== MASTER_KEY_BYTES) throw new RangeError(`masterKey must be ${MASTER_KEY_BYTES} bytes`);
  const store = new BureauStore(options.dbPath ?? ":memory:");
  const pki = loadOrCreatePki(store, options.rng.fork("bureau-pki"), options.clock.now());
  const service = new BureauService({
    store, pki, rng: options.rng.fork("bureau-issue"), clock: options.clock, format: options.invoiceFormat ?? TAX_INVOICE_FORMAT,
    faults: () => faults, masterKey: options.masterKey,
  });
  const tls = await createTlsMaterial(options.rng.fork("bureau-tls"), (options.tlsClock ?? options.clock).now());
  const sockets = new Set<Socket>();
  const handler = createHandler({
    service, faults: () => faults, setFaults: async (next) => void (await apply(next)), maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    ...(options.onError ? { onError: options.onError } : {}),
  });
  const https = (identity: TlsIdentity, listener: (req: IncomingMessage, res: ServerResponse) => void): HttpsServer => {
    const server = createHttpsServer({ key: identity.key, cert: identity.cert }, listener);
    server.on("tlsClientError", () => {}); // a client refusing our certificate is the point of a fault, not an error
    return server;
  };
  const variants = new Map<Variant, HttpsServer>();
  for (const v of ["valid", "expired", "wrongHost", "validNoIntermediate", "expiredNoIntermediate", "wrongHostNoIntermediate"] as const) {
    variants.set(v, https(tls[v], handler));
  }
  // The internal listener the inspection proxy talks to, as a middlebox talks to the real server.
  const internal = https(tls.valid, handler);
  const internalPort = await listen(internal, 0, "127.0.0.1");
  const proxy = https(tls.interception, (req, res) => forward(req, res, internalPort, tls.caCertPem));

  const front = createNetServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    const target = faults.interception ? proxy : (variants.get(variantFor(faults)) as HttpsServer);
    target.emit("connection", socket);
  });
  const port = await listen(front, options.port ?? 0, host);

  async function apply(next: BureauFaults): Promise<BureauFaults> {
    const wasRefusing = faults.refuseConnections;
    faults = next;
    if (next.refuseConnections && !wasRefusing) {
      await Promise.all([close(front), ...[...sockets].map(async (s) => void s.destroy())]);
    } else if (!next.refuseConnections && wasRefusing) {
      await listen(front, port, host);
    }
    return faults;
  }

  let stopped = false;
  return {
    url: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    host, port,
    caCertPem: tls.caCertPem,
    interceptionCaPem: tls.interceptionCaPem,
    sm2: {
      rootPem: pemOf(pki.root.der), intermediatePem: pemOf(pki.intermediate.der), receiptSignerPem: pemOf(pki.signer.der),
    },
    service, store, tls,
    faults: () => ({ ...faults }),
    setFaults: async (patch) => apply(mergeFaults(faults, patch)),
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const s of sockets) s.destroy();
      for (const server of [...variants.values(), proxy, internal]) server.closeAllConnections();
      await Promise.all([close(front), close(internal)]);
      store.close();
    },
  };
}

/** The first start with a database makes the PKI from the seed and keeps it; later starts reuse it. */
function loadOrCreatePki(store: BureauStore, rng: Rng, now: number): BureauPki {
  const saved = store.meta("pki");
  if (saved !== undefined) return deserializePki(saved);
  const pki = createBureauPki(rng, now);
  store.setMeta("pki", serializePki(pki));
  return pki;
}

const MASTER_KEY_BYTES = 16;

function pemOf(der: Uint8Array): string {
  return certificateToPem(der);
}

/** The inspection proxy: decrypts with its own certificate, re-encrypts to the bureau. */
function forward(req: IncomingMessage, res: ServerResponse, port: number, bureauCaPem: string): void {
  const upstream = httpsRequest({
    host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers, ca: pemCertificates(bureauCaPem), agent: false,
  }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, { ...answer.headers, via: "1.1 ssl-inspection (ukeysim fault)" });
    answer.pipe(res);
  });
  upstream.on("error", () => {
    if (!res.headersSent) {
      res.writeHead(502, { "content-type": "application/json" });
      res.end(JSON.stringify({ code: "BAD_GATEWAY", message: "inspection proxy could not reach the bureau" }));
    } else res.destroy();
  });
  req.pipe(upstream);
}
