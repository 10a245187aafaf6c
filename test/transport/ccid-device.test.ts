/**
 * The CCID device model, byte for byte: each PC_to_RDR message in, the exact RDR_to_PC
 * bytes out (the other direction of the codec golden tests), plus endpoint-0 requests and
 * the interrupt endpoint.
 */
import { describe, expect, it } from "vitest";
import { CcidUsbDevice } from "../../src/transport/ccid-device.ts";
import { bytesOf, hexOf, testAtr, TestCard } from "./support/test-card.ts";

const ATR = hexOf(testAtr());
const SET_CONFIGURATION = { bmRequestType: 0x00, bRequest: 0x09, wValue: 1, wIndex: 0, wLength: 0 };

function device(options = {}): { dev: CcidUsbDevice; exchange: (hex: string) => string[]; card: TestCard } {
  const card = new TestCard();
  const dev = new CcidUsbDevice(card, options);
  dev.control(SET_CONFIGURATION);
  const exchange = (hex: string): string[] => {
    dev.bulkOut(bytesOf(hex.replace(/\s+/g, "")));
    const out: string[] = [];
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) ids.push(dev.submitIn(0x82, 65554, (d) => out.push(hexOf(d))));
    for (const id of ids) dev.cancelIn(id); // the ones nothing answered
    return out;
  };
  return { dev, exchange, card };
}

describe("CCID device: message in, exact message out", () => {
  it("IccPowerOn -> DataBlock with the ATR; GetSlotStatus active; IccPowerOff -> SlotStatus inactive", () => {
    const { exchange } = device();
    expect(exchange("62 00000000 00 01 00 0000")).toEqual([`80 ${(ATR.length / 2).toString(16).padStart(2, "0")}000000 00 01 00 00 00 ${ATR}`.replace(/\s+/g, "")]);
    expect(exchange("65 00000000 00 02 000000")).toEqual(["81000000000002000000"]);
    expect(exchange("63 00000000 00 03 000000")).toEqual(["81000000000003010000"]);
    expect(exchange("65 00000000 00 04 000000")).toEqual(["81000000000004010000"]);
  });

  it("XfrBlock: APDU in, response + SW out; unpowered -> mute (41 fe)", () => {
    const { exchange } = device();
    expect(exchange("6f 08000000 00 05 00 0000 80ee000002abcd00")).toEqual(["80000000000005" + "41fe00"]);
    exchange("62 00000000 00 06 00 0000");
    expect(exchange("6f 08000000 00 07 00 0000 80ee000002abcd00")).toEqual(["80040000000007000000" + "abcd9000"]);
  });

  it("XfrBlock command chaining (1, 3, 2) and a bad level parameter", () => {
    const { exchange } = device();
    exchange("62 00000000 00 01 00 0000");
    expect(exchange("6f 04000000 00 02 00 0100 80ee0000")).toEqual(["80000000000002000010"]);
    expect(exchange("6f 02000000 00 03 00 0300 0201")).toEqual(["80000000000003000010"]);
    expect(exchange("6f 02000000 00 04 00 0200 0200")).toEqual(["80040000000004000000" + "01029000"]); // 80ee0000 02 0102 00 echoed
    expect(exchange("6f 00000000 00 05 00 0700")).toEqual(["80000000000005400800"]);
  });

  it("a card that goes mute mid-command -> 41 fe, and stays unpowered", () => {
    const { exchange, card } = device();
    exchange("62 00000000 00 01 00 0000");
    expect(exchange("6f 04000000 00 02 00 0000 80dd0000")).toEqual(["80000000000002" + "41fe00"]);
    expect(card.powered).toBe(false);
    expect(exchange("65 00000000 00 03 000000")).toEqual(["81000000000003010000"]);
  });

  it("parameters: Get, Set T=1, Set with a bad length or protocol, Reset", () => {
    const { exchange } = device();
    expect(exchange("6c 00000000 00 01 000000")).toEqual(["82070000000001010001" + "1110004d00fe00"]);
    expect(exchange("61 07000000 00 02 01 0000 1813004d00fe00")).toEqual(["82070000000002010001" + "1813004d00fe00"]);
    expect(exchange("61 05000000 00 03 01 0000 1813004d00")).toEqual(["82000000000003410100"]);
    expect(exchange("61 05000000 00 04 07 0000 1813004d00")).toEqual(["82000000000004410700"]);
    expect(exchange("6d 00000000 00 05 000000")).toEqual(["82070000000005010001" + "1110004d00fe00"]);
  });

  it("unsupported commands get their own response type with 'command not supported'", () => {
    const { exchange } = device();
    expect(exchange("6b 01000000 00 01 000000 00")).toEqual(["83000000000001410000"]);
    expect(exchange("6e 00000000 00 02 000000")).toEqual(["81000000000002410000"]);
    expect(exchange("69 00000000 00 03 000000")).toEqual(["80000000000003410000"]);
    expect(exchange("73 08000000 00 04 000000 fc0d000080250000")).toEqual(["84000000000004410000"]);
    expect(exchange("99 00000000 00 05 000000")).toEqual(["81000000000005410000"]);
  });

  it("a wrong slot gets bError 5 with 'no ICC'; an oversized dwLength gets bError 1", () => {
    const { exchange } = device();
    expect(exchange("65 00000000 01 01 000000")).toEqual(["81000000000101420500"]);
    expect(exchange("6f ffffff00 00 02 00 0000")).toEqual(["80000000000002410100"]);
    expect(exchange("65 00000000 00 03 000000")).toEqual(["81000000000003010000"]); // and goes on
  });

  it("a slow card: slot busy for a second command, Abort ends the first with CMD_ABORTED", async () => {
    const { dev, exchange } = device({ cardLatencyMs: () => 10_000, timeExtensionIntervalMs: 5_000 });
    exchange("62 00000000 00 01 00 0000");
    expect(exchange("6f 05000000 00 02 00 0000 80ee000000")).toEqual([]);
    expect(exchange("65 00000000 00 03 000000")).toEqual(["81000000000003" + "40e000"]);
    expect(exchange("72 00000000 00 04 000000")).toEqual(["80000000000002" + "40ff00", "81000000000004000000"]);
    dev.reset();
  });

  it("time extensions (80 01) precede the answer", async () => {
    const { dev } = device({ cardLatencyMs: () => 120, timeExtensionIntervalMs: 50 });
    const out: string[] = [];
    const pull = () => dev.submitIn(0x82, 65554, (d) => {
      out.push(hexOf(d));
      pull();
    });
    pull();
    dev.bulkOut(bytesOf("62000000000001000000"));
    dev.bulkOut(bytesOf("6f0700000000020000008 0ee000001aa00".replace(/\s/g, "")));
    await new Promise((r) => setTimeout(r, 200));
    expect(out.slice(1)).toEqual(["80000000000002" + "800100", "80000000000002" + "800100", "80030000000002000000aa9000"]);
    dev.reset();
  });
});

describe("CCID device: endpoint 0 and the interrupt endpoint", () => {
  it("answers standard and class requests, truncating to wLength, and stalls the rest", () => {
    const dev = new CcidUsbDevice(new TestCard());
    const ctl = (bmRequestType: number, bRequest: number, wValue: number, wIndex: number, wLength: number) => {
      const r = dev.control({ bmRequestType, bRequest, wValue, wIndex, wLength });
      return r.stall ? "stall" : hexOf(r.data);
    };
    expect(ctl(0x80, 6, 0x0100, 0, 8)).toBe("1201000200000040");
    expect(ctl(0x80, 6, 0x0200, 0, 9)).toBe("09025d000101008032");
    expect(ctl(0x80, 6, 0x0300, 0, 255)).toBe("04030904");
    expect(ctl(0x80, 6, 0x0600, 0, 10)).toBe("stall"); // DEVICE_QUALIFIER: full speed only
    expect(ctl(0x80, 6, 0x0304, 0, 255)).toBe("stall");
    expect(ctl(0x80, 8, 0, 0, 1)).toBe("00");
    expect(ctl(0x00, 9, 2, 0, 0)).toBe("stall");
    expect(ctl(0x00, 9, 1, 0, 0)).toBe("");
    expect(ctl(0x80, 8, 0, 0, 1)).toBe("01");
    expect(ctl(0x80, 0, 0, 0, 2)).toBe("0000");
    expect(ctl(0x81, 10, 0, 0, 1)).toBe("00");
    expect(ctl(0x01, 11, 0, 0, 0)).toBe("");
    expect(ctl(0x01, 11, 1, 0, 0)).toBe("stall");
    expect(ctl(0x21, 1, 0x0100, 0, 0)).toBe(""); // ABORT
    expect(ctl(0xa1, 2, 0, 0, 4)).toBe("fc0d0000");
    expect(ctl(0xa1, 3, 0, 0, 4)).toBe("80250000");
    expect(ctl(0xa1, 9, 0, 0, 4)).toBe("stall");
    expect(ctl(0xc0, 1, 0, 0, 4)).toBe("stall"); // vendor
  });

  it("NotifySlotChange 50 03 after SET_CONFIGURATION; an IN request waits until cancelled", () => {
    const dev = new CcidUsbDevice(new TestCard());
    const got: string[] = [];
    const first = dev.submitIn(0x83, 8, (d) => got.push(hexOf(d)));
    expect(got).toEqual([]);
    dev.control(SET_CONFIGURATION);
    expect(got).toEqual(["5003"]);
    const waiting = dev.submitIn(0x83, 8, (d) => got.push(hexOf(d)));
    expect(dev.cancelIn(waiting)).toBe(true);
    expect(dev.cancelIn(waiting)).toBe(false);
    expect(dev.cancelIn(first)).toBe(false);
  });

  it("a bulk-IN request shorter than the message gets it in pieces", () => {
    const { dev } = device();
    dev.bulkOut(bytesOf("62000000000001000000"));
    const parts: string[] = [];
    for (let i = 0; i < 3; i++) dev.submitIn(0x82, 10, (d) => parts.push(hexOf(d)));
    expect(parts.join("")).toBe(`80${(ATR.length / 2).toString(16).padStart(2, "0")}000000000100 0000${ATR}`.replace(/\s/g, ""));
    expect(parts[0]?.length).toBe(20);
  });
});

describe("CCID device: bounded memory", () => {
  it("drops commands while too many answers are unread, then serves again", async () => {
    const { MAX_UNREAD_ANSWERS } = await import("../../src/transport/ccid-device.ts");
    const dev = new CcidUsbDevice(new TestCard());
    dev.control(SET_CONFIGURATION);
    for (let i = 0; i < MAX_UNREAD_ANSWERS + 10; i++) dev.bulkOut(bytesOf(`6500000000${(i & 0xff).toString(16).padStart(2, "0")}00000000`.slice(0, 20)));
    expect(dev.droppedCommands).toBe(10);
    const got: string[] = [];
    for (let i = 0; i < MAX_UNREAD_ANSWERS; i++) dev.submitIn(0x82, 64, (d) => got.push(hexOf(d)));
    expect(got).toHaveLength(MAX_UNREAD_ANSWERS);
    dev.bulkOut(bytesOf("65000000000063000000"));
    dev.submitIn(0x82, 64, (d) => got.push(hexOf(d)));
    expect(got.at(-1)).toBe("81000000000063010000");
  });
});
