/**
 * The host system password (the first of the paper's two passwords; the second is the
 * Ukey PIN): stored as a scrypt hash with a salt drawn from the injected Rng.
 */
import { scryptSync, timingSafeEqual } from "node:crypto";
import type { Rng } from "../sim/index.ts";
import { HostError } from "./errors.ts";
import type { HostDb } from "./db.ts";

export const SCRYPT_PARAMS = { N: 1 << 14, r: 8, p: 1 } as const;
export const SALT_BYTES = 16;
export const HASH_BYTES = 32;
export const PASSWORD_MIN_CHARS = 6;
export const PASSWORD_MAX_CHARS = 128;
const META_KEY = "hostPassword";

interface Stored {
  alg: "scrypt";
  N: number;
  r: number;
  p: number;
  salt: string;
  hash: string;
}

function derive(password: string, salt: Uint8Array, p: { N: number; r: number; p: number }): Uint8Array {
  return scryptSync(password.normalize("NFC"), salt, HASH_BYTES, { N: p.N, r: p.r, p: p.p, maxmem: 64 * 1024 * 1024 });
}

export function hasPassword(db: HostDb): boolean {
  return db.meta(META_KEY) !== undefined;
}

/** Set (or replace, given the old one) the host system password. */
export function setPassword(db: HostDb, rng: Rng, password: string, oldPassword?: string): void {
  if (password.length < PASSWORD_MIN_CHARS || password.length > PASSWORD_MAX_CHARS) {
    throw new HostError("BAD_ARGUMENT", `the host password must be ${PASSWORD_MIN_CHARS}-${PASSWORD_MAX_CHARS} characters`);
  }
  if (hasPassword(db)) {
    if (oldPassword === undefined) throw new HostError("BAD_PASSWORD", "a host password is already set: give the old one to change it");
    checkPassword(db, oldPassword);
  }
  const salt = rng.bytes(SALT_BYTES);
  const stored: Stored = { alg: "scrypt", ...SCRYPT_PARAMS, salt: Buffer.from(salt).toString("hex"), hash: Buffer.from(derive(password, salt, SCRYPT_PARAMS)).toString("hex") };
  db.setMeta(META_KEY, JSON.stringify(stored));
}

/** Throws NO_PASSWORD / BAD_PASSWORD; returns quietly when it matches. */
export function checkPassword(db: HostDb, password: string): void {
  const text = db.meta(META_KEY);
  if (text === undefined) throw new HostError("NO_PASSWORD", "no host password set: run `ukeysim issuer login --new-password ...` once");
  const s = JSON.parse(text) as Stored;
  const expected = Buffer.from(s.hash, "hex");
  const got = derive(password, Buffer.from(s.salt, "hex"), s);
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) throw new HostError("BAD_PASSWORD", "the host system password is wrong");
}
