/**
 * Bureau-side material the harness needs to personalize and sync a target: the key the
 * card holds now (transport key), the bureau master key (card key = derive(master, serial)),
 * PINs and the issuance profile. For a simulated target the harness holds it; for hardware
 * the vendor supplies an issuer-key file (format in docs/hil.md):
 *
 *   { "format": "ukeysim-issuer-keys/1", "transportKey": "<32 hex>",
 *     "profile": { ...fixtures/profile-default.json shape... } }
 */
import { readFileSync } from "node:fs";
import { FACTORY_ISSUER_KEY, parseProfile, ProfileError, type IssuanceProfile } from "../src/tax/index.ts";

export const ISSUER_KEYS_FORMAT = "ukeysim-issuer-keys/1";

export interface IssuerKeys {
  /** Key the (blank) card holds now: FACTORY_ISSUER_KEY for our simulator. */
  transportKey: Uint8Array;
  profile: IssuanceProfile;
}

export class IssuerKeysError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IssuerKeysError";
  }
}

const DEFAULT_PROFILE_URL = new URL("../fixtures/profile-default.json", import.meta.url);

/** The default profile's text, read once: every campaign (each worker request) asks for the keys. */
let defaultProfileText: string | undefined;

/** The keys of the simulator: transport key FACTORY_ISSUER_KEY, fixtures/profile-default.json (a fresh copy each call). */
export function simIssuerKeys(): IssuerKeys {
  defaultProfileText ??= readFileSync(DEFAULT_PROFILE_URL, "utf8");
  return { transportKey: FACTORY_ISSUER_KEY.slice(), profile: parseProfile(defaultProfileText) };
}

export function parseIssuerKeys(text: string, where = "issuer-key file"): IssuerKeys {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new IssuerKeysError(`${where}: not JSON (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new IssuerKeysError(`${where}: must be a JSON object`);
  const o = raw as Record<string, unknown>;
  if (o.format !== ISSUER_KEYS_FORMAT) throw new IssuerKeysError(`${where}: "format" must be "${ISSUER_KEYS_FORMAT}", got ${JSON.stringify(o.format)}`);
  if (typeof o.transportKey !== "string" || !/^[0-9a-fA-F]{32}$/.test(o.transportKey)) throw new IssuerKeysError(`${where}: "transportKey" must be 32 hex digits`);
  let profile: IssuanceProfile;
  try {
    profile = parseProfile(JSON.stringify(o.profile));
  } catch (e) {
    throw new IssuerKeysError(`${where}: "profile": ${e instanceof ProfileError ? e.message : String(e)}`);
  }
  return { transportKey: new Uint8Array(Buffer.from(o.transportKey, "hex")), profile };
}

export function readIssuerKeys(path: string): IssuerKeys {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new IssuerKeysError(`cannot read issuer-key file ${path}: ${(e as Error).message}`);
  }
  return parseIssuerKeys(text, path);
}
