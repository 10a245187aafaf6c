/**
 * ukeysim personalize --image key.img [--profile FILE] [--seed N] [--certs-out DIR] [--force]
 * Issues a new virtual Ukey into an image file, as the bureau does at issuance: transport-key
 * authentication, PINs, secure clock (wall clock now), tax-control key, taxpayer, invoice
 * types, stock and limits from the profile, the card key, END PERSONALIZATION; then an SM2
 * key pair generated on the card and a device certificate from a simulated tax CA
 * (root -> intermediate -> device, SM2-with-SM3) written to the card (slots 0, 1, 2).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { openUkeyImage } from "../cos/index.ts";
import { createBureauPki, issueUkey } from "../bureau/index.ts";
import { certificateToPem } from "../crypto/index.ts";
import { parseSeed, Rng, toHex, type Clock } from "../sim/index.ts";
import { parseProfile, type Send } from "../tax/index.ts";

const DEFAULT_PROFILE = new URL("../../fixtures/profile-default.json", import.meta.url);
const WALL_CLOCK: Clock = { now: () => Date.now() };

function seedOption(text: string): number {
  try {
    return parseSeed(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

interface Options {
  image: string;
  profile?: string;
  seed: number;
  certsOut?: string;
  force?: boolean;
}

export function registerPersonalize(program: Command): void {
  program
    .command("personalize")
    .description("issue a new virtual Ukey into an image file from a profile (taxpayer, invoice types, stock, limits) with a device certificate")
    .requiredOption("--image <file>", "image file to create")
    .option("--profile <file>", "issuance profile JSON (default: fixtures/profile-default.json)")
    .option("--seed <n>", "seed for the card's RNG and the simulated CA", seedOption, 1)
    .option("--certs-out <dir>", "also write root.pem, intermediate.pem and device.pem here")
    .option("--force", "replace an existing image")
    .action(async (o: Options) => {
      const profile = parseProfile(readFileSync(o.profile ?? DEFAULT_PROFILE, "utf8"));
      const rng = new Rng(o.seed);
      const ukey = openUkeyImage({ path: o.image, create: true, overwrite: o.force ?? false, clock: WALL_CLOCK, rng: rng.fork("card") });
      try {
        const card = ukey.card;
        card.powerOn();
        const send: Send = async (apdu) => card.process(apdu);
        const serial = card.serial;
        const nowMs = WALL_CLOCK.now();
        const caRng = rng.fork("tax-ca");
        const pki = createBureauPki(caRng, nowMs);
        const { publicKey, deviceCertificate: device } = await issueUkey(send, { profile, serial, pki, rng: caRng, nowMs });
        card.powerOff();
        if (o.certsOut) {
          mkdirSync(o.certsOut, { recursive: true });
          writeFileSync(join(o.certsOut, "root.pem"), certificateToPem(pki.root.der));
          writeFileSync(join(o.certsOut, "intermediate.pem"), certificateToPem(pki.intermediate.der));
          writeFileSync(join(o.certsOut, "device.pem"), certificateToPem(device));
        }
        console.log(JSON.stringify({ image: o.image, serial, taxpayerId: profile.taxpayer.taxpayerId, publicKey: toHex(publicKey), seed: o.seed, certsOut: o.certsOut ?? null }));
      } finally {
        ukey.chip.close();
      }
    });
}
