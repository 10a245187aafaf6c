import { describe, expect, it } from "vitest";
import { ByteQueue } from "../../src/transport/bytes.ts";
import * as C from "../../src/transport/ccid-codec.ts";
import * as D from "../../src/transport/usb-descriptors.ts";
import { bytesOf, hexOf } from "./support/test-card.ts";

const T1 = bytesOf("1110004d00fe00");

describe("CCID PC_to_RDR messages (golden bytes)", () => {
  const cases: [string, C.CcidMessage, string][] = [
    ["IccPowerOn", C.iccPowerOn(3), "62 00000000 00 03 000000"],
    ["IccPowerOn 3 V", C.iccPowerOn(3, 2), "62 00000000 00 03 020000"],
    ["IccPowerOff", C.iccPowerOff(4), "63 00000000 00 04 000000"],
    ["GetSlotStatus", C.getSlotStatus(5), "65 00000000 00 05 000000"],
    ["XfrBlock", C.xfrBlock(6, bytesOf("0084000008")), "6f 05000000 00 06 00 0000 0084000008"],
    ["XfrBlock chain begin", C.xfrBlock(7, bytesOf("aabb"), C.LEVEL_BEGIN_CONTINUES), "6f 02000000 00 07 00 0100 aabb"],
    ["XfrBlock empty continue", C.xfrBlock(8, new Uint8Array(0), C.LEVEL_EMPTY_CONTINUE), "6f 00000000 00 08 00 1000"],
    ["GetParameters", C.getParameters(8), "6c 00000000 00 08 000000"],
    ["ResetParameters", C.resetParameters(9), "6d 00000000 00 09 000000"],
    ["SetParameters T=1", C.setParameters(9, C.PROTOCOL_T1, T1), "61 07000000 00 09 01 0000 1110004d00fe00"],
    ["Escape", C.escape(10, bytesOf("0102")), "6b 02000000 00 0a 000000 0102"],
    ["Abort", C.abort(11), "72 00000000 00 0b 000000"],
  ];
  for (const [name, message, golden] of cases) {
    it(name, () => {
      const hex = golden.replace(/\s+/g, "");
      expect(hexOf(C.encodeCcid(message))).toBe(hex);
      expect(C.decodeCcid(bytesOf(hex))).toEqual({ ...message, data: new Uint8Array(message.data) });
    });
  }
});

describe("CCID RDR_to_PC messages (golden bytes)", () => {
  const cases: [string, C.CcidMessage, string][] = [
    ["DataBlock with ATR", C.dataBlock(3, 0, 0, bytesOf("3b0214")), "80 03000000 00 03 00 00 00 3b0214"],
    ["DataBlock time extension", C.dataBlock(6, C.COMMAND_STATUS_TIME_EXTENSION, 1), "80 00000000 00 06 80 01 00"],
    ["DataBlock card mute", C.dataBlock(6, C.COMMAND_STATUS_FAILED | C.ICC_STATUS_INACTIVE, C.ERR_ICC_MUTE), "80 00000000 00 06 41 fe 00"],
    ["DataBlock chained response", C.dataBlock(7, 0, 0, bytesOf("01"), C.LEVEL_BEGIN_CONTINUES), "80 01000000 00 07 00 00 01 01"],
    ["SlotStatus inactive", C.slotStatus(4, C.ICC_STATUS_INACTIVE, 0), "81 00000000 00 04 01 00 00"],
    ["SlotStatus slot busy", C.slotStatus(4, C.COMMAND_STATUS_FAILED, C.ERR_CMD_SLOT_BUSY), "81 00000000 00 04 40 e0 00"],
    ["Parameters T=1", C.parameters(8, 0, 0, C.PROTOCOL_T1, T1), "82 07000000 00 08 00 00 01 1110004d00fe00"],
    ["Escape not supported", C.escapeResponse(10, C.COMMAND_STATUS_FAILED, C.ERR_CMD_NOT_SUPPORTED), "83 00000000 00 0a 40 00 00"],
    ["DataRateAndClockFrequency", C.dataRateAndClock(12, 0, 0, bytesOf("fc0d000080250000")), "84 08000000 00 0c 00 00 00 fc0d000080250000"],
  ];
  for (const [name, message, golden] of cases) {
    it(name, () => {
      const hex = golden.replace(/\s+/g, "");
      expect(hexOf(C.encodeCcid(message))).toBe(hex);
      expect(C.decodeCcid(bytesOf(hex))).toEqual({ ...message, data: new Uint8Array(message.data) });
    });
  }

  it("NotifySlotChange on interrupt-IN", () => {
    expect(hexOf(C.encodeNotifySlotChange(true, true))).toBe("5003");
    expect(hexOf(C.encodeNotifySlotChange(false, true))).toBe("5002");
    expect(C.decodeNotifySlotChange(bytesOf("5001"))).toEqual({ present: true, changed: false });
    expect(() => C.decodeNotifySlotChange(bytesOf("51"))).toThrow();
  });
});

describe("CCID framing errors", () => {
  it("rejects short, inconsistent and oversized messages", () => {
    expect(() => C.decodeCcid(bytesOf("6f000000"))).toThrow(/shorter than its 10-byte header/);
    expect(() => C.decodeCcid(bytesOf("6f0500000000060000000084"))).toThrow(/dwLength 5 but 2/);
    expect(() => C.decodeCcid(bytesOf("6fffffffff0006000000"))).toThrow(/exceeds/);
  });

  it("frames a stream: waits for the whole message, then takes exactly one", () => {
    const queue = new ByteQueue();
    const two = bytesOf("6f0200000000060000 00aabb 650000000000070000 00".replace(/\s/g, ""));
    queue.push(two.subarray(0, 11));
    expect(C.takeCcid(queue)).toBeUndefined();
    queue.push(two.subarray(11));
    expect(C.takeCcid(queue)).toMatchObject({ type: 0x6f, seq: 6 });
    expect(C.takeCcid(queue)).toMatchObject({ type: 0x65, seq: 7 });
    expect(queue.length).toBe(0);
  });
});

describe("USB descriptors of the simulated Ukey (golden bytes)", () => {
  it("device descriptor: USB 2.0, class per interface, pid.codes test VID/PID", () => {
    expect(hexOf(D.deviceDescriptor())).toBe("120100020000004009120100000101020301");
  });

  it("configuration: one CCID interface, the 54-byte class descriptor, bulk-out, bulk-in, interrupt-in", () => {
    const golden = [
      "09025d00010100 8032",
      "090400000 30b000000",
      "3621 1001 00 07 03000000 fc0d0000 fc0d0000 01 80250000 80250000 01 fe000000 00000000 00000000 fe000400 12000100 ff ff 0000 00 01",
      "0705010240 0000",
      "0705820240 0000",
      "0705830308 0010",
    ].join("").replace(/\s+/g, "");
    const config = D.configurationDescriptor(C.CCID_MAX_MESSAGE_BYTES);
    expect(hexOf(config)).toBe(golden);
    expect(config.length).toBe(93);
    const iface = D.findCcidInterface(config);
    expect(iface).toMatchObject({ configurationValue: 1, interfaceNumber: 0, bulkOut: 0x01, bulkIn: 0x82, interruptIn: 0x83 });
    expect(iface.ccid).toMatchObject({ bcdCCID: 0x0110, dwFeatures: 0x000400fe, dwMaxCCIDMessageLength: 65554, dwMaxIFSD: 254 });
  });

  it("string descriptors", () => {
    expect(hexOf(D.stringDescriptor(undefined))).toBe("04030904");
    expect(hexOf(D.stringDescriptor("Uk"))).toBe("060355006b00");
    expect(D.decodeStringDescriptor(D.stringDescriptor("ukeysim"))).toBe("ukeysim");
  });

  it("refuses a configuration without a CCID interface and descriptors that overrun", () => {
    expect(() => D.findCcidInterface(bytesOf("09021200010100803209040000020800000000"))).toThrow(/no CCID interface/);
    expect(() => D.findCcidInterface(bytesOf("0902120001010080320904"))).toThrow();
    expect(() => D.findCcidInterface(bytesOf("09020c000101008032090400"))).toThrow(/bad length/);
  });
});
