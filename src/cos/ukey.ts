/**
 * The Ukey's chip OS: one SimCard. This file is the APDU layer (ISO 7816-4 cases 1-4,
 * short/extended, command chaining, GET RESPONSE), the security state (application
 * selection, PINs, bureau authentication and secure messaging), the persistent state
 * (sealed records in the RecordStore) and the general commands. The tax-control
 * functions are in tax-commands.ts; their rules in tax-machine.ts.
 *
 * Every state change is ONE store transaction issued after every check passed, and RAM
 * follows only after the commit returned, so a rejected command or a power cut leaves the
 * old state or the new one. A power cut (the store throws PowerLossError) makes the card
 * mute (CardMuteError) until the next powerOn, which reloads everything from flash.
 */
import {
  E, SW, TaxError, parseCommand, joinResponse, TAX_AID, INS, CLA_ISO, CLA_PROPRIETARY, CLA_SM, CLA_CHAIN_BIT, CHALLENGE_BYTES,
  authCryptogram, deriveSessionKeys, unwrapData, bytesEqual, PinRef, PIN_MIN_LENGTH, PIN_MAX_LENGTH, PIN_MAX_TRIES, SO_PIN_MAX_TRIES,
  KEY_USAGE_LIMIT, CERT_SLOTS, MAX_SIGN_MESSAGE_BYTES, FACTORY_ISSUER_KEY, decodeLayout, decodeTable, TAXPAYER_LAYOUT, INVOICE_TYPE_LAYOUT,
  PURCHASE_LAYOUT, LIMITS_LAYOUT, taxCodeAlgorithm, ByteReader, DecodeError, EXTENDED_MAX_DATA, type SmKeys, type TaxpayerInfo,
  type InvoiceTypeEntry, type PurchaseRecord, type OfflineLimits, type CommandApdu,
} from "../tax/index.ts";
import { hmacSm3, sm2GenerateKeyPair, sm2Sign } from "../crypto/index.ts";
import { NULL_TRACE, toHex, type Clock, type Rng, type TraceSink } from "../sim/index.ts";
import { FlashStore, StoreError, MAX_RECORD_BYTES, type RecordStore, type TxOp } from "../flash-store/index.ts";
import { SecureClock, ClockState, type SecureClockOptions } from "../secure-clock/index.ts";
import { CardMuteError, type SimCard } from "./card.ts";
import { SwError, swOf, isPowerLoss } from "./errors.ts";
import { MemorySecrets, Vault, StoreSealed, DEVICE_SECRET_BYTES, type DeviceSecrets, type Sealer } from "./vault.ts";
import {
  RT, LifeCycle, Loaded, REQUIRED_FOR_END, ZERO_COUNTERS, withNextNumber, encodeSecrets, decodeSecrets, encodePins, decodePins, encodeCounters, decodeCounters,
  type Secrets, type Pins, type Counters,
} from "./records.ts";
import { startTaxMachine, sendTax, type TaxContext, type TaxSnapshot } from "./tax-machine.ts";
import { TaxCommands } from "./tax-commands.ts";

/** ATR: T=0/T=1, historical bytes "TAXUKEY1", TCK. */
export const ATR = (() => {
  const body = [0x3b, 0x88, 0x80, 0x01, ...new TextEncoder().encode("TAXUKEY1")];
  let tck = 0;
  for (const b of body.slice(1)) tck ^= b;
  return Uint8Array.from([...body, tck]);
})();
/**
 * The secure clock's high-water mark is persisted with a transaction when the time source
 * moved at least this far since the last checkpoint (not on every issue: it would double
 * the critical writes). Invoice times cannot go back regardless: counters.lastEventAt.
 */
export const CLOCK_CHECKPOINT_INTERVAL_MS = 60_000;
/** Largest total data a command chain may carry. */
export const MAX_CHAIN_BYTES = EXTENDED_MAX_DATA;
/** Largest certificate stored (leaves room for the seal). */
export const MAX_CERT_BYTES = MAX_RECORD_BYTES - 64;

export interface UkeyOptions {
  store: RecordStore;
  clock: Clock;
  rng: Rng;
  /** The MCU secure area holding the storage key; in memory when absent. */
  secrets?: DeviceSecrets;
  trace?: TraceSink;
  /** Serial number chosen at the factory; drawn from the rng when absent. */
  serial?: string;
  driftPpm?: number;
  batteryLifeMs?: number;
  allowOutOfSpecClock?: boolean;
  /**
   * True when the store encrypts every record itself with a key derived from the device
   * secret (FlashStore): the COS then does not seal records again. Default: true for a
   * FlashStore, false otherwise (records sealed by the Vault: SM4-CTR + HMAC-SM3 tag).
   */
  storeEncrypts?: boolean;
  /** Called at powerOn after a power cut: a store that must be re-mounted returns the new one. */
  reopenStore?: () => RecordStore;
}

export interface Cmd extends CommandApdu {
  /** True when the data field was unwrapped from secure messaging. */
  sm: boolean;
}

interface Session {
  keys: SmKeys;
  counter: number;
}

/** The persistent state as loaded from flash (RAM mirror). */
export interface CardData {
  secrets: Secrets;
  pins: Pins;
  counters: Counters;
  taxpayer?: TaxpayerInfo;
  types?: InvoiceTypeEntry[];
  purchases?: PurchaseRecord[];
  limits?: OfflineLimits;
  certs: (Uint8Array | undefined)[];
}

export class UkeyCos implements SimCard {
  store: RecordStore;
  readonly clock: SecureClock;
  readonly trace: TraceSink;
  private readonly deviceSecrets: DeviceSecrets;
  private readonly rng: Rng;
  private readonly keyRng: Rng;
  private vault!: Sealer;
  private powered = false;
  private muted = false;
  private broken: string | undefined;
  private traceSeq = 0;
  // volatile security state
  private selected = false;
  private userPinOk = false;
  private challenge: Uint8Array | undefined;
  private session: Session | undefined;
  private pendingResponse: Uint8Array | undefined;
  private chain: { head: number[]; parts: Uint8Array[]; size: number } | undefined;
  // persistent mirror
  data!: CardData;
  /** The xstate snapshot as of the last refreshMachine(); read state through refreshMachine() (time moves it). */
  get machine(): TaxSnapshot {
    if (!this.machineSnapshot) {
      const start = this.machineStart as { ctx: TaxContext; personalized: boolean };
      this.machineSnapshot = startTaxMachine(start.ctx, start.personalized);
      this.machineStart = undefined;
    }
    return this.machineSnapshot;
  }
  set machine(snapshot: TaxSnapshot) {
    this.machineSnapshot = snapshot;
    this.machineStart = undefined;
  }
  private machineSnapshot: TaxSnapshot | undefined;
  /**
   * The input load() starts the machine with, kept until the machine is first used: starting
   * it (xstate's initialTransition, a pure function of this input) was a third of a power-on,
   * and most power-ons of a campaign (scenario devices, judges) never ask for the state.
   */
  private machineStart: { ctx: TaxContext; personalized: boolean } | undefined;
  private machineStale = false;
  private readonly tax: TaxCommands;

  constructor(private readonly options: UkeyOptions) {
    this.store = options.store;
    this.rng = options.rng.fork("cos");
    this.keyRng = options.rng.fork("cos-keys");
    this.trace = options.trace ?? NULL_TRACE;
    this.deviceSecrets = options.secrets ?? new MemorySecrets();
    const clockOptions: SecureClockOptions = {
      source: options.clock, store: this.store, seal: { seal: (t, i, p) => this.vault.seal(t, i, p), open: (t, i, s) => this.vault.open(t, i, s) },
      allowOutOfSpec: options.allowOutOfSpecClock ?? false,
    };
    if (options.driftPpm !== undefined) clockOptions.driftPpm = options.driftPpm;
    if (options.batteryLifeMs !== undefined) clockOptions.batteryLifeMs = options.batteryLifeMs;
    this.openVault();
    this.clock = new SecureClock(clockOptions);
    this.tax = new TaxCommands(this);
  }

  // ---------------------------------------------------------------- power

  powerOn(): Uint8Array {
    if (this.muted && this.options.reopenStore) this.store = this.options.reopenStore();
    this.clock.useStore(this.store);
    this.resetVolatile();
    this.muted = false;
    this.powered = true;
    try {
      this.openVault();
      this.formatIfBlank();
      this.load();
      this.broken = undefined;
    } catch (error) {
      if (isPowerLoss(error)) return this.mute(error);
      this.broken = error instanceof Error ? error.message : String(error);
    }
    this.trace.emit({ kind: "power", seq: this.traceSeq++, state: "on", atr: toHex(ATR) });
    return ATR.slice();
  }

  powerOff(): void {
    this.powered = false;
    this.resetVolatile();
    this.trace.emit({ kind: "power", seq: this.traceSeq++, state: "off" });
  }

  private closers: (() => void)[] = [];

  /** Run `f` at close() (e.g. release the image file). */
  onClose(f: () => void): void {
    this.closers.push(f);
  }

  /** Power off and release what the card holds (an image file); the card is unusable afterwards. */
  close(): void {
    if (this.powered) this.powerOff();
    for (const f of this.closers.splice(0)) f();
  }

  /** True while the card lost power mid-command and was not re-powered. */
  get isMute(): boolean {
    return this.muted;
  }

  private mute(error: unknown): never {
    this.muted = true;
    this.powered = false;
    this.resetVolatile();
    throw new CardMuteError(`card is mute: power lost in flash (${error instanceof Error ? error.message : String(error)})`);
  }

  private resetVolatile(): void {
    this.selected = false;
    this.userPinOk = false;
    this.challenge = undefined;
    this.session = undefined;
    this.pendingResponse = undefined;
    this.chain = undefined;
  }

  // ---------------------------------------------------------------- persistent state

  private openVault(): void {
    let secret = this.deviceSecrets.read();
    if (!secret) {
      secret = this.rng.fork("device-secret").bytes(DEVICE_SECRET_BYTES);
      this.deviceSecrets.write(secret);
    }
    const storeEncrypts = this.options.storeEncrypts ?? this.store instanceof FlashStore;
    this.vault = storeEncrypts ? new StoreSealed(secret) : new Vault(secret, this.rng.fork("nonces"));
  }

  /** A blank store gets the factory records: transport key, no PINs, zero counters. */
  private formatIfBlank(): void {
    if (this.store.get(RT.SECRETS, 0) !== undefined) return;
    const serial = this.options.serial ?? `UK${String(this.rng.fork("serial").int(1e9)).padStart(9, "0")}${String(this.rng.int(1e5)).padStart(5, "0")}`;
    const secrets: Secrets = {
      lifeCycle: LifeCycle.FACTORY, loaded: 0, serial, bureauKey: FACTORY_ISSUER_KEY.slice(), taxKey: new Uint8Array(0), taxAlgorithm: "",
      signPrivate: new Uint8Array(0), signPublic: new Uint8Array(0), userPinHash: new Uint8Array(0), soPinHash: new Uint8Array(0),
    };
    this.store.commit([
      this.put(RT.SECRETS, 0, encodeSecrets(secrets)),
      this.put(RT.PINS, 0, encodePins({ userTries: PIN_MAX_TRIES, soTries: SO_PIN_MAX_TRIES })),
      this.put(RT.COUNTERS, 0, encodeCounters(ZERO_COUNTERS)),
    ]);
  }

  /** Open a sealed record; a record that fails authentication is corruption. */
  read(type: number, id: number): Uint8Array | undefined {
    const sealed = this.store.get(type, id);
    if (sealed === undefined) return undefined;
    const plain = this.vault.open(type, id, sealed);
    if (!plain) throw new SwError(SW.MEMORY_FAILURE, `record ${type}/${id} fails authentication`);
    return plain;
  }

  put(type: number, id: number, plain: Uint8Array): TxOp {
    return { kind: "put", type, id, value: this.vault.seal(type, id, plain) };
  }

  private load(): void {
    this.clock.reload();
    const need = (t: number) => {
      const b = this.read(t, 0);
      if (!b) throw new Error(`record ${t} missing`);
      return b;
    };
    const opt = <T>(t: number, f: (b: Uint8Array) => T): T | undefined => {
      const b = this.read(t, 0);
      return b ? f(b) : undefined;
    };
    const secrets = decodeSecrets(need(RT.SECRETS));
    const counters = decodeCounters(need(RT.COUNTERS));
    this.data = {
      secrets,
      pins: decodePins(need(RT.PINS)),
      counters,
      taxpayer: opt(RT.TAXPAYER, (b) => decodeLayout(TAXPAYER_LAYOUT, b) as unknown as TaxpayerInfo),
      types: opt(RT.INVOICE_TYPES, (b) => decodeTable(INVOICE_TYPE_LAYOUT, b) as unknown as InvoiceTypeEntry[]),
      purchases: secrets.loaded & Loaded.PURCHASES ? this.loadPurchases(counters.nextNumbers) : undefined,
      limits: opt(RT.LIMITS, (b) => decodeLayout(LIMITS_LAYOUT, b) as unknown as OfflineLimits),
      certs: Array.from({ length: CERT_SLOTS }, (_, i) => this.read(RT.CERTS, i)),
    };
    this.machineSnapshot = undefined;
    this.machineStart = { ctx: this.taxContext(), personalized: this.data.secrets.lifeCycle === LifeCycle.PERSONALIZED };
    this.tax.reset();
  }

  /** The purchase slots as synced, with the live next numbers from the counters. */
  private loadPurchases(nextNumbers: readonly number[]): PurchaseRecord[] {
    return Array.from({ length: PURCHASE_LAYOUT.records }, (_, i) => {
      const b = this.read(RT.PURCHASES, i);
      if (!b) throw new SwError(SW.MEMORY_FAILURE, `purchase slot ${i} missing`);
      return withNextNumber(decodeLayout(PURCHASE_LAYOUT, b) as unknown as PurchaseRecord, nextNumbers[i] ?? 0);
    });
  }

  /**
   * Secure time in seconds, or undefined when the clock is invalid: not running, or behind
   * the last issue/void (a rolled-back time source across a power cycle).
   */
  secureNow(): number | undefined {
    if (this.clock.state() !== ClockState.RUNNING) return undefined;
    const now = this.clock.nowSeconds();
    return now >= this.data.counters.lastEventAt ? now : undefined;
  }

  /** The machine's view of the persistent state, at the secure clock's time now. */
  taxContext(): TaxContext {
    const d = this.data;
    const now = this.secureNow();
    return {
      now: now ?? 0,
      clockOk: now !== undefined,
      limits: d.limits ?? { offlineAllowed: 0, validDays: 0, validUntil: 0, maxOfflineCount: 0, maxOfflineAmountFen: 0, maxOfflineRatioPermille: 0, singleLimitFen: 0 },
      counters: d.counters,
      certPresent: d.certs[0] !== undefined,
      certNotAfter: d.taxpayer?.certNotAfter ?? 0,
      certRevoked: (d.taxpayer?.certStatus ?? 0) !== 0,
      signLimit: KEY_USAGE_LIMIT,
      verdict: 0,
    };
  }

  /** After a commit: the machine re-derives its state when next asked (keeps xstate off the issue path). */
  invalidateMachine(): void {
    this.machineStale = true;
  }

  /** True when a commit happened since the machine snapshot was last refreshed. */
  get machineIsStale(): boolean {
    return this.machineStale;
  }

  /** Re-derive the machine state from the persistent state (after a commit or as time passes). */
  refreshMachine(): TaxSnapshot {
    this.machineStale = false;
    const { verdict: _v, ...ctx } = this.taxContext();
    this.machine = sendTax(this.machine, { type: "UPDATE", ctx });
    return this.machine;
  }

  /**
   * Commit one transaction (plus the secure clock's checkpoint) and run `apply` to bring
   * RAM in step. Store errors become status words; a power cut makes the card mute.
   */
  commit(ops: TxOp[], apply: () => void): void {
    const cp = this.clock.checkpointOp(CLOCK_CHECKPOINT_INTERVAL_MS);
    const all = cp ? [...ops, cp.op] : ops;
    try {
      this.store.commit(all);
    } catch (error) {
      if (isPowerLoss(error)) this.mute(error);
      if (error instanceof StoreError && error.code === "STORAGE_FULL") throw new TaxError(E.STORAGE_FULL);
      if (error instanceof StoreError) throw new SwError(SW.MEMORY_FAILURE, error.message);
      throw error;
    }
    if (cp) this.clock.adopt(cp.anchor);
    apply();
  }

  // ---------------------------------------------------------------- APDU layer

  process(apdu: Uint8Array): Uint8Array {
    if (this.muted || !this.powered) throw new CardMuteError(this.muted ? undefined : "card is not powered");
    const response = this.processInner(apdu);
    // Hex-encoding both APDUs costs more than many commands; skip it when nobody traces.
    if (this.trace !== NULL_TRACE) this.trace.emit({ kind: "apdu", seq: this.traceSeq++, command: toHex(apdu), response: toHex(response) });
    return response;
  }

  private processInner(apdu: Uint8Array): Uint8Array {
    const parsed = parseCommand(apdu);
    if (!parsed.ok) return this.status(SW.WRONG_LENGTH);
    const c = parsed.apdu;
    if (this.broken) return this.status(SW.MEMORY_FAILURE);
    if (c.cla === CLA_ISO && c.ins === INS.GET_RESPONSE) return this.getResponse(c);
    this.pendingResponse = undefined;
    if (c.cla & 0x03 || (c.cla & 0x60) !== 0) return this.status(c.cla & 0x03 ? SW.LOGICAL_CHANNEL_NOT_SUPPORTED : SW.CLA_NOT_SUPPORTED);
    const base = c.cla & ~CLA_CHAIN_BIT;
    if (base !== CLA_ISO && base !== CLA_PROPRIETARY && base !== CLA_SM) return this.status(SW.CLA_NOT_SUPPORTED);
    const whole = this.assembleChain(c, base);
    if (whole instanceof Uint8Array) return whole;
    return this.execute(whole);
  }

  /** Collect chained commands (CLA bit 0x10); returns the whole command or a response. */
  private assembleChain(c: CommandApdu, base: number): CommandApdu | Uint8Array {
    const head = [base, c.ins, c.p1, c.p2];
    if (this.chain && !this.chain.head.every((v, i) => v === head[i])) {
      this.chain = undefined;
      return this.status(SW.LAST_COMMAND_EXPECTED);
    }
    if (c.cla & CLA_CHAIN_BIT) {
      if (base === CLA_SM) return this.status(SW.CHAINING_NOT_SUPPORTED); // each secure message carries its own MAC
      const size = (this.chain?.size ?? 0) + c.data.length;
      if (size > MAX_CHAIN_BYTES) {
        this.chain = undefined;
        return this.status(SW.CHAINING_NOT_SUPPORTED);
      }
      this.chain = { head, parts: [...(this.chain?.parts ?? []), c.data], size };
      return this.status(SW.OK);
    }
    if (!this.chain) return { ...c, cla: base };
    const parts = [...this.chain.parts, c.data];
    this.chain = undefined;
    const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      data.set(p, o);
      o += p.length;
    }
    return { ...c, cla: base, data };
  }

  private execute(c: CommandApdu): Uint8Array {
    let data: Uint8Array;
    try {
      const cmd = this.unwrap(c);
      data = this.dispatch(cmd);
    } catch (error) {
      if (error instanceof CardMuteError) throw error;
      if (isPowerLoss(error)) this.mute(error);
      const sw = swOf(error);
      if (sw !== undefined) return this.status(sw);
      if (error instanceof DecodeError || error instanceof RangeError) return this.status(SW.WRONG_DATA);
      // A store failure on any path (e.g. an uncorrectable ECC error while reading) is a memory failure.
      if (error instanceof StoreError) return this.status(SW.MEMORY_FAILURE);
      this.trace.emit({ kind: "note", seq: this.traceSeq++, text: `internal error: ${error instanceof Error ? error.stack ?? error.message : String(error)}` });
      return this.status(SW.NO_PRECISE_DIAGNOSIS);
    }
    return this.respond(data, c);
  }

  /** Send `data` within Ne; the rest waits for GET RESPONSE (61xx). */
  private respond(data: Uint8Array, c: CommandApdu): Uint8Array {
    const ne = c.le;
    if (data.length === 0) return this.status(SW.OK);
    if (ne >= data.length) return joinResponse(data, SW.OK);
    const first = data.subarray(0, ne);
    this.pendingResponse = data.slice(ne);
    return joinResponse(first, SW.MORE_DATA | Math.min(this.pendingResponse.length, 0xff));
  }

  private getResponse(c: CommandApdu): Uint8Array {
    const pending = this.pendingResponse;
    if (!pending) return this.status(SW.CONDITIONS_NOT_SATISFIED);
    if (c.p1 !== 0 || c.p2 !== 0) return this.status(SW.WRONG_P1P2);
    const n = Math.min(c.le || 256, pending.length);
    const chunk = pending.subarray(0, n);
    const rest = pending.subarray(n);
    this.pendingResponse = rest.length ? rest.slice() : undefined;
    return joinResponse(chunk, rest.length ? SW.MORE_DATA | Math.min(rest.length, 0xff) : SW.OK);
  }

  private status(sw: number): Uint8Array {
    return joinResponse(new Uint8Array(0), sw);
  }

  /** CLA 84: check the session and the MAC, decrypt. Plain CLAs pass through. */
  private unwrap(c: CommandApdu): Cmd {
    if (c.cla !== CLA_SM) return { ...c, sm: false };
    if (!this.selected) throw new SwError(SW.CONDITIONS_NOT_SATISFIED, "application not selected");
    if (!SM_INS.has(c.ins)) throw new SwError(SW.SECURE_MESSAGING_NOT_SUPPORTED);
    const s = this.session;
    if (!s) throw new TaxError(E.NEED_AUTH, "bureau authentication required");
    try {
      const { plain, counter } = unwrapData(s.keys, s.counter, [c.cla, c.ins, c.p1, c.p2], c.data);
      s.counter = counter;
      return { ...c, data: plain, sm: true };
    } catch (error) {
      if (error instanceof TaxError && error.code === E.MAC) this.session = undefined;
      throw error;
    }
  }

  private dispatch(c: Cmd): Uint8Array {
    const h = this.handlers.get(c.ins);
    if (!h) throw new TaxError(E.INS);
    if (h.cla !== c.cla) throw h.cla === CLA_SM ? new TaxError(E.NEED_AUTH, "this command needs secure messaging") : new TaxError(E.CLA);
    if (!this.selected && !FREE_BEFORE_SELECT.has(c.ins)) throw new SwError(SW.CONDITIONS_NOT_SATISFIED, "application not selected");
    return h.run(c);
  }

  private readonly handlers = new Map<number, { cla: number; run: (c: Cmd) => Uint8Array }>([
    [INS.SELECT, { cla: CLA_ISO, run: (c) => this.select(c) }],
    [INS.GET_CHALLENGE, { cla: CLA_ISO, run: (c) => this.getChallenge(c) }],
    [INS.EXTERNAL_AUTHENTICATE, { cla: CLA_ISO, run: (c) => this.externalAuthenticate(c) }],
    [INS.VERIFY, { cla: CLA_ISO, run: (c) => this.verify(c) }],
    [INS.CHANGE_PIN, { cla: CLA_ISO, run: (c) => this.changePin(c) }],
    [INS.UNBLOCK_PIN, { cla: CLA_ISO, run: (c) => this.unblockPin(c) }],
    [INS.GENERATE_KEY_PAIR, { cla: CLA_PROPRIETARY, run: (c) => this.generateKeyPair(c) }],
    [INS.EXPORT_PUBLIC_KEY, { cla: CLA_PROPRIETARY, run: (c) => this.exportPublicKey(c) }],
    [INS.SIGN, { cla: CLA_PROPRIETARY, run: (c) => this.signCommand(c) }],
    [INS.WRITE_CERT, { cla: CLA_SM, run: (c) => this.writeCert(c) }],
    [INS.READ_CERT, { cla: CLA_PROPRIETARY, run: (c) => this.readCert(c) }],
    [INS.CLEAR_SECURITY_STATE, { cla: CLA_PROPRIETARY, run: (c) => this.clearSecurity(c) }],
    [INS.SET_PINS, { cla: CLA_SM, run: (c) => this.setPins(c) }],
    [INS.SET_CLOCK, { cla: CLA_SM, run: (c) => this.setClock(c) }],
    [INS.LOAD_TAX_KEY, { cla: CLA_SM, run: (c) => this.loadTaxKey(c) }],
    [INS.SET_BUREAU_KEY, { cla: CLA_SM, run: (c) => this.setBureauKey(c) }],
    [INS.END_PERSONALIZATION, { cla: CLA_SM, run: (c) => this.endPersonalization(c) }],
    ...TaxCommands.INS.map(([ins, cla]) => [ins, { cla, run: (c: Cmd) => this.tax.run(c) }] as const),
  ]);

  // ---------------------------------------------------------------- access helpers

  needP1P2(c: Cmd, p1: number, p2: number): void {
    if (c.p1 !== p1 || c.p2 !== p2) throw new TaxError(E.P1P2);
  }
  needLength(c: Cmd, min: number, max = min): void {
    if (c.data.length < min || c.data.length > max) throw new TaxError(E.LENGTH);
  }
  needUserPin(): void {
    if (!this.userPinOk) throw new TaxError(E.NEED_AUTH, "user PIN not verified");
  }
  needFactory(): void {
    if (this.data.secrets.lifeCycle !== LifeCycle.FACTORY) throw new TaxError(E.STATE, "only before END PERSONALIZATION");
  }
  needPersonalized(): void {
    if (this.data.secrets.lifeCycle !== LifeCycle.PERSONALIZED) throw new TaxError(E.STATE, "card not personalized");
  }
  /** Secure time in seconds, or TaxError CLOCK_INVALID. */
  now(): number {
    const now = this.secureNow();
    if (now === undefined) throw new TaxError(E.CLOCK_INVALID);
    return now;
  }
  nextRandom(n: number): Uint8Array {
    return this.rng.bytes(n);
  }

  /** Sign with the device key (no commit: the caller commits signCount + 1 with its transaction). */
  signBytes(message: Uint8Array): Uint8Array {
    const s = this.data.secrets;
    if (s.signPrivate.length === 0) throw new TaxError(E.DATA_NOT_EXIST, "no key pair on the card");
    if (this.data.counters.signCount >= KEY_USAGE_LIMIT) throw new TaxError(E.KEY_EXPIRED);
    return sm2Sign(s.signPrivate, message, { publicKey: s.signPublic });
  }

  // ---------------------------------------------------------------- general commands

  private select(c: Cmd): Uint8Array {
    // P2 00 (return FCI) and 0C (no response data) both select; the card has no FCI to return.
    this.needP1P2(c, SELECT_BY_NAME, c.p2 === SELECT_NO_RESPONSE_DATA ? SELECT_NO_RESPONSE_DATA : SELECT_FIRST_OR_ONLY);
    this.resetVolatile();
    if (!bytesEqual(c.data, TAX_AID)) throw new SwError(SW.FILE_NOT_FOUND, "no application with this AID");
    this.selected = true;
    return new Uint8Array(0);
  }

  private getChallenge(c: Cmd): Uint8Array {
    this.needP1P2(c, 0, 0);
    if (c.data.length !== 0) throw new TaxError(E.LENGTH);
    if (c.le < 1 || c.le > 256) throw new TaxError(E.LENGTH);
    const r = this.nextRandom(c.le);
    this.challenge = c.le === CHALLENGE_BYTES ? r.slice() : undefined;
    return r;
  }

  private externalAuthenticate(c: Cmd): Uint8Array {
    this.needP1P2(c, 0, 1);
    this.needLength(c, 16);
    const challenge = this.challenge;
    this.challenge = undefined;
    this.session = undefined;
    if (!challenge) throw new TaxError(E.STATE, "GET CHALLENGE first");
    const key = this.data.secrets.bureauKey;
    if (!bytesEqual(c.data, authCryptogram(key, challenge))) throw new TaxError(E.MAC, "bureau cryptogram is wrong");
    this.session = { keys: deriveSessionKeys(key, challenge), counter: 0 };
    return new Uint8Array(0);
  }

  private pinHash(pin: Uint8Array, ref: number): Uint8Array {
    return hmacSm3(this.vault.pinKey, Uint8Array.of(ref), pin);
  }

  private pinRef(c: Cmd): number {
    if (c.p1 !== 0 || (c.p2 !== PinRef.USER && c.p2 !== PinRef.SO)) throw new TaxError(E.P1P2);
    if ((this.data.secrets.loaded & Loaded.PINS) === 0) throw new TaxError(E.STATE, "PINs not set");
    return c.p2;
  }

  /**
   * The PIN check with tearing protection: the try counter goes down in flash BEFORE the
   * comparison; only a match writes it back to the maximum. A cut after the decrement
   * costs a try, never gives one back.
   */
  private checkPin(ref: number, candidate: Uint8Array, onMatch: (pins: Pins) => { ops: TxOp[]; apply: () => void }): void {
    const pins = this.data.pins;
    const tries = ref === PinRef.USER ? pins.userTries : pins.soTries;
    if (tries === 0) throw new TaxError(E.PIN_LOCKED);
    if (candidate.length < PIN_MIN_LENGTH || candidate.length > PIN_MAX_LENGTH) throw new TaxError(E.LENGTH, "PIN length out of range");
    const down: Pins = ref === PinRef.USER ? { ...pins, userTries: tries - 1 } : { ...pins, soTries: tries - 1 };
    this.commit([this.put(RT.PINS, 0, encodePins(down))], () => (this.data.pins = down));
    const hash = ref === PinRef.USER ? this.data.secrets.userPinHash : this.data.secrets.soPinHash;
    if (!bytesEqual(this.pinHash(candidate, ref), hash)) {
      if (ref === PinRef.USER) this.userPinOk = false;
      throw new TaxError(E.PIN_ERROR, "wrong PIN", tries - 1);
    }
    const restored: Pins = ref === PinRef.USER ? { ...down, userTries: PIN_MAX_TRIES } : { ...down, soTries: SO_PIN_MAX_TRIES };
    const more = onMatch(restored);
    this.commit([this.put(RT.PINS, 0, encodePins(restored)), ...more.ops], () => {
      this.data.pins = restored;
      more.apply();
    });
  }

  private verify(c: Cmd): Uint8Array {
    const ref = this.pinRef(c);
    const tries = ref === PinRef.USER ? this.data.pins.userTries : this.data.pins.soTries;
    if (c.data.length === 0) {
      if (tries === 0) throw new TaxError(E.PIN_LOCKED);
      if (ref === PinRef.USER && this.userPinOk) return new Uint8Array(0);
      throw new TaxError(E.PIN_ERROR, "tries left", tries);
    }
    this.checkPin(ref, c.data, () => ({ ops: [], apply: () => { if (ref === PinRef.USER) this.userPinOk = true; } }));
    return new Uint8Array(0);
  }

  /** u8 length, first PIN, then the rest (checked as a PIN unless `restIsPin` is false). */
  private splitPins(data: Uint8Array, restIsPin = true): [Uint8Array, Uint8Array] {
    const n = data[0];
    if (n === undefined || 1 + n > data.length) throw new TaxError(E.PARAM, "u8 length, first PIN, second PIN");
    const a = data.slice(1, 1 + n);
    const b = data.slice(1 + n);
    if (restIsPin && (b.length < PIN_MIN_LENGTH || b.length > PIN_MAX_LENGTH)) throw new TaxError(E.LENGTH, "new PIN length out of range");
    return [a, b];
  }

  private changePin(c: Cmd): Uint8Array {
    const ref = this.pinRef(c);
    const [old, next] = this.splitPins(c.data);
    this.checkPin(ref, old, () => {
      const s = { ...this.data.secrets, [ref === PinRef.USER ? "userPinHash" : "soPinHash"]: this.pinHash(next, ref) } as Secrets;
      return { ops: [this.put(RT.SECRETS, 0, encodeSecrets(s))], apply: () => { this.data.secrets = s; if (ref === PinRef.USER) this.userPinOk = true; } };
    });
    return new Uint8Array(0);
  }

  private unblockPin(c: Cmd): Uint8Array {
    if (c.p1 !== 0 || c.p2 !== PinRef.USER) throw new TaxError(E.P1P2);
    if ((this.data.secrets.loaded & Loaded.PINS) === 0) throw new TaxError(E.STATE, "PINs not set");
    const [so, next] = this.splitPins(c.data);
    this.checkPin(PinRef.SO, so, (restored) => {
      const s = { ...this.data.secrets, userPinHash: this.pinHash(next, PinRef.USER) };
      const p = { ...restored, userTries: PIN_MAX_TRIES };
      return { ops: [this.put(RT.SECRETS, 0, encodeSecrets(s)), this.put(RT.PINS, 0, encodePins(p))], apply: () => { this.data.secrets = s; this.data.pins = p; } };
    });
    return new Uint8Array(0);
  }

  private generateKeyPair(c: Cmd): Uint8Array {
    this.needP1P2(c, 0, 0);
    this.needLength(c, 0);
    this.needUserPin();
    const pair = sm2GenerateKeyPair(this.keyRng);
    const s = { ...this.data.secrets, signPrivate: pair.privateKey, signPublic: pair.publicKey };
    const counters = { ...this.data.counters, signCount: 0 };
    this.commit([this.put(RT.SECRETS, 0, encodeSecrets(s)), this.put(RT.COUNTERS, 0, encodeCounters(counters))], () => {
      this.data.secrets = s;
      this.data.counters = counters;
      this.invalidateMachine();
    });
    return pair.publicKey.slice();
  }

  private exportPublicKey(c: Cmd): Uint8Array {
    this.needP1P2(c, 0, 0);
    this.needLength(c, 0);
    if (this.data.secrets.signPublic.length === 0) throw new TaxError(E.DATA_NOT_EXIST, "no key pair");
    return this.data.secrets.signPublic.slice();
  }

  private signCommand(c: Cmd): Uint8Array {
    this.needP1P2(c, 0, 0);
    this.needLength(c, 1, MAX_SIGN_MESSAGE_BYTES);
    this.needUserPin();
    const signature = this.signBytes(c.data);
    const counters = { ...this.data.counters, signCount: this.data.counters.signCount + 1 };
    this.commit([this.put(RT.COUNTERS, 0, encodeCounters(counters))], () => {
      this.data.counters = counters;
      this.invalidateMachine();
    });
    return signature;
  }

  private writeCert(c: Cmd): Uint8Array {
    if (c.p1 >= CERT_SLOTS || c.p2 !== 0) throw new TaxError(E.P1P2);
    this.needLength(c, 2, MAX_CERT_BYTES);
    if (c.data[0] !== 0x30) throw new TaxError(E.PARAM, "a certificate is a DER SEQUENCE");
    const slot = c.p1;
    const der = c.data.slice();
    this.commit([this.put(RT.CERTS, slot, der)], () => {
      this.data.certs[slot] = der;
      this.invalidateMachine();
    });
    return new Uint8Array(0);
  }

  private readCert(c: Cmd): Uint8Array {
    if (c.p1 >= CERT_SLOTS || c.p2 !== 0) throw new TaxError(E.P1P2);
    this.needLength(c, 0);
    const der = this.data.certs[c.p1];
    if (!der) throw new TaxError(E.DATA_NOT_EXIST, "no certificate in this slot");
    return der.slice();
  }

  private clearSecurity(c: Cmd): Uint8Array {
    this.needP1P2(c, 0, 0);
    this.needLength(c, 0);
    this.userPinOk = false;
    this.session = undefined;
    this.challenge = undefined;
    return new Uint8Array(0);
  }

  // ---------------------------------------------------------------- issuer (factory) commands

  private updateSecrets(change: Partial<Secrets>, loadedBit: number, extra: TxOp[] = [], apply?: () => void): void {
    const s = { ...this.data.secrets, ...change, loaded: this.data.secrets.loaded | loadedBit };
    this.commit([this.put(RT.SECRETS, 0, encodeSecrets(s)), ...extra], () => {
      this.data.secrets = s;
      apply?.();
    });
  }

  private setPins(c: Cmd): Uint8Array {
    this.needP1P2(c, 0, 0);
    this.needFactory();
    const [user, rest] = this.splitPins(c.data, false);
    const [so, tail] = this.splitPins(rest, false);
    if (tail.length !== 0) throw new TaxError(E.PARAM, "u8 len, user PIN, u8 len, SO PIN");
    for (const p of [user, so]) if (p.length < PIN_MIN_LENGTH || p.length > PIN_MAX_LENGTH) throw new TaxError(E.LENGTH, "PIN length out of range");
    const pins = { userTries: PIN_MAX_TRIES, soTries: SO_PIN_MAX_TRIES };
    this.updateSecrets({ userPinHash: this.pinHash(user, PinRef.USER), soPinHash: this.pinHash(so, PinRef.SO) }, Loaded.PINS, [this.put(RT.PINS, 0, encodePins(pins))], () => (this.data.pins = pins));
    return new Uint8Array(0);
  }

  private setClock(c: Cmd): Uint8Array {
    this.needP1P2(c, 0, 0);
    this.needLength(c, 4);
    this.needFactory();
    const seconds = new ByteReader(c.data).u32();
    let set: ReturnType<SecureClock["setOp"]>;
    try {
      set = this.clock.setOp(seconds);
    } catch {
      throw new TaxError(E.PARAM, "clock time out of range");
    }
    const s = { ...this.data.secrets, loaded: this.data.secrets.loaded | Loaded.CLOCK };
    try {
      this.store.commit([this.put(RT.SECRETS, 0, encodeSecrets(s)), set.op]);
    } catch (error) {
      if (isPowerLoss(error)) this.mute(error);
      throw error;
    }
    this.data.secrets = s;
    this.clock.adopt(set.anchor);
    return new Uint8Array(0);
  }

  private loadTaxKey(c: Cmd): Uint8Array {
    this.needP1P2(c, 0, 0);
    this.needLength(c, 17, 16 + 64);
    this.needFactory();
    if (this.data.secrets.loaded & Loaded.TAX_KEY) throw new TaxError(E.STATE, "the tax-control key is loaded once");
    const id = String.fromCharCode(...c.data.subarray(16));
    try {
      taxCodeAlgorithm(id);
    } catch {
      throw new TaxError(E.PARAM, `unknown tax-code algorithm ${id}`);
    }
    this.updateSecrets({ taxKey: c.data.slice(0, 16), taxAlgorithm: id }, Loaded.TAX_KEY);
    return new Uint8Array(0);
  }

  private setBureauKey(c: Cmd): Uint8Array {
    this.needP1P2(c, 0, 0);
    this.needLength(c, 16);
    this.needFactory();
    this.updateSecrets({ bureauKey: c.data.slice() }, Loaded.CARD_KEY);
    return new Uint8Array(0);
  }

  private endPersonalization(c: Cmd): Uint8Array {
    this.needP1P2(c, 0, 0);
    this.needLength(c, 0);
    this.needFactory();
    if ((this.data.secrets.loaded & REQUIRED_FOR_END) !== REQUIRED_FOR_END) throw new TaxError(E.STATE, "personalization incomplete");
    const now = this.now();
    const counters = { ...this.data.counters, lastOnlineAt: now };
    this.updateSecrets({ lifeCycle: LifeCycle.PERSONALIZED }, 0, [this.put(RT.COUNTERS, 0, encodeCounters(counters))], () => {
      this.data.counters = counters;
      const { verdict: _v, ...ctx } = this.taxContext();
      this.machine = sendTax(this.machine, { type: "PERSONALIZED", ctx });
    });
    return new Uint8Array(0);
  }

  // ---------------------------------------------------------------- inspection (tests, harness)

  get serial(): string {
    return this.data.secrets.serial;
  }
  get isSelected(): boolean {
    return this.selected;
  }
  get userPinVerified(): boolean {
    return this.userPinOk;
  }
}

/** INS that accept CLA 84. */
const SM_INS = new Set<number>([
  INS.WRITE_CERT, INS.SET_PINS, INS.SET_CLOCK, INS.LOAD_TAX_KEY, INS.SET_BUREAU_KEY, INS.END_PERSONALIZATION,
  INS.SET_TAXPAYER, INS.SET_INVOICE_TYPES, INS.SYNC_PURCHASES, INS.SET_LIMITS, INS.CONFIRM_UPLOAD,
]);
/** INS allowed before the application is selected. */
const FREE_BEFORE_SELECT = new Set<number>([INS.SELECT, INS.GET_CHALLENGE]);
/** SELECT P1: by DF name (AID). */
const SELECT_BY_NAME = 0x04;
/** SELECT P2: first or only occurrence, return FCI (none here). */
const SELECT_FIRST_OR_ONLY = 0x00;
/** SELECT P2: first or only occurrence, no response data (what many PC/SC tools send). */
const SELECT_NO_RESPONSE_DATA = 0x0c;
