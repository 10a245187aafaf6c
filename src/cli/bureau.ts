/**
 * ukeysim bureau serve: the test tax bureau over HTTPS on loopback, following the wall clock.
 * Prints one JSON line {"url", "caFile", "seed"} when ready; stops on SIGINT/SIGTERM.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { InvalidArgumentError, Option, type Command } from "commander";
import { startBureau, mergeFaults, NO_FAULTS, FaultError, type BureauFaults } from "../bureau/index.ts";
import { parseSeed, Rng, type Clock } from "../sim/index.ts";
import { parseProfile, type IssuanceProfile } from "../tax/index.ts";

const MAX_PORT = 65_535;

function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > MAX_PORT) throw new InvalidArgumentError(`port must be an integer 0-${MAX_PORT}, got "${text}"`);
  return Number(text);
}

function parseSeedOption(text: string): number {
  try {
    return parseSeed(text);
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
  }
}

function parseMasterKey(text: string): Uint8Array {
  if (!/^[0-9a-fA-F]{32}$/.test(text)) throw new InvalidArgumentError("master key must be 32 hex digits");
  return new Uint8Array(Buffer.from(text, "hex"));
}

/** --fault name=value, repeatable; the value is JSON (true, 500, "expired") or a bare word. */
function collectFault(text: string, previous: BureauFaults): BureauFaults {
  const match = /^([A-Za-z0-9]+)=(.*)$/.exec(text);
  if (!match) throw new InvalidArgumentError(`fault must look like name=value, got "${text}"`);
  let value: unknown;
  try {
    value = JSON.parse(match[2] as string);
  } catch {
    value = match[2];
  }
  try {
    return mergeFaults(previous, { [match[1] as string]: value });
  } catch (error) {
    throw new InvalidArgumentError(error instanceof FaultError ? error.message : String(error));
  }
}

export function registerBureau(program: Command): void {
  const bureau = program.command("bureau").description("the tax bureau's receiver (sync, upload, time, CRL) for tests and the demo");
  bureau
    .command("serve")
    .description("serve the bureau's HTTPS API on loopback (docs/bureau-api.md)")
    .option("--port <n>", "TCP port (0 picks a free one)", parsePort, 0)
    .option("--host <address>", "listen address", "127.0.0.1")
    .option("--db <file>", "SQLite database file (default: in memory)")
    .option("--seed <n>", "seed for the bureau's keys", parseSeedOption, 1)
    .option("--ca-out <file>", "write the bureau's TLS root CA (PEM) here")
    .option("--master-key <hex>", "bureau master key for card keys (32 hex digits, the issuance profile's bureauMasterKey)", parseMasterKey)
    .option("--profile <file>", "register the taxpayer and device of this issuance profile (and take its bureauMasterKey)")
    .option("--device-serial <serial>", "the device serial to register with --profile")
    .addOption(new Option("--fault <name=value>", `fault switch, repeatable: ${Object.keys(NO_FAULTS).join(", ")}`).argParser(collectFault).default({ ...NO_FAULTS }, "none"))
    .action(async (options: { port: number; host: string; db?: string; seed: number; caOut?: string; masterKey?: Uint8Array; profile?: string; deviceSerial?: string; fault: BureauFaults }) => {
      if ((options.profile === undefined) !== (options.deviceSerial === undefined)) throw new Error("--profile and --device-serial go together");
      const profile: IssuanceProfile | undefined = options.profile ? parseProfile(readFileSync(options.profile, "utf8")) : undefined;
      const masterKey = options.masterKey ?? profile?.bureauMasterKey;
      const wallClock: Clock = { now: () => Date.now() };
      const running = await startBureau({
        port: options.port, host: options.host, dbPath: options.db ?? ":memory:", clock: wallClock, tlsClock: wallClock,
        rng: new Rng(options.seed), faults: options.fault, ...(masterKey ? { masterKey } : {}), onError: (error) => console.error("bureau: internal error:", error),
      });
      if (profile && options.deviceSerial) running.service.registerProfile(profile, options.deviceSerial);
      if (options.caOut) writeFileSync(options.caOut, running.caCertPem);
      console.log(JSON.stringify({ url: running.url, caFile: options.caOut ?? null, seed: options.seed, faults: running.faults() }));
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await running.stop();
    });
}
