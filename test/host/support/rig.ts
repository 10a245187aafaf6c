/**
 * The host test rig: a real bureau over HTTPS on loopback (startBureau) and a personalized
 * in-process Ukey with a bureau-issued SM2 device certificate, the local DB and an issuer.
 * Everything shares one virtual clock (TLS certificates follow the wall clock, as clients
 * check them against real time).
 */
import { createUkey, type UkeyCos } from "../../../src/cos/index.ts";
import { ModelStore, type RecordStore } from "../../../src/flash-store/index.ts";
import { Rng, VirtualClock } from "../../../src/sim/index.ts";
import { startBureau, type Bureau, type BureauFaults } from "../../../src/bureau/index.ts";
import { InProcessChannel, type ApduChannel } from "../../../src/transport/index.ts";
import { pemToDer } from "../../../src/crypto/index.ts";
import { deriveCardKey, FACTORY_ISSUER_KEY } from "../../../src/tax/index.ts";
import {
  UkeyClient, HostDb, OfflineIssuer, BureauHttp, setPassword, type IssuerOptions,
} from "../../../src/host/index.ts";

export { PROFILE_TEXT, PROFILE, SERIAL, ISSUE_TIME_MS, PASSWORD, WALL, input } from "./constants.ts";
import { PROFILE, SERIAL, ISSUE_TIME_MS, PASSWORD, WALL } from "./constants.ts";

export const BUREAU_LIMITS = { offlineHours: 72, maxInvoiceFen: 1_000_000, maxOfflineTotalFen: 5_000_000, maxOfflineCount: 50 };

export function taxpayerRegistration(limits = BUREAU_LIMITS) {
  return {
    taxpayerId: PROFILE.taxpayer.taxpayerId, name: "济南示例商贸有限公司", limits,
    stock: PROFILE.purchases.map((p) => ({ invoiceCode: p.invoiceCode, startNumber: p.startNumber, count: p.count })),
  };
}

export async function newBureau(clock: VirtualClock, faults: Partial<BureauFaults> = {}, seed = 7): Promise<Bureau> {
  const bureau = await startBureau({ clock, tlsClock: WALL, rng: new Rng(seed), faults, masterKey: PROFILE.bureauMasterKey });
  bureau.service.registerTaxpayer(taxpayerRegistration());
  bureau.service.registerDevice({ deviceSerial: SERIAL, taxpayerId: PROFILE.taxpayer.taxpayerId, taxControlKey: Buffer.from(PROFILE.taxKey).toString("hex") });
  return bureau;
}

/** Personalize a blank card through the client and give it a bureau-issued certificate chain. */
export async function personalizeWithCert(client: UkeyClient, bureau: Bureau, clock: VirtualClock, cert: { notAfter?: number } = {}): Promise<void> {
  const cardKey = deriveCardKey(PROFILE.bureauMasterKey, SERIAL);
  // the issuance sequence through the typed client (src/tax's personalizeCard does the same with raw APDUs)
  await client.connect();
  const s0 = await client.bureauSession(FACTORY_ISSUER_KEY);
  await client.setPins(s0, PROFILE.userPin, PROFILE.soPin);
  await client.setClock(s0, Math.floor(clock.now() / 1000));
  await client.loadTaxKey(s0, PROFILE.taxKey, PROFILE.taxCodeAlgorithm);
  await client.setTaxpayer(s0, PROFILE.taxpayer);
  await client.verifyPin(PROFILE.userPin);
  await client.setInvoiceTypes(s0, PROFILE.invoiceTypes);
  await client.syncPurchases(s0, PROFILE.purchases);
  await client.setLimits(s0, PROFILE.limits);
  await client.setBureauKey(s0, cardKey);
  await client.endPersonalization(s0);
  await client.select();
  await client.verifyPin(PROFILE.userPin);
  const publicKey = await client.generateKeyPair();
  const issued = bureau.service.issueDeviceCertificate({
    publicKey: Buffer.from(publicKey).toString("hex"), taxpayerId: PROFILE.taxpayer.taxpayerId, deviceSerial: SERIAL, ...cert,
  });
  const s = await client.bureauSession(cardKey);
  await client.writeCert(s, 0, new Uint8Array(Buffer.from(issued.certificate, "base64")));
  await client.writeCert(s, 1, pemToDer(bureau.sm2.intermediatePem, "CERTIFICATE"));
  await client.writeCert(s, 2, pemToDer(bureau.sm2.rootPem, "CERTIFICATE"));
  await client.disconnect();
}

export interface Rig {
  clock: VirtualClock;
  bureau: Bureau;
  card: UkeyCos;
  store: RecordStore;
  channel: ApduChannel;
  client: UkeyClient;
  db: HostDb;
  issuer: OfflineIssuer;
  sleeps: number[];
  printed: string[];
  stop(): Promise<void>;
}

export interface RigOptions {
  faults?: Partial<BureauFaults>;
  cert?: { notAfter?: number };
  issuer?: Partial<IssuerOptions>;
  dbPath?: string;
  login?: boolean;
  /** Secure storage of the in-process Ukey (ModelStore capacity), for rollover tests. */
  capacityBytes?: number;
}

export async function newRig(o: RigOptions = {}): Promise<Rig> {
  const clock = new VirtualClock(ISSUE_TIME_MS);
  const bureau = await newBureau(clock, o.faults);
  const store = new ModelStore(o.capacityBytes);
  const card = createUkey({ store, clock, rng: new Rng(11), serial: SERIAL });
  const channel = new InProcessChannel(card);
  const client = new UkeyClient(channel);
  await personalizeWithCert(client, bureau, clock, o.cert);
  const db = new HostDb(o.dbPath ?? ":memory:");
  const rng = new Rng(5);
  setPassword(db, rng, PASSWORD);
  const sleeps: number[] = [];
  const printed: string[] = [];
  const issuer = new OfflineIssuer({
    client, db, clock, rng,
    bureau: new BureauHttp({ serverUrl: bureau.url, caPem: bureau.caCertPem, timeoutMs: 2_000 }),
    sleep: async (ms) => void sleeps.push(ms),
    printer: (html) => void printed.push(html),
    ...o.issuer,
  });
  if (o.login !== false) await issuer.login({ password: PASSWORD, pin: PROFILE.userPin });
  return {
    clock, bureau, card, store, channel, client, db, issuer, sleeps, printed,
    async stop() {
      db.close();
      await bureau.stop();
    },
  };
}

