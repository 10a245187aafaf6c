/**
 * ukeysim issuer login|sync|issue|void|red|upload|list|print|enroll ...
 *   --target URI --server URL [--ca FILE] [--db FILE] [--json]
 * The offline issuer of src/host on a Ukey (docs/invoice-input.md for the invoice JSON).
 * Passwords: --password / UKEYSIM_PASSWORD (host system password) and --pin / UKEYSIM_PIN
 * (Ukey user PIN). --profile FILE (an issuance profile holding the bureau master key) stands
 * in for the bureau's secure-message builder until the bureau relays issuer messages.
 */
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { join } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import {
  OfflineIssuer, HostDb, UkeyClient, BureauHttp, LocalIssuerAgent, HostError, UkeyError, BureauHttpError, parseInvoiceJson, setPassword, hasPassword,
  renderInvoiceHtml, type InvoiceRow,
} from "../host/index.ts";
import { parseProfile, formatInvoiceNumber, formatYuan, deriveCardKey, type IssuanceProfile } from "../tax/index.ts";
import { pemToDer } from "../crypto/index.ts";
import { ChannelError } from "../transport/index.ts";
import { Rng, parseSeed } from "../sim/index.ts";
import { openTarget, WALL_CLOCK, type OpenedTarget } from "./target.ts";

interface Common {
  target: string;
  server?: string;
  ca?: string;
  db: string;
  json?: boolean;
  password?: string;
  pin?: string;
  profile?: string;
  seed?: string;
  timeout?: number;
}

const DEFAULT_DB = "ukeysim-host.db";
const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_TIMEOUT_MS = 600_000;

export function parseTimeout(text: string): number {
  if (!/^\d{1,6}$/.test(text) || Number(text) < 1 || Number(text) > MAX_TIMEOUT_MS) throw new InvalidArgumentError(`timeout must be 1-${MAX_TIMEOUT_MS} ms, got "${text}"`);
  return Number(text);
}

function common(c: Command): Command {
  return c
    .requiredOption("--target <uri>", "the Ukey: sim:IMAGE, usbip://HOST:PORT/BUSID, pcsc:READER, serial:PATH, usb:VID:PID")
    .option("--server <url>", "the bureau, https://host:port")
    .option("--ca <file>", "PEM of the CA the bureau's TLS certificate chains to (default: the system roots)")
    .option("--db <file>", "the local database", DEFAULT_DB)
    .option("--json", "print JSON")
    .option("--password <text>", "host system password (or UKEYSIM_PASSWORD)")
    .option("--pin <text>", "Ukey user PIN (or UKEYSIM_PIN)")
    .option("--profile <file>", "issuance profile with the bureau master key: builds the bureau's secure messages (stand-in)")
    .option("--seed <n>", "seed of this run's RNG (default: from the clock)")
    .option("--timeout <ms>", "HTTP timeout in ms", parseTimeout, DEFAULT_TIMEOUT_MS);
}

export function caPemOf(file: string | undefined): string {
  return file ? readFileSync(file, "utf8") : rootCertificates.join("\n");
}

function secret(v: string | undefined, env: string, what: string): string {
  const s = v ?? process.env[env];
  if (s === undefined || s === "") throw new HostError("BAD_ARGUMENT", `give the ${what} with --${what === "PIN" ? "pin" : "password"} or ${env}`);
  return s;
}

interface Session {
  issuer: OfflineIssuer;
  db: HostDb;
  target: OpenedTarget;
  profile?: IssuanceProfile;
}

async function open(o: Common, printDir?: string): Promise<Session> {
  const seed = o.seed !== undefined ? parseSeed(o.seed) : Date.now();
  const rng = new Rng(seed);
  const profile = o.profile ? parseProfile(readFileSync(o.profile, "utf8")) : undefined;
  const target = await openTarget(o.target, rng.fork("card").nextU32());
  const db = new HostDb(o.db);
  const bureau = o.server ? new BureauHttp({ serverUrl: o.server, caPem: caPemOf(o.ca), timeoutMs: o.timeout ?? DEFAULT_TIMEOUT_MS }) : undefined;
  const issuer = new OfflineIssuer({
    client: new UkeyClient(target.channel), db, clock: WALL_CLOCK, rng,
    ...(bureau ? { bureau } : {}),
    ...(profile ? { agent: new LocalIssuerAgent(profile.bureauMasterKey) } : {}),
    ...(printDir ? {
      printer: (html: string, row: InvoiceRow) => {
        mkdirSync(printDir, { recursive: true });
        writeFileSync(join(printDir, `${row.invoiceCode}-${formatInvoiceNumber(row.invoiceNumber)}.html`), html);
      },
    } : {}),
  });
  return { issuer, db, target, ...(profile ? { profile } : {}) };
}

async function close(s: Session): Promise<void> {
  s.db.close();
  await s.target.close();
}

function rowJson(r: InvoiceRow) {
  return {
    invoiceCode: r.invoiceCode, invoiceNumber: formatInvoiceNumber(r.invoiceNumber), seq: r.seq, kind: r.kind, mode: r.mode, issuedAt: r.issuedAt,
    grandTotalFen: r.grandTotalFen, buyerName: r.buyerName, taxCode: r.taxCode, voided: r.voidedAt !== null, uploaded: r.uploaded, printed: r.printedAt !== null,
    ...(r.kind === "red" ? { original: `${r.originalCode}/${formatInvoiceNumber(r.originalNumber)}` } : {}),
  };
}

function rowText(r: InvoiceRow): string {
  const flags = [r.voidedAt !== null ? "VOID" : "", r.uploaded ? "uploaded" : "pending", r.printedAt !== null ? "printed" : ""].filter(Boolean).join(",");
  return `${r.invoiceCode} ${formatInvoiceNumber(r.invoiceNumber)}  ${r.kind.padEnd(6)} ${r.mode.padEnd(7)} ¥${formatYuan(r.grandTotalFen).padStart(12)}  ${r.taxCode}  ${flags}  ${r.buyerName}`;
}

function out(o: Common, json: unknown, text: string): void {
  console.log(o.json ? JSON.stringify(json) : text);
}

/** Run a subcommand with a logged-in session; errors print as `CODE: message` and exit 1. */
function action<T extends Common>(body: (s: Session, o: T, args: string[]) => Promise<void>, opts: { login?: boolean; printDir?: (o: T) => string | undefined } = {}) {
  return async (...all: unknown[]) => {
    const cmd = all[all.length - 1] as Command;
    const o = cmd.opts<T>();
    const args = all.slice(0, -2).filter((a): a is string => typeof a === "string");
    let s: Session | undefined;
    try {
      s = await open(o, opts.printDir?.(o));
      if (opts.login !== false) await s.issuer.login({ password: secret(o.password, "UKEYSIM_PASSWORD", "password"), pin: secret(o.pin, "UKEYSIM_PIN", "PIN") });
      await body(s, o, args);
    } catch (error) {
      report(o, error);
    } finally {
      if (s) await close(s);
    }
  };
}

export function report(o: { json?: boolean }, error: unknown): void {
  const e = error as { code?: unknown; message?: string; sw?: number | null };
  const code = error instanceof UkeyError ? error.errorName
    : error instanceof HostError || error instanceof BureauHttpError || error instanceof ChannelError ? String(e.code) : "ERROR";
  if (o.json) console.log(JSON.stringify({ ok: false, code, message: e.message ?? String(error), ...(error instanceof UkeyError ? { sw: error.sw, tyukey: error.code } : {}) }));
  else console.error(`error: ${e.message ?? String(error)}`);
  process.exitCode = 1;
}

function parseNumber(text: string): number {
  if (!/^\d{1,8}$/.test(text)) throw new HostError("BAD_ARGUMENT", `invoice number must be 1-8 digits, got "${text}"`);
  return Number(text);
}

function parseCode(text: string): string {
  if (!/^\d{12}$/.test(text)) throw new HostError("BAD_ARGUMENT", `invoice code must be 12 digits, got "${text}"`);
  return text;
}

function readInvoice(file: string): ReturnType<typeof parseInvoiceJson> {
  const text = file === "-" ? readFileSync(0, "utf8") : readFileSync(file, "utf8");
  return parseInvoiceJson(text);
}

export function registerIssuer(program: Command): void {
  const issuer = program.command("issuer").description("the offline issuer: sync, issue, void, red-letter, upload and print invoices with a Ukey (src/host)");

  common(issuer.command("login").description("check the host password and the Ukey PIN, reconcile the local DB with the Ukey"))
    .option("--new-password <text>", "set the host system password (first run), or change it (give the old one with --password)")
    .action(action<Common & { newPassword?: string }>(async (s, o) => {
      let password = o.password ?? process.env.UKEYSIM_PASSWORD;
      if (o.newPassword !== undefined) {
        setPassword(s.db, new Rng(Date.now()), o.newPassword, hasPassword(s.db) ? password ?? "" : undefined);
        password = o.newPassword;
      }
      const rec = await s.issuer.login({ password: password ?? "", pin: secret(o.pin, "UKEYSIM_PIN", "PIN") });
      const who = s.issuer.who;
      out(o, { ok: true, serial: who.serial, taxpayerId: who.taxpayer.taxpayerId, reconcile: rec }, `logged in: Ukey ${who.serial}, taxpayer ${who.taxpayer.taxpayerId}; reconciled ${JSON.stringify(rec)}`);
    }, { login: false }));

  common(issuer.command("sync").description("sync stock, limits and restrictions from the bureau to the Ukey; fetch the CRL"))
    .action(action(async (s, o) => {
      const r = await s.issuer.sync();
      out(o, { ok: true, ...r }, `synced: ${r.stockRanges} stock range(s), ${r.messagesApplied} issuer message(s) applied, CRL #${r.crlNumber ?? "?"}`);
    }));

  common(issuer.command("issue").description("issue an invoice (offline unless --online) from a JSON file (docs/invoice-input.md)"))
    .requiredOption("--invoice <file>", "invoice JSON, or - for stdin")
    .option("--request-id <id>", "idempotency key: the same id never issues twice")
    .option("--online", "issue online (refused while offline invoices wait for upload)")
    .option("--no-auto-upload", "with --server: do not upload pending records after issuing")
    .option("--print-dir <dir>", "write the printable HTML here")
    .action(action<Common & { invoice: string; requestId?: string; online?: boolean; printDir?: string; autoUpload?: boolean }>(async (s, o) => {
      const input = readInvoice(o.invoice);
      const row = await s.issuer.issue(input, { ...(o.requestId ? { requestId: o.requestId } : {}), ...(o.online ? { online: true } : {}) });
      const auto = o.server && o.autoUpload !== false ? await s.issuer.uploadIfOnline() : undefined;
      out(o, { ok: true, invoice: rowJson(row), ...(auto ? { autoUpload: auto } : {}) },
        `issued ${rowText(row)}${auto ? `\nauto-upload: ${"offline" in auto ? `offline (${auto.offline})` : `${auto.uploaded} uploaded`}` : ""}`);
    }, { printDir: (o) => o.printDir }));

  common(issuer.command("void").description("void an invoice").argument("<code>").argument("<number>"))
    .action(action(async (s, o, [code, number]) => {
      const row = await s.issuer.voidInvoice(parseCode(code as string), parseNumber(number as string));
      out(o, { ok: true, invoice: rowJson(row) }, `voided ${rowText(row)}`);
    }));

  common(issuer.command("red").description("issue a red-letter (credit) invoice against an original").argument("<code>").argument("<number>"))
    .option("--invoice <file>", "partial credit: invoice JSON for the red-letter lines (default: the whole original)")
    .option("--print-dir <dir>", "write the printable HTML here")
    .action(action<Common & { invoice?: string; printDir?: string }>(async (s, o, [code, number]) => {
      const row = await s.issuer.red(parseCode(code as string), parseNumber(number as string), o.invoice ? readInvoice(o.invoice) : undefined);
      out(o, { ok: true, invoice: rowJson(row) }, `issued red-letter ${rowText(row)}`);
    }, { printDir: (o) => o.printDir }));

  common(issuer.command("upload").description("upload every pending record (batches, retries with backoff); confirm receipts to the Ukey"))
    .action(action(async (s, o) => {
      const r = await s.issuer.upload();
      out(o, { ok: !r.stopped, ...r }, `uploaded ${r.uploaded} invoice(s) in ${r.batches} batch(es), confirmed through event ${r.confirmedThrough}${r.stopped ? `; stopped: ${r.stopped.code}: ${r.stopped.message}` : ""}`);
      if (r.stopped) process.exitCode = 1;
    }));

  common(issuer.command("list").description("list the invoices in the local database"))
    .action(action(async (s, o) => {
      const rows = s.issuer.list();
      const st = await s.issuer.status();
      out(o, { ok: true, status: st, invoices: rows.map(rowJson) }, [...rows.map(rowText), `${rows.length} invoice(s); ${st.pendingOnUkey} record(s) pending upload on the Ukey`].join("\n"));
    }));

  common(issuer.command("print").description("write the printable HTML of an invoice").argument("<code>").argument("<number>"))
    .option("--out <file>", "output file (default: stdout)")
    .action(action<Common & { out?: string }>(async (s, o, [code, number]) => {
      const row = s.db.invoice(parseCode(code as string), parseNumber(number as string));
      if (!row) throw new HostError("UNKNOWN_INVOICE", `no invoice ${code}/${number} in the local database`);
      const html = await renderInvoiceHtml(row);
      if (o.out) {
        writeFileSync(o.out, html);
        s.db.markPrinted(row.invoiceCode, row.invoiceNumber, WALL_CLOCK.now());
        out(o, { ok: true, file: o.out }, `wrote ${o.out}`);
      } else process.stdout.write(html);
    }));

  common(issuer.command("enroll").description("test bureau only: register the profile's taxpayer and this Ukey at the bureau and write a bureau-issued device certificate to the Ukey"))
    .action(action(async (s, o) => {
      if (!s.profile) throw new HostError("BAD_ARGUMENT", "enroll needs --profile (the issuance profile of this Ukey)");
      if (!o.server) throw new HostError("NO_BUREAU", "enroll needs --server");
      const bureau = new BureauHttp({ serverUrl: o.server, caPem: caPemOf(o.ca) });
      const p = s.profile;
      const client = s.issuer.client;
      const serial = s.issuer.who.serial;
      await bureau.post("/admin/taxpayers", {
        taxpayerId: p.taxpayer.taxpayerId, name: p.taxpayer.taxpayerName,
        limits: { offlineHours: p.limits.validDays * 24, maxInvoiceFen: p.limits.singleLimitFen, maxOfflineTotalFen: p.limits.maxOfflineAmountFen, maxOfflineCount: p.limits.maxOfflineCount },
        stock: p.purchases.map((x) => ({ invoiceCode: x.invoiceCode, startNumber: x.startNumber, count: x.count })),
      });
      const cardKey = deriveCardKey(p.bureauMasterKey, serial);
      await bureau.post("/admin/devices", {
        deviceSerial: serial, taxpayerId: p.taxpayer.taxpayerId, taxControlKey: Buffer.from(p.taxKey).toString("hex"), cardKey: Buffer.from(cardKey).toString("hex"),
      });
      const publicKey = await client.exportPublicKey();
      const issued = await bureau.post<{ certificate: string; chain: string[] }>("/admin/device-certificates", {
        publicKey: Buffer.from(publicKey).toString("hex"), taxpayerId: p.taxpayer.taxpayerId, deviceSerial: serial,
      });
      const pki = await bureau.get<{ root: string; intermediate: string }>("/pki");
      const session = await client.bureauSession(cardKey);
      await client.writeCert(session, 0, new Uint8Array(Buffer.from(issued.certificate, "base64")));
      await client.writeCert(session, 1, pemToDer(pki.intermediate, "CERTIFICATE"));
      await client.writeCert(session, 2, pemToDer(pki.root, "CERTIFICATE"));
      out(o, { ok: true, serial, taxpayerId: p.taxpayer.taxpayerId }, `enrolled Ukey ${serial} for ${p.taxpayer.taxpayerId} at ${o.server}`);
    }));
}
