/**
 * Fault switches of the test bureau: the server-side causes of "invoicing software cannot
 * connect to the server" from the troubleshooting article, each one observable by a client.
 */

export type ServerCertificateFault = "valid" | "expired" | "wrong-host";

export interface BureauFaults {
  /** Close the listening socket: clients get ECONNREFUSED (firewall / service down). */
  refuseConnections: boolean;
  /** Answer every API request with HTTP 502 (overloaded gateway behind the load balancer). */
  http502: boolean;
  /** Hold every response this long before answering (peak-hour latency). */
  delayMs: number;
  /** Which TLS server certificate to present. */
  serverCertificate: ServerCertificateFault;
  /** Present the TLS leaf without its intermediate CA certificate. */
  missingIntermediate: boolean;
  /** Put a TLS-intercepting proxy ("SSL deep inspection") with its own CA in front of the server. */
  interception: boolean;
  /** Offset of the bureau's clock from the injected clock (server clock skew), ms. */
  clockSkewMs: number;
  /** Stop re-publishing the CRL, so it goes stale after its nextUpdate (publication delay > 24 h). */
  crlPublicationStopped: boolean;
}

export const NO_FAULTS: Readonly<BureauFaults> = Object.freeze({
  refuseConnections: false,
  http502: false,
  delayMs: 0,
  serverCertificate: "valid",
  missingIntermediate: false,
  interception: false,
  clockSkewMs: 0,
  crlPublicationStopped: false,
});

/** Longest response delay a switch may ask for: tests and demos, not a denial of service. */
export const MAX_FAULT_DELAY_MS = 120_000;
/** Largest clock skew: ten years either way. */
export const MAX_CLOCK_SKEW_MS = 10 * 365 * 86_400_000;

export class FaultError extends Error {
  readonly code = "BAD_FAULTS";
}

const BOOLEAN_KEYS = ["refuseConnections", "http502", "missingIntermediate", "interception", "crlPublicationStopped"] as const;
const CERTIFICATE_VALUES: readonly ServerCertificateFault[] = ["valid", "expired", "wrong-host"];

/**
 * Validates a partial fault set (from an option or an HTTP body) and merges it over `base`.
 * Throws FaultError naming the first bad field; unknown fields are errors too.
 */
export function mergeFaults(base: Readonly<BureauFaults>, patch: unknown): BureauFaults {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) throw new FaultError("faults must be a JSON object");
  const out: BureauFaults = { ...base };
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if ((BOOLEAN_KEYS as readonly string[]).includes(key)) {
      if (typeof value !== "boolean") throw new FaultError(`fault ${key} must be true or false`);
      (out as unknown as Record<string, unknown>)[key] = value;
    } else if (key === "delayMs") {
      out.delayMs = integerIn(value, key, 0, MAX_FAULT_DELAY_MS);
    } else if (key === "clockSkewMs") {
      out.clockSkewMs = integerIn(value, key, -MAX_CLOCK_SKEW_MS, MAX_CLOCK_SKEW_MS);
    } else if (key === "serverCertificate") {
      if (!CERTIFICATE_VALUES.includes(value as ServerCertificateFault)) throw new FaultError(`fault serverCertificate must be one of ${CERTIFICATE_VALUES.join(", ")}`);
      out.serverCertificate = value as ServerCertificateFault;
    } else {
      throw new FaultError(`unknown fault "${key}"; known: ${Object.keys(NO_FAULTS).join(", ")}`);
    }
  }
  return out;
}

function integerIn(value: unknown, key: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new FaultError(`fault ${key} must be an integer in [${min}, ${max}]`);
  }
  return value;
}
