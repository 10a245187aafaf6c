/** Every fault switch, as a client on the other end of the wire observes it. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect as tlsConnect } from "node:tls";
import type { Bureau } from "../../src/bureau/index.ts";
import type { VirtualClock } from "../../src/sim/index.ts";
import { boot, call, START } from "./fixture.ts";

let bureau: Bureau;
let clock: VirtualClock;

beforeAll(async () => {
  ({ bureau, clock } = await boot());
});
afterAll(async () => bureau.stop());

async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
  return "NO_ERROR";
}

/** The certificate chain the server presents, as subject CNs, leaf first. */
function presentedChain(b: Bureau): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: b.host, port: b.port, rejectUnauthorized: false }, () => {
      const names: string[] = [];
      let cert = socket.getPeerCertificate(true);
      const seen = new Set<string>();
      while (cert && cert.subject && !seen.has(cert.fingerprint256)) {
        seen.add(cert.fingerprint256);
        names.push(String(cert.subject.CN));
        cert = cert.issuerCertificate;
      }
      socket.destroy();
      resolve(names);
    });
    socket.on("error", reject);
  });
}

describe("fault switches", () => {
  it("with no faults the client trusting the bureau's CA gets through", async () => {
    expect(bureau.faults()).toMatchObject({ refuseConnections: false, http502: false, interception: false, serverCertificate: "valid" });
    expect((await call(bureau, "/api/v1/health")).status).toBe(200);
    expect(await presentedChain(bureau)).toEqual(["localhost", "ukeysim Bureau TLS Intermediate CA"]);
  });

  it("refuseConnections: ECONNREFUSED until cleared, on the same port", async () => {
    await bureau.setFaults({ refuseConnections: true });
    expect(await failure(call(bureau, "/api/v1/health"))).toBe("ECONNREFUSED");
    await bureau.setFaults({ refuseConnections: false });
    expect((await call(bureau, "/api/v1/health")).status).toBe(200);
  });

  it("http502: every service call is a 502 JSON error; admin still answers and clears it", async () => {
    const set = await call(bureau, "/api/v1/admin/faults", { json: { http502: true } });
    expect(set.json.http502).toBe(true);
    const reply = await call(bureau, "/api/v1/health");
    expect(reply.status).toBe(502);
    expect(reply.json.code).toBe("BAD_GATEWAY");
    expect((await call(bureau, "/api/v1/admin/faults", { json: { http502: false } })).status).toBe(200);
    expect((await call(bureau, "/api/v1/health")).status).toBe(200);
  });

  it("delayMs: responses are held back", async () => {
    await bureau.setFaults({ delayMs: 400 });
    const start = performance.now();
    expect((await call(bureau, "/api/v1/time")).status).toBe(200);
    expect(performance.now() - start).toBeGreaterThanOrEqual(380);
    await bureau.setFaults({ delayMs: 0 });
    const quick = performance.now();
    await call(bureau, "/api/v1/time");
    expect(performance.now() - quick).toBeLessThan(380);
  });

  it("serverCertificate expired: the client refuses with CERT_HAS_EXPIRED", async () => {
    await bureau.setFaults({ serverCertificate: "expired" });
    expect(await failure(call(bureau, "/api/v1/health"))).toBe("CERT_HAS_EXPIRED");
    await bureau.setFaults({ serverCertificate: "valid" });
  });

  it("serverCertificate wrong-host: the client refuses with ERR_TLS_CERT_ALTNAME_INVALID", async () => {
    await bureau.setFaults({ serverCertificate: "wrong-host" });
    expect(await failure(call(bureau, "/api/v1/health"))).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
    await bureau.setFaults({ serverCertificate: "valid" });
  });

  it("missingIntermediate: the leaf alone cannot be verified; a client holding the intermediate succeeds", async () => {
    await bureau.setFaults({ missingIntermediate: true });
    expect(await presentedChain(bureau)).toEqual(["localhost"]);
    expect(await failure(call(bureau, "/api/v1/health"))).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    const withIntermediate = await call(bureau, "/api/v1/health", { ca: [bureau.caCertPem, bureau.tls.intermediatePem] });
    expect(withIntermediate.status).toBe(200);
    await bureau.setFaults({ missingIntermediate: false });
  });

  it("interception: an SSL-inspection proxy with its own CA; the bureau's CA sees an unknown issuer", async () => {
    await bureau.setFaults({ interception: true });
    expect(await presentedChain(bureau)).toEqual(["localhost", "Corporate SSL Inspection CA"]);
    expect(await failure(call(bureau, "/api/v1/health"))).toBe("SELF_SIGNED_CERT_IN_CHAIN");
    // A host whose administrator installed the inspection CA gets through the proxy to the real bureau.
    const through = await call(bureau, "/api/v1/time", { ca: bureau.interceptionCaPem });
    expect(through.status).toBe(200);
    expect(through.json.serverTime).toBe(clock.now());
    expect(through.headers.via).toMatch(/ssl-inspection/);
    await bureau.setFaults({ interception: false });
    expect((await call(bureau, "/api/v1/health")).headers.via).toBeUndefined();
  });

  it("clockSkewMs: the bureau's time is offset, and so is its judgement of client clocks", async () => {
    await call(bureau, "/api/v1/admin/faults", { json: { clockSkewMs: 10 * 60_000 } });
    const time = await call(bureau, "/api/v1/time");
    expect(time.json.serverTime - clock.now()).toBe(10 * 60_000);
    expect(time.json.serverTime).toBeGreaterThanOrEqual(START + 10 * 60_000);
    await bureau.setFaults({ clockSkewMs: 0 });
    expect((await call(bureau, "/api/v1/time")).json.serverTime).toBe(clock.now());
  });

  it("faults set at construction apply from the first connection", async () => {
    const other = await boot({ http502: true, serverCertificate: "expired" }, 3);
    try {
      expect(await failure(call(other.bureau, "/api/v1/health"))).toBe("CERT_HAS_EXPIRED");
      await other.bureau.setFaults({ serverCertificate: "valid" });
      expect((await call(other.bureau, "/api/v1/health")).status).toBe(502);
    } finally {
      await other.bureau.stop();
    }
  });

  it("bad fault input is refused and changes nothing", async () => {
    const before = bureau.faults();
    await expect(bureau.setFaults({ delayMs: -1 })).rejects.toThrow(/delayMs/);
    await expect(bureau.setFaults({ serverCertificate: "self-signed" as never })).rejects.toThrow(/serverCertificate/);
    const reply = await call(bureau, "/api/v1/admin/faults", { json: { delayMs: 1e9 } });
    expect(reply.status).toBe(400);
    expect(reply.json.code).toBe("BAD_FAULTS");
    expect(bureau.faults()).toEqual(before);
  });
});
