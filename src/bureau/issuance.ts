/**
 * Issuing a Ukey, as the bureau does at the service hall: personalize the blank card through
 * its transport key (PINs, secure clock, tax-control key, taxpayer, invoice types, stock,
 * limits, the card key), have it generate its SM2 key pair, and write the device certificate
 * chain (device, device CA, root) the bureau's PKI issues for that key.
 * Transport-agnostic: it only needs `send(apdu)`, so it issues simulated and real cards alike.
 */
import {
  CLA_PROPRIETARY, FACTORY_ISSUER_KEY, INS, bureauAuthenticate, call, deriveCardKey, encodeCommand, issuer, personalizeCard, verifyPin,
  type IssuanceProfile, type Send,
} from "../tax/index.ts";
import { issueDevice, type BureauPki } from "./pki.ts";
import type { Rng } from "../sim/index.ts";

/** Le for GENERATE KEY PAIR: the 65-byte public key fits a short response. */
const PUBLIC_KEY_LE = 256;
const MS_PER_SECOND = 1000;

export interface IssueUkeyInput {
  profile: IssuanceProfile;
  /** The card's serial (UKEY_GetSbxx), from which its card key is derived. */
  serial: string;
  pki: BureauPki;
  rng: Rng;
  /** Issuance time: the secure clock is set to it and the certificate starts at it. */
  nowMs: number;
  /** The factory transport key; the default is the simulator's. */
  transportKey?: Uint8Array;
}

export interface IssuedUkey {
  publicKey: Uint8Array;
  deviceCertificate: Uint8Array;
  cardKey: Uint8Array;
}

export async function issueUkey(send: Send, input: IssueUkeyInput): Promise<IssuedUkey> {
  const { profile, serial, pki, nowMs } = input;
  const cardKey = deriveCardKey(profile.bureauMasterKey, serial);
  await personalizeCard(send, {
    issuerKey: input.transportKey ?? FACTORY_ISSUER_KEY, cardKey, userPin: profile.userPin, soPin: profile.soPin,
    clockSeconds: Math.floor(nowMs / MS_PER_SECOND), taxKey: profile.taxKey, taxCodeAlgorithm: profile.taxCodeAlgorithm,
    taxpayer: profile.taxpayer, invoiceTypes: profile.invoiceTypes, purchases: profile.purchases, limits: profile.limits,
  });
  await verifyPin(send, profile.userPin);
  const publicKey = await call(send, encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.GENERATE_KEY_PAIR, le: PUBLIC_KEY_LE }));
  const deviceCertificate = issueDevice(pki, input.rng, nowMs, {
    publicKey, taxpayerId: profile.taxpayer.taxpayerId, deviceSerial: serial, notAfter: profile.taxpayer.certNotAfter * MS_PER_SECOND,
  });
  const session = await bureauAuthenticate(send, cardKey);
  await issuer.writeCert(send, session, 0, deviceCertificate);
  await issuer.writeCert(send, session, 1, pki.intermediate.der);
  await issuer.writeCert(send, session, 2, pki.root.der);
  return { publicKey, deviceCertificate, cardKey };
}
