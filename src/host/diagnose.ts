/**
 * `diagnose`: the troubleshooting article's checks for "invoicing software with a tax Ukey
 * cannot connect to the server", in its order:
 *   Ukey present -> PIN state -> health -> key usage (renew at 1,000,000) -> device
 *   certificate validity -> chain root -> intermediate -> device and CRL freshness ->
 *   clocks (host / Ukey / server at most 5 minutes apart) -> DNS -> TCP connect to the
 *   port -> TLS handshake (and interception, "SSL deep inspection") -> HTTP health (502)
 *   -> pending uploads.
 * Each check is {id, title, status PASS/FAIL/WARN/SKIP, cause, fix}. Nothing here changes
 * the Ukey: the PIN state is read without spending a try.
 */
import { promises as dns } from "node:dns";
import { connect as netConnect, isIP } from "node:net";
import { connect as tlsConnect, type PeerCertificate, type DetailedPeerCertificate } from "node:tls";
import { X509Certificate } from "node:crypto";
import { E, KEY_USAGE_LIMIT } from "../tax/index.ts";
import { parseCertificate, parseCrl, verifyChain, pemToDer, type CertificateInfo, type CrlInfo } from "../crypto/index.ts";
import type { Clock } from "../sim/index.ts";
import type { ApduChannel } from "../transport/index.ts";
import { UkeyClient, isUkeyError } from "./client.ts";
import { BureauHttp, BureauHttpError } from "./bureau-http.ts";
import type { HostDb } from "./db.ts";

export type CheckStatus = "PASS" | "FAIL" | "WARN" | "SKIP";

export interface CheckResult {
  id: CheckId;
  title: string;
  status: CheckStatus;
  cause: string;
  fix: string;
  detail?: Record<string, unknown>;
}

export const CHECKS = [
  ["ukey.present", "Ukey present and answering"],
  ["ukey.pin", "Ukey PIN state"],
  ["ukey.health", "Ukey health (secure clock, battery, storage)"],
  ["ukey.key_usage", "Signing key usage (renew at 1,000,000)"],
  ["cert.validity", "Device certificate validity"],
  ["cert.chain", "Certificate chain root -> intermediate -> device, CRL freshness and revocation"],
  ["clock.skew", "Clocks: host, Ukey and server at most 5 minutes apart"],
  ["net.dns", "DNS resolution of the server"],
  ["net.tcp", "TCP connection to the server port"],
  ["net.tls", "TLS handshake with the configured CA (interception check)"],
  ["http.health", "Server health over HTTPS"],
  ["uploads.pending", "Invoices waiting for upload"],
] as const;

export type CheckId = (typeof CHECKS)[number][0];

export const MAX_CLOCK_SKEW_MS = 5 * 60_000;
export const CERT_RENEW_WARN_MS = 30 * 86_400_000;
export const KEY_USAGE_WARN_FRACTION = 0.9;
export const PIN_TRIES_WARN = 2;
export const BATTERY_WARN_DAYS = 90;
export const STORAGE_WARN_FREE_KIB = 64;
export const DEFAULT_DIAGNOSE_TIMEOUT_MS = 5_000;

export interface DiagnoseOptions {
  /** The Ukey; absent: every Ukey check FAILs as "not found". */
  channel?: ApduChannel;
  serverUrl: string;
  /** PEM of the CA the server's TLS certificate must chain to. */
  caPem: string;
  /** The host clock. */
  clock: Clock;
  /** The Ukey PIN, to read the Ukey's pending-upload count (never needed for the other checks). */
  pin?: string;
  /** The local DB, for pending uploads. */
  db?: HostDb;
  timeoutMs?: number;
}

export interface Diagnosis {
  ok: boolean;
  checks: CheckResult[];
}

interface Ctx {
  o: DiagnoseOptions;
  now: number;
  client?: UkeyClient;
  results: Map<CheckId, CheckResult>;
  host: string;
  port: number;
  address?: string;
  tlsOk: boolean;
  http?: BureauHttp;
}

function titleOf(id: CheckId): string {
  return (CHECKS.find((c) => c[0] === id) as readonly [CheckId, string])[1];
}

function put(ctx: Ctx, id: CheckId, status: CheckStatus, cause: string, fix = "", detail?: Record<string, unknown>): void {
  ctx.results.set(id, { id, title: titleOf(id), status, cause, fix, ...(detail ? { detail } : {}) });
}

function msg(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function iso(ms: number): string {
  // Formatting a given instant (not reading the wall clock).
  return new Date(ms).toISOString();
}

/** Run every check; `ok` is false when any check FAILs. */
export async function runDiagnosis(o: DiagnoseOptions): Promise<Diagnosis> {
  const url = new URL(o.serverUrl);
  const ctx: Ctx = {
    o, now: o.clock.now(), results: new Map(), host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 443), tlsOk: false,
  };
  await ukeyChecks(ctx);
  await networkChecks(ctx);
  await certificateChecks(ctx);
  await clockCheck(ctx);
  await pendingCheck(ctx);
  const checks = CHECKS.map(([id]) => ctx.results.get(id) ?? { id, title: titleOf(id), status: "SKIP" as const, cause: "not run", fix: "" });
  return { ok: checks.every((c) => c.status !== "FAIL"), checks };
}

// ------------------------------------------------------------------ Ukey

async function ukeyChecks(ctx: Ctx): Promise<void> {
  const skipAll = (cause: string) => {
    for (const id of ["ukey.pin", "ukey.health", "ukey.key_usage", "cert.validity"] as const) put(ctx, id, "SKIP", cause);
  };
  if (!ctx.o.channel) {
    put(ctx, "ukey.present", "FAIL", "no Ukey given (TYUKEY_DEVICE_NOT_FOUND)", "plug the Ukey in and name it with --target");
    return skipAll("no Ukey");
  }
  const client = new UkeyClient(ctx.o.channel);
  let info;
  try {
    await client.connect();
    info = await client.getDeviceInfo();
  } catch (error) {
    const notFound = isUkeyError(error, E.NOT_FOUND);
    put(ctx, "ukey.present", "FAIL", `${notFound ? "the Ukey does not answer" : "the Ukey answers wrongly"}: ${msg(error)}`,
      notFound ? "plug the Ukey in (try another USB port), check the driver / USB/IP link" : "re-plug the Ukey; update the Ukey driver; if it persists the Ukey needs service");
    return skipAll("the Ukey is not available");
  }
  ctx.client = client;
  put(ctx, "ukey.present", "PASS", `Ukey ${info.serialNumber} (COS ${info.cosVersion}) answers`, "", { serial: info.serialNumber });
  if (info.lifeCycle !== 1) put(ctx, "ukey.health", "FAIL", "the Ukey is not personalized", "have the tax bureau issue the Ukey");

  try {
    const pin = await client.pinState("user");
    if (pin.locked) put(ctx, "ukey.pin", "FAIL", "the user PIN is locked (TYUKEY_DEVICE_PIN_LOCKED)", "unblock it with the SO PIN at the tax bureau's service hall");
    else if (pin.triesLeft !== null && pin.triesLeft <= PIN_TRIES_WARN) put(ctx, "ukey.pin", "WARN", `only ${pin.triesLeft} PIN tries left`, "type the PIN carefully; the PIN locks at 0");
    else put(ctx, "ukey.pin", "PASS", pin.verified ? "PIN verified" : `PIN not locked (${pin.triesLeft} tries left)`, "", { triesLeft: pin.triesLeft });
  } catch (error) {
    put(ctx, "ukey.pin", "FAIL", `cannot read the PIN state: ${msg(error)}`, "re-plug the Ukey");
  }

  if (!ctx.results.has("ukey.health")) {
    const problems: string[] = [];
    const warnings: string[] = [];
    const clockStates = ["not set", "running", "battery exhausted", "rollback detected"];
    if (info.clockState !== 1) problems.push(`secure clock ${clockStates[info.clockState] ?? info.clockState}`);
    if (info.batteryDaysLeft < BATTERY_WARN_DAYS) warnings.push(`secure-clock battery: ${info.batteryDaysLeft} days left`);
    if (info.storageFreeKiB < STORAGE_WARN_FREE_KIB) warnings.push(`secure storage nearly full (${info.storageFreeKiB} KiB free): upload so rollover can reclaim`);
    const detail = { clockState: info.clockState, batteryDaysLeft: info.batteryDaysLeft, storageFreeKiB: info.storageFreeKiB, invoicesStored: info.invoicesStored };
    if (problems.length) put(ctx, "ukey.health", "FAIL", problems.concat(warnings).join("; "), "the secure clock can only be set by the tax bureau: take the Ukey to the bureau", detail);
    else if (warnings.length) put(ctx, "ukey.health", "WARN", warnings.join("; "), "plan a Ukey replacement / upload pending invoices", detail);
    else put(ctx, "ukey.health", "PASS", `secure clock running, ${info.batteryDaysLeft} battery days, ${info.storageFreeKiB} KiB free`, "", detail);
  }

  const used = info.signCount;
  const limit = info.signLimit || KEY_USAGE_LIMIT;
  const usage = { signCount: used, signLimit: limit };
  if (used >= limit) put(ctx, "ukey.key_usage", "FAIL", `the signing key was used ${used} times (limit ${limit}): TYUKEY_DEVICE_KEY_EXPIRED`, "renew the key pair and certificate at the tax bureau", usage);
  else if (used >= limit * KEY_USAGE_WARN_FRACTION) put(ctx, "ukey.key_usage", "WARN", `the signing key was used ${used} of ${limit} times`, "schedule a key renewal", usage);
  else put(ctx, "ukey.key_usage", "PASS", `${used} of ${limit} signatures used`, "", usage);

  try {
    const der = await client.readCert(0);
    const cert = parseCertificate(der);
    certValidity(ctx, cert);
  } catch (error) {
    if (isUkeyError(error, E.DATA_NOT_EXIST)) put(ctx, "cert.validity", "FAIL", "no device certificate on the Ukey (TYUKEY_DEVICE_BAD_CERT)", "have the tax bureau issue the device certificate");
    else put(ctx, "cert.validity", "FAIL", `the device certificate cannot be read or parsed: ${msg(error)}`, "have the tax bureau re-issue the device certificate");
  }
}

function certValidity(ctx: Ctx, cert: CertificateInfo): void {
  const detail = { subject: cert.subject.text, issuer: cert.issuer.text, serial: cert.serial, notBefore: iso(cert.notBefore), notAfter: iso(cert.notAfter), algorithm: cert.signatureAlgorithmName };
  if (cert.legacy) return put(ctx, "cert.validity", "FAIL", `the device certificate uses ${cert.signatureAlgorithmName} (an older RSA-2048 certificate), not SM2/SM3`, "replace it with an SM2 certificate at the tax bureau", detail);
  if (ctx.now > cert.notAfter) return put(ctx, "cert.validity", "FAIL", `the device certificate expired on ${iso(cert.notAfter)}`, "renew the certificate at the tax bureau (check the host clock first)", detail);
  if (ctx.now < cert.notBefore) return put(ctx, "cert.validity", "FAIL", `the device certificate is not valid before ${iso(cert.notBefore)}`, "check the host clock; otherwise have the certificate re-issued", detail);
  if (cert.notAfter - ctx.now < CERT_RENEW_WARN_MS) return put(ctx, "cert.validity", "WARN", `the device certificate expires on ${iso(cert.notAfter)}`, "renew it within 30 days", detail);
  put(ctx, "cert.validity", "PASS", `valid until ${iso(cert.notAfter)}`, "", detail);
}

// ------------------------------------------------------------------ network

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function networkChecks(ctx: Ctx): Promise<void> {
  const timeout = ctx.o.timeoutMs ?? DEFAULT_DIAGNOSE_TIMEOUT_MS;
  const skip = (ids: CheckId[], cause: string) => ids.forEach((id) => put(ctx, id, "SKIP", cause));
  try {
    const all = await withTimeout(dns.lookup(ctx.host, { all: true }), timeout, "DNS");
    if (all.length === 0) throw Object.assign(new Error("no address"), { code: "ENODATA" });
    const addresses = all.map((a) => a.address);
    ctx.address = addresses[0];
    put(ctx, "net.dns", "PASS", `${ctx.host} resolves to ${addresses.join(", ")}${isIP(ctx.host) ? " (an address)" : ""}`, "", { addresses });
  } catch (error) {
    put(ctx, "net.dns", "FAIL", `${ctx.host} does not resolve: ${(error as NodeJS.ErrnoException).code ?? msg(error)}`, "check the DNS servers of this computer, or the server name in the settings");
    return skip(["net.tcp", "net.tls", "http.health"], "DNS failed");
  }
  try {
    await tcpConnect(ctx.host, ctx.port, timeout);
    put(ctx, "net.tcp", "PASS", `TCP connection to ${ctx.host}:${ctx.port} opened`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    put(ctx, "net.tcp", "FAIL", `cannot connect to ${ctx.host}:${ctx.port}: ${code || msg(error)}`,
      code === "ECONNREFUSED" ? `nothing accepts connections on port ${ctx.port}: the service is down or a firewall rejects it; check the firewall / VLAN rules for port ${ctx.port}` : `the port is filtered or the route is broken: check the gateway, firewall and VLAN for port ${ctx.port}`,
      { code });
    return skip(["net.tls", "http.health"], "TCP failed");
  }
  await tlsCheck(ctx, timeout);
  if (!ctx.tlsOk) return skip(["http.health"], "the TLS handshake failed (see net.tls)");
  ctx.http = new BureauHttp({ serverUrl: ctx.o.serverUrl, caPem: ctx.o.caPem, timeoutMs: timeout });
  try {
    const h = await ctx.http.get<{ status?: unknown }>("/health");
    if (h.status === "ok") put(ctx, "http.health", "PASS", "the server answers /health: ok");
    else put(ctx, "http.health", "FAIL", `the server answered /health with status ${String(h.status)}`, "retry later; report to the tax bureau if it persists");
  } catch (error) {
    const e = error as BureauHttpError;
    if (e instanceof BureauHttpError && e.code === "HTTP" && e.status === 502) put(ctx, "http.health", "FAIL", "the server answers 502 Bad Gateway: overloaded behind its load balancer", "retry outside peak hours; the host uploads automatically when it recovers", { status: 502 });
    else if (e instanceof BureauHttpError && e.code === "TIMEOUT") put(ctx, "http.health", "FAIL", `the server is too slow: ${e.message}`, "retry outside peak hours; check the bandwidth to the server");
    else put(ctx, "http.health", "FAIL", `the server's health check failed: ${msg(error)}`, "report to the tax bureau with this output");
  }
}

function tcpConnect(host: string, port: number, timeout: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // Every resolved address is tried (IPv6 and IPv4), as the invoicing software's HTTPS client does.
    const s = netConnect({ host, port, autoSelectFamily: true });
    s.setTimeout(timeout, () => {
      s.destroy();
      reject(Object.assign(new Error(`no answer within ${timeout} ms`), { code: "ETIMEDOUT" }));
    });
    s.once("connect", () => {
      s.destroy();
      resolve();
    });
    s.once("error", (e) => reject(e));
  });
}

interface Presented {
  subject: string;
  issuer: string;
  validTo: string;
  selfSigned: boolean;
  der: Buffer;
}

function cn(x: PeerCertificate["subject"] | undefined): string {
  if (!x) return "?";
  const v = (x as unknown as Record<string, string | string[]>).CN ?? (x as unknown as Record<string, string | string[]>).O;
  return Array.isArray(v) ? v.join(",") : (v ?? "?");
}

function presentedChain(peer: DetailedPeerCertificate): Presented[] {
  const out: Presented[] = [];
  let c: DetailedPeerCertificate | undefined = peer;
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    const x = new X509Certificate(c.raw);
    out.push({ subject: cn(c.subject), issuer: cn(c.issuer), validTo: c.valid_to, selfSigned: x.checkIssued(x), der: c.raw });
    c = c.issuerCertificate && c.issuerCertificate !== c ? c.issuerCertificate : undefined;
  }
  return out;
}

function tlsHandshake(ctx: Ctx, verify: boolean, timeout: number): Promise<{ peer: DetailedPeerCertificate; error?: NodeJS.ErrnoException }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: ctx.host, port: ctx.port, ca: ctx.o.caPem, rejectUnauthorized: verify,
      ...(isIP(ctx.host) ? {} : { servername: ctx.host }),
      ...(verify ? {} : { checkServerIdentity: () => undefined }),
    });
    // Node checks the identity against `host`; an IP literal is checked against the IP SANs.
    s.setTimeout(timeout, () => {
      s.destroy();
      reject(Object.assign(new Error(`TLS: no answer within ${timeout} ms`), { code: "ETIMEDOUT" }));
    });
    s.once("secureConnect", () => {
      const peer = s.getPeerCertificate(true);
      s.destroy();
      resolve({ peer });
    });
    s.once("error", (e) => {
      s.destroy();
      reject(e);
    });
  });
}

async function tlsCheck(ctx: Ctx, timeout: number): Promise<void> {
  let failure: NodeJS.ErrnoException;
  try {
    await tlsHandshake(ctx, true, timeout);
    ctx.tlsOk = true;
    put(ctx, "net.tls", "PASS", "TLS handshake verified against the configured CA");
    return;
  } catch (error) {
    failure = error as NodeJS.ErrnoException;
  }
  const code = failure.code ?? "";
  let chain: Presented[] = [];
  try {
    chain = presentedChain((await tlsHandshake(ctx, false, timeout)).peer);
  } catch {
    // the server does not complete even an unverified handshake: report the first error alone
  }
  const cas = (ctx.o.caPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((pem) => new X509Certificate(pem));
  const chainsToCa = chain.some((c) => {
    const x = new X509Certificate(c.der);
    return cas.some((ca) => x.fingerprint256 === ca.fingerprint256 || (x.checkIssued(ca) && x.verify(ca.publicKey)));
  });
  const leaf = chain[0];
  const top = chain[chain.length - 1];
  const presented = chain.map((c) => `${c.subject} (issued by ${c.issuer}, valid to ${c.validTo})`);
  const detail = { code, presented };
  const issuerText = leaf ? `issued by "${leaf.issuer}"` : "unknown issuer";
  if (code === "CERT_HAS_EXPIRED") {
    return put(ctx, "net.tls", "FAIL", `the server's TLS certificate expired (valid to ${leaf?.validTo ?? "?"}; ${issuerText})`, "check this computer's clock first; otherwise the server's certificate must be renewed by the tax bureau", detail);
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return put(ctx, "net.tls", "FAIL", `the server's TLS certificate is for another host ("${leaf?.subject ?? "?"}"), not ${ctx.host}: ${failure.message}`, "check the server address in the settings; a wrong DNS answer or a proxy may send you elsewhere", detail);
  }
  if (top && top.selfSigned && !chainsToCa) {
    return put(ctx, "net.tls", "FAIL", `TLS interception ("SSL deep inspection"): the presented certificate is ${issuerText}, root "${top.subject}", which does not chain to the configured CA (${code})`,
      "exempt the tax server from SSL inspection on the firewall / antivirus (or, if your organization requires it, install its CA deliberately)", detail);
  }
  if (code === "UNABLE_TO_VERIFY_LEAF_SIGNATURE" && chain.length === 1) {
    return put(ctx, "net.tls", "FAIL", `the server sent its certificate (${issuerText}) without the intermediate CA certificate`, "the server's certificate chain is incomplete: report to the tax bureau (as a stopgap, import the intermediate CA certificate)", detail);
  }
  if (!chainsToCa && leaf) {
    return put(ctx, "net.tls", "FAIL", `the server's certificate (${issuerText}) does not chain to the configured CA (${code || failure.message}): possible interception`, "exempt the tax server from SSL inspection, or check the configured CA file", detail);
  }
  put(ctx, "net.tls", "FAIL", `TLS handshake failed: ${code || failure.message}`, "check the firewall / antivirus HTTPS filtering and the configured CA", detail);
}

// ------------------------------------------------------------------ certificates (need the server)

async function certificateChecks(ctx: Ctx): Promise<void> {
  if (!ctx.client) return put(ctx, "cert.chain", "SKIP", "no Ukey");
  if (!ctx.http) return put(ctx, "cert.chain", "SKIP", "the server is not reachable over verified HTTPS (see the network checks)");
  if (ctx.results.get("http.health")?.status !== "PASS") return put(ctx, "cert.chain", "SKIP", "the server is not healthy (see http.health): its CA certificates and CRL cannot be fetched");
  let root: CertificateInfo;
  let intermediate: CertificateInfo;
  let crl: CrlInfo;
  let leaf: CertificateInfo;
  try {
    leaf = parseCertificate(await ctx.client.readCert(0));
  } catch (error) {
    return put(ctx, "cert.chain", "SKIP", `no device certificate to check (${msg(error)})`);
  }
  try {
    const pki = await ctx.http.get<{ root: string; intermediate: string }>("/pki");
    root = parseCertificate(pemToDer(pki.root, "CERTIFICATE"));
    intermediate = parseCertificate(pemToDer(pki.intermediate, "CERTIFICATE"));
    crl = parseCrl(await ctx.http.getBytes("/crl"));
  } catch (error) {
    return put(ctx, "cert.chain", "FAIL", `cannot fetch the bureau's CA certificates / CRL: ${msg(error)}`, "retry; if the CRL service is down report to the tax bureau");
  }
  let intermediates = [intermediate];
  try {
    intermediates = [parseCertificate(await ctx.client.readCert(1))];
  } catch {
    // no (readable) intermediate on the Ukey: the bureau's own is the one to check against
  }
  const detail: Record<string, unknown> = { crlNumber: crl.crlNumber, crlThisUpdate: iso(crl.thisUpdate), crlNextUpdate: crl.nextUpdate === undefined ? null : iso(crl.nextUpdate) };
  const r = verifyChain({ roots: [root], intermediates, leaf, at: ctx.now, crls: [crl] });
  if (!r.ok) {
    const fixes: Record<string, string> = {
      REVOKED: "the device certificate is revoked: contact the tax bureau (a lost Ukey must be reported)",
      CRL_STALE: "the CRL is out of date (not re-published for over its validity): the bureau's CRL service is late; retry later and report it",
      MISSING_INTERMEDIATE: "the intermediate CA certificate (CA-Intermediate) is missing: re-sync or have the bureau rewrite the chain to the Ukey",
      EXPIRED: "a certificate of the chain expired: renew at the tax bureau (check the host clock first)",
      UNKNOWN_ISSUER: "the device certificate was not issued by this bureau's CA: check the server address / have the certificate re-issued",
      LEGACY_ALGORITHM: "an older RSA-2048 certificate in the chain: replace it with SM2",
    };
    return put(ctx, "cert.chain", "FAIL", `${r.reason}: ${r.message}`, fixes[r.reason] ?? "have the tax bureau check the certificate chain", { ...detail, reason: r.reason });
  }
  put(ctx, "cert.chain", "PASS", `root -> intermediate -> device verified, not revoked; CRL #${crl.crlNumber ?? "?"} fresh until ${crl.nextUpdate === undefined ? "?" : iso(crl.nextUpdate)}`, "", detail);
}

// ------------------------------------------------------------------ clocks

async function clockCheck(ctx: Ctx): Promise<void> {
  const times: Record<string, number> = { host: ctx.now };
  if (ctx.client) {
    try {
      const t = await ctx.client.getSecureTime();
      if (t.clockState === 1) times.ukey = t.seconds * 1000;
    } catch {
      // reported by ukey.health
    }
  }
  if (ctx.http) {
    try {
      const t = await ctx.http.get<{ serverTime?: unknown }>("/time");
      if (typeof t.serverTime === "number") times.server = t.serverTime;
    } catch {
      // reported by http.health
    }
  }
  const names = Object.keys(times);
  if (names.length < 2) return put(ctx, "clock.skew", "SKIP", "fewer than two clocks available", "", { times });
  const diffs: string[] = [];
  let worst = 0;
  let cause = "";
  let fix = "";
  const pairs: [string, string][] = [["host", "server"], ["ukey", "server"], ["host", "ukey"]];
  for (const [a, b] of pairs) {
    if (times[a] === undefined || times[b] === undefined) continue;
    const d = (times[a] as number) - (times[b] as number);
    diffs.push(`${a}-${b} ${Math.round(d / 1000)} s`);
    if (Math.abs(d) > MAX_CLOCK_SKEW_MS && Math.abs(d) > worst) {
      worst = Math.abs(d);
      cause = `the ${a} clock is ${Math.round(Math.abs(d) / 1000)} s ${d > 0 ? "ahead of" : "behind"} the ${b} clock (at most ${MAX_CLOCK_SKEW_MS / 1000} s allowed)`;
      fix = a === "host" ? "synchronize this computer's clock (NTP / time.windows.com)" : "the Ukey's secure clock cannot be set by the user: take the Ukey to the tax bureau";
    }
  }
  const detail = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, iso(v)]));
  if (worst > 0) put(ctx, "clock.skew", "FAIL", cause, fix, detail);
  else put(ctx, "clock.skew", "PASS", diffs.join(", "), "", detail);
}

// ------------------------------------------------------------------ pending uploads

async function pendingCheck(ctx: Ctx): Promise<void> {
  let pending: number | undefined;
  let windowEndsAt: number | undefined;
  if (ctx.client && ctx.o.pin !== undefined) {
    try {
      await ctx.client.verifyPin(ctx.o.pin);
      const { status } = await ctx.client.getLimits();
      pending = status.pendingCount;
      windowEndsAt = status.windowEndsAt * 1000;
    } catch (error) {
      return put(ctx, "uploads.pending", "FAIL", `cannot read the Ukey's pending records: ${msg(error)}`, "check the PIN");
    }
  } else if (ctx.o.db) {
    pending = ctx.o.db.countPendingUpload();
  }
  if (pending === undefined) return put(ctx, "uploads.pending", "SKIP", "give the PIN or the local DB to count pending uploads");
  const detail = { pending, ...(windowEndsAt ? { offlineWindowEndsAt: iso(windowEndsAt) } : {}) };
  if (pending === 0) return put(ctx, "uploads.pending", "PASS", "nothing waits for upload", "", detail);
  if (windowEndsAt !== undefined && windowEndsAt < ctx.now) {
    return put(ctx, "uploads.pending", "FAIL", `${pending} record(s) wait for upload and the offline window ended at ${iso(windowEndsAt)}: issuing is locked`, "fix the connection (checks above), then run `ukeysim issuer upload`", detail);
  }
  put(ctx, "uploads.pending", "WARN", `${pending} record(s) wait for upload; online issuing resumes after upload`, "run `ukeysim issuer upload` once the server is reachable", detail);
}
