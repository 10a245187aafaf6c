/**
 * diagnose: a healthy setup passes every check; each failure class the bureau's fault
 * switches produce (and the Ukey-side conditions) is reported by the right check with the
 * right cause.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VirtualClock } from "../../src/sim/index.ts";
import { ChannelError, type ApduChannel } from "../../src/transport/index.ts";
import { runDiagnosis, type CheckId, type Diagnosis } from "../../src/host/index.ts";
import { newRig, PROFILE, type Rig } from "./support/rig.ts";

let rig: Rig;
beforeAll(async () => {
  rig = await newRig();
});
afterAll(async () => {
  await rig.stop();
});

function diagnose(over: Partial<Parameters<typeof runDiagnosis>[0]> = {}): Promise<Diagnosis> {
  return runDiagnosis({ channel: rig.channel, serverUrl: rig.bureau.url, caPem: rig.bureau.caCertPem, clock: rig.clock, db: rig.db, timeoutMs: 1500, ...over });
}

function check(d: Diagnosis, id: CheckId) {
  const c = d.checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id}`);
  return c;
}

async function withFaults<T>(faults: Parameters<Rig["bureau"]["setFaults"]>[0], f: () => Promise<T>): Promise<T> {
  await rig.bureau.setFaults(faults);
  try {
    return await f();
  } finally {
    await rig.bureau.setFaults({ refuseConnections: false, http502: false, delayMs: 0, serverCertificate: "valid", missingIntermediate: false, interception: false, clockSkewMs: 0, crlPublicationStopped: false });
  }
}

describe("diagnose", () => {
  it("a healthy setup passes every check, in the article's order", async () => {
    const d = await diagnose({ pin: PROFILE.userPin });
    expect(d.checks.map((c) => c.id)).toEqual([
      "ukey.present", "ukey.pin", "ukey.health", "ukey.key_usage", "cert.validity", "cert.chain", "clock.skew", "net.dns", "net.tcp", "net.tls", "http.health", "uploads.pending",
    ]);
    expect(d.checks.filter((c) => c.status !== "PASS").map((c) => `${c.id}: ${c.status} ${c.cause}`)).toEqual([]);
    expect(d.ok).toBe(true);
    // reading the PIN state spent no try
    expect((await rig.client.getDeviceInfo()).userPinTries).toBe(6);
  });

  it("DNS: localhost resolves through node:dns and passes; an unknown name fails net.dns and skips the rest of the network", async () => {
    const local = await diagnose({ serverUrl: rig.bureau.url.replace("127.0.0.1", "localhost") });
    expect(check(local, "net.dns")).toMatchObject({ status: "PASS" });
    expect(check(local, "net.tls").status).toBe("PASS");
    const unknown = await diagnose({ serverUrl: "https://no-such-host.invalid:443" });
    expect(check(unknown, "net.dns").status).toBe("FAIL");
    expect(check(unknown, "net.dns").cause).toContain("no-such-host.invalid does not resolve");
    expect(check(unknown, "net.tcp").status).toBe("SKIP");
    expect(check(unknown, "cert.chain").status).toBe("SKIP");
  });

  it("connection refused -> net.tcp", async () => {
    const d = await withFaults({ refuseConnections: true }, () => diagnose());
    expect(check(d, "net.dns").status).toBe("PASS");
    expect(check(d, "net.tcp")).toMatchObject({ status: "FAIL" });
    expect(check(d, "net.tcp").cause).toContain("ECONNREFUSED");
    expect(check(d, "net.tls").status).toBe("SKIP");
    expect(d.ok).toBe(false);
  });

  it("502 under load -> http.health", async () => {
    const d = await withFaults({ http502: true }, () => diagnose());
    expect(check(d, "net.tls").status).toBe("PASS");
    expect(check(d, "http.health").status).toBe("FAIL");
    expect(check(d, "http.health").cause).toContain("502");
    expect(check(d, "cert.chain").status).toBe("SKIP");
    expect(check(d, "ukey.present").status).toBe("PASS");
  });

  it("slow server -> http.health timeout", async () => {
    const d = await withFaults({ delayMs: 3000 }, () => diagnose({ timeoutMs: 500 }));
    expect(check(d, "http.health").status).toBe("FAIL");
    expect(check(d, "http.health").cause).toMatch(/slow|within/);
  });

  it("expired server certificate -> net.tls expired", async () => {
    const d = await withFaults({ serverCertificate: "expired" }, () => diagnose());
    expect(check(d, "net.tls").status).toBe("FAIL");
    expect(check(d, "net.tls").cause).toContain("expired");
    expect(check(d, "net.tls").detail?.code).toBe("CERT_HAS_EXPIRED");
  });

  it("wrong-host server certificate -> net.tls another host", async () => {
    const d = await withFaults({ serverCertificate: "wrong-host" }, () => diagnose());
    expect(check(d, "net.tls").cause).toContain("another host");
    expect(check(d, "net.tls").cause).toContain("wrong-host.invalid");
  });

  it("missing intermediate -> net.tls incomplete chain", async () => {
    const d = await withFaults({ missingIntermediate: true }, () => diagnose());
    expect(check(d, "net.tls").status).toBe("FAIL");
    expect(check(d, "net.tls").cause).toContain("without the intermediate");
  });

  it("SSL deep inspection -> net.tls interception, naming the proxy's CA", async () => {
    const d = await withFaults({ interception: true }, () => diagnose());
    expect(check(d, "net.tls").status).toBe("FAIL");
    expect(check(d, "net.tls").cause).toContain("interception");
    expect(check(d, "net.tls").cause).toContain("Corporate SSL Inspection CA");
    expect(check(d, "http.health").status).toBe("SKIP");
  });

  it("server clock skew -> clock.skew", async () => {
    const d = await withFaults({ clockSkewMs: 10 * 60_000 }, () => diagnose());
    expect(check(d, "clock.skew").status).toBe("FAIL");
    expect(check(d, "clock.skew").cause).toMatch(/host clock is 600 s behind the server/);
  });

  it("host clock off -> clock.skew names the host clock", async () => {
    const hostClock = new VirtualClock(rig.clock.now() + 3600_000);
    const d = await diagnose({ clock: hostClock });
    expect(check(d, "clock.skew").status).toBe("FAIL");
    expect(check(d, "clock.skew").cause).toContain("host clock is 3600 s ahead");
    expect(check(d, "clock.skew").fix).toContain("NTP");
  });

  it("CRL not re-published for over a day -> cert.chain CRL_STALE", async () => {
    const d = await withFaults({ crlPublicationStopped: true }, async () => {
      const start = rig.clock.now();
      rig.clock.advance(25 * 3600_000);
      try {
        return await diagnose({ clock: rig.clock });
      } finally {
        rig.clock.set(start);
      }
    });
    expect(check(d, "cert.chain").status).toBe("FAIL");
    expect(check(d, "cert.chain").detail?.reason).toBe("CRL_STALE");
  });

  it("no Ukey -> ukey.present not found; garbage answers -> comm error", async () => {
    const absent: ApduChannel = {
      target: "sim:absent",
      powerOn: async () => { throw new ChannelError("NO_CARD", "no card in the reader"); },
      transmit: async () => { throw new ChannelError("NO_CARD", "no card"); },
      powerOff: async () => {},
      close: async () => {},
    };
    const d = await diagnose({ channel: absent });
    expect(check(d, "ukey.present").status).toBe("FAIL");
    expect(check(d, "ukey.present").cause).toContain("TYUKEY_DEVICE_NOT_FOUND");
    expect(check(d, "ukey.pin").status).toBe("SKIP");
    expect(check(d, "net.tls").status).toBe("PASS");
    const garbage: ApduChannel = { ...absent, powerOn: async () => Uint8Array.of(0x3b), transmit: async () => Uint8Array.of(0x90) };
    const g = await diagnose({ channel: garbage });
    expect(check(g, "ukey.present").cause).toContain("TYUKEY_DEVICE_COMM_ERROR");
  });
});

describe("diagnose, Ukey-side conditions", () => {
  it("revoked device certificate -> cert.chain REVOKED", async () => {
    const r = await newRig();
    try {
      const serial = (await import("../../src/crypto/index.ts")).parseCertificate(await r.client.readCert(0)).serial;
      r.bureau.service.revoke({ serial });
      const d = await runDiagnosis({ channel: r.channel, serverUrl: r.bureau.url, caPem: r.bureau.caCertPem, clock: r.clock });
      expect(check(d, "cert.chain").detail?.reason).toBe("REVOKED");
      expect(check(d, "cert.chain").fix).toContain("revoked");
    } finally {
      await r.stop();
    }
  });

  it("expired device certificate -> cert.validity; locked PIN -> ukey.pin; pending uploads -> warn", async () => {
    const r = await newRig({ cert: { notAfter: 1_767_225_600_000 + 10 * 86_400_000 } });
    try {
      const { input } = await import("./support/rig.ts");
      await r.issuer.issue(input());
      const soon = await runDiagnosis({ channel: r.channel, serverUrl: r.bureau.url, caPem: r.bureau.caCertPem, clock: r.clock, pin: PROFILE.userPin });
      expect(check(soon, "cert.validity").status).toBe("WARN");
      expect(check(soon, "uploads.pending").status).toBe("WARN");
      expect(check(soon, "uploads.pending").detail?.pending).toBe(1);
      r.clock.advance(11 * 86_400_000);
      for (let i = 0; i < 6; i++) await r.client.verifyPin("99999999").catch(() => undefined);
      const d = await runDiagnosis({ channel: r.channel, serverUrl: r.bureau.url, caPem: r.bureau.caCertPem, clock: r.clock });
      expect(check(d, "cert.validity").status).toBe("FAIL");
      expect(check(d, "cert.validity").cause).toContain("expired");
      expect(check(d, "ukey.pin").status).toBe("FAIL");
      expect(check(d, "ukey.pin").cause).toContain("locked");
    } finally {
      await r.stop();
    }
  });

  it("key used 1,000,000 times -> ukey.key_usage; secure clock battery exhausted -> ukey.health (device info as a Ukey would report it)", async () => {
    const { DEVICE_INFO_LAYOUT, decodeLayout, encodeLayout, INS } = await import("../../src/tax/index.ts");
    const rewrite = (over: Record<string, number>): ApduChannel => ({
      target: "sim:rewritten", powerOn: () => rig.channel.powerOn(), powerOff: () => rig.channel.powerOff(), close: async () => {},
      transmit: async (apdu) => {
        const r = await rig.channel.transmit(apdu);
        if (apdu[1] !== INS.GET_DEVICE_INFO || r.length !== DEVICE_INFO_LAYOUT.recordLength + 2) return r;
        const info = { ...decodeLayout(DEVICE_INFO_LAYOUT, r.subarray(0, DEVICE_INFO_LAYOUT.recordLength)), ...over };
        return Uint8Array.from([...encodeLayout(DEVICE_INFO_LAYOUT, info), 0x90, 0x00]);
      },
    });
    const worn = await diagnose({ channel: rewrite({ signCount: 1_000_000 }) });
    expect(check(worn, "ukey.key_usage")).toMatchObject({ status: "FAIL" });
    expect(check(worn, "ukey.key_usage").cause).toContain("TYUKEY_DEVICE_KEY_EXPIRED");
    expect(check(worn, "ukey.key_usage").fix).toContain("renew");
    const nearly = await diagnose({ channel: rewrite({ signCount: 950_000 }) });
    expect(check(nearly, "ukey.key_usage").status).toBe("WARN");
    const flat = await diagnose({ channel: rewrite({ clockState: 2, batteryDaysLeft: 0 }) });
    expect(check(flat, "ukey.health").status).toBe("FAIL");
    expect(check(flat, "ukey.health").cause).toContain("battery exhausted");
  });
});
