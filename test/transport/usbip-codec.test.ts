import { describe, expect, it } from "vitest";
import { ByteQueue } from "../../src/transport/bytes.ts";
import * as U from "../../src/transport/usbip-codec.ts";
import { usbipDeviceRecord } from "../../src/transport/usbip-server.ts";
import { ChannelError } from "../../src/transport/index.ts";
import { bytesOf, hexOf } from "./support/test-card.ts";

const q = (hex: string): ByteQueue => {
  const queue = new ByteQueue();
  queue.push(bytesOf(hex));
  return queue;
};
const zeros = (n: number): string => "00".repeat(n);
const DEVID = 0x00010002;

describe("USB/IP operation messages (golden bytes)", () => {
  it("OP_REQ_DEVLIST", () => {
    expect(hexOf(U.encodeOpReqDevlist())).toBe("0111800500000000");
    expect(U.decodeOpRequest(q("0111800500000000"))).toEqual({ kind: "devlist" });
  });

  it("OP_REQ_IMPORT", () => {
    const golden = "0111800300000000" + "312d31" + zeros(29);
    expect(hexOf(U.encodeOpReqImport("1-1"))).toBe(golden);
    expect(U.decodeOpRequest(q(golden))).toEqual({ kind: "import", busid: "1-1" });
    expect(U.decodeOpRequest(q(golden.slice(0, 40 * 2 - 2)))).toBeUndefined(); // one byte short waits
  });

  const record = usbipDeviceRecord("1-1");
  const path = Buffer.from("/sys/devices/platform/ukeysim/usb1/1-1").toString("hex");
  const recordHex = path + zeros(256 - path.length / 2) + "312d31" + zeros(29) + "00000001" + "00000002" + "00000002" + "1209" + "0001" + "0100" + "000000" + "010101";

  it("OP_REP_DEVLIST: header, one 0x138-byte device record, one 4-byte interface entry (class 0b)", () => {
    const golden = "0111000500000000" + "00000001" + recordHex + "0b000000";
    const bytes = U.encodeOpRepDevlist([record]);
    expect(bytes.length).toBe(12 + 0x138 + 4);
    expect(hexOf(bytes)).toBe(golden);
    expect(U.decodeOpRepDevlist(q(golden))).toEqual([record]);
    expect(U.decodeOpRepDevlist(q(golden.slice(0, -2)))).toBeUndefined();
    expect(hexOf(U.encodeOpRepDevlist([]))).toBe("011100050000000000000000");
  });

  it("OP_REP_IMPORT: success carries the record without interfaces; failure is status 1", () => {
    const golden = "0111000300000000" + recordHex;
    expect(hexOf(U.encodeOpRepImport(record))).toBe(golden);
    expect(U.decodeOpRepImport(q(golden))).toEqual({ device: { ...record, interfaces: [] } });
    expect(hexOf(U.encodeOpRepImport(undefined))).toBe("0111000300000001");
    expect(U.decodeOpRepImport(q("0111000300000001"))).toEqual({ device: undefined });
  });

  it("rejects a wrong version and an unknown operation", () => {
    expect(() => U.decodeOpRequest(q("0110800500000000"))).toThrow(ChannelError);
    expect(() => U.decodeOpRequest(q("0111800400000000"))).toThrow(/unknown USB\/IP operation/);
  });
});

describe("USB/IP URB messages (golden bytes)", () => {
  const getDevice = "8006000100001200"; // GET_DESCRIPTOR(DEVICE), wLength 18, little-endian
  const cmdHex = "00000001" + "00000001" + "00010002" + "00000001" + "00000000" + "00000000" + "00000012" + "00000000" + "ffffffff" + "00000000" + getDevice;

  it("CMD_SUBMIT control IN with a little-endian setup packet", () => {
    const setup = { bmRequestType: 0x80, bRequest: 6, wValue: 0x0100, wIndex: 0, wLength: 18 };
    const bytes = U.encodeCmdSubmit({ seqnum: 1, devid: DEVID, direction: 1, ep: 0, transferFlags: 0, transferBufferLength: 18, startFrame: 0, numberOfPackets: U.NON_ISO_PACKETS, interval: 0, setup, data: new Uint8Array(0) });
    expect(hexOf(bytes)).toBe(cmdHex);
    const decoded = U.decodeCommand(q(cmdHex));
    expect(decoded).toMatchObject({ command: 1, seqnum: 1, devid: DEVID, direction: 1, ep: 0, transferBufferLength: 18, numberOfPackets: 0xffffffff, setup });
  });

  it("CMD_SUBMIT bulk OUT carries its payload", () => {
    const golden = "00000001" + "00000007" + "00010002" + "00000000" + "00000001" + "00000000" + "0000000a" + "00000000" + "00000000" + "00000000" + zeros(8) + "62000000000000000000";
    const bytes = U.encodeCmdSubmit({ seqnum: 7, devid: DEVID, direction: 0, ep: 1, transferFlags: 0, transferBufferLength: 10, startFrame: 0, numberOfPackets: 0, interval: 0, setup: U.NO_SETUP, data: bytesOf("62000000000000000000") });
    expect(hexOf(bytes)).toBe(golden);
    const decoded = U.decodeCommand(q(golden)) as U.CmdSubmit;
    expect(hexOf(decoded.data)).toBe("62000000000000000000");
    expect(U.decodeCommand(q(golden.slice(0, -2)))).toBeUndefined();
  });

  it("RET_SUBMIT with IN data; devid, direction and ep are zero from the server", () => {
    const descriptor = "120100020000004009120100000101020301";
    const golden = "00000003" + "00000001" + zeros(12) + "00000000" + "00000012" + "00000000" + "ffffffff" + "00000000" + zeros(8) + descriptor;
    const bytes = U.encodeRetSubmit({ seqnum: 1, status: 0, actualLength: 18, startFrame: 0, numberOfPackets: U.NON_ISO_PACKETS, errorCount: 0, data: bytesOf(descriptor) });
    expect(hexOf(bytes)).toBe(golden);
    const decoded = U.decodeReturn(q(golden), () => true) as U.RetSubmit;
    expect(decoded).toMatchObject({ command: 3, seqnum: 1, status: 0, actualLength: 18 });
    expect(hexOf(decoded.data)).toBe(descriptor);
    // The same header for an OUT transfer carries no data.
    const out = U.decodeReturn(q(golden.slice(0, 96)), () => false) as U.RetSubmit;
    expect(out.data.length).toBe(0);
  });

  it("RET_SUBMIT stall is status -EPIPE", () => {
    const bytes = U.encodeRetSubmit({ seqnum: 9, status: -U.ERRNO_EPIPE, actualLength: 0, startFrame: 0, numberOfPackets: 0, errorCount: 0, data: new Uint8Array(0) });
    expect(hexOf(bytes)).toBe("00000003" + "00000009" + zeros(12) + "ffffffe0" + zeros(24));
  });

  it("CMD_UNLINK and RET_UNLINK (-ECONNRESET)", () => {
    const unlink = "00000002" + "00000005" + "00010002" + "00000000" + "00000000" + "00000004" + zeros(24);
    expect(hexOf(U.encodeCmdUnlink({ seqnum: 5, devid: DEVID, direction: 0, ep: 0, unlinkSeqnum: 4 }))).toBe(unlink);
    expect(U.decodeCommand(q(unlink))).toEqual({ command: 2, seqnum: 5, devid: DEVID, direction: 0, ep: 0, unlinkSeqnum: 4 });
    const ret = "00000004" + "00000005" + zeros(12) + "ffffff98" + zeros(24);
    expect(hexOf(U.encodeRetUnlink({ seqnum: 5, status: -U.ERRNO_ECONNRESET }))).toBe(ret);
    expect(U.decodeReturn(q(ret), () => false)).toEqual({ command: 4, seqnum: 5, status: -104 });
  });

  it("ISO packet descriptors follow the payload", () => {
    const golden = "00000001" + "00000002" + "00010002" + "00000000" + "00000003" + "00000000" + "00000002" + "00000000" + "00000001" + "00000000" + zeros(8) + "abcd" + "00000000" + "00000002" + "00000000" + "00000000";
    const bytes = U.encodeCmdSubmit({ seqnum: 2, devid: DEVID, direction: 0, ep: 3, transferFlags: 0, transferBufferLength: 2, startFrame: 0, numberOfPackets: 1, interval: 0, setup: U.NO_SETUP, data: bytesOf("abcd"), iso: [{ offset: 0, length: 2, actualLength: 0, status: 0 }] });
    expect(hexOf(bytes)).toBe(golden);
    expect((U.decodeCommand(q(golden)) as U.CmdSubmit).iso).toEqual([{ offset: 0, length: 2, actualLength: 0, status: 0 }]);
  });

  it("rejects oversized transfers, bad directions and unknown commands at once", () => {
    const huge = "00000001" + "00000001" + "00010002" + "00000000" + "00000001" + "00000000" + "7fffffff" + zeros(20);
    expect(() => U.decodeCommand(q(huge))).toThrow(/exceeds/);
    const badDir = "00000001" + "00000001" + "00010002" + "00000002" + zeros(32);
    expect(() => U.decodeCommand(q(badDir))).toThrow(/direction/);
    expect(() => U.decodeCommand(q("00000009" + zeros(44)))).toThrow(/unknown/);
    expect(() => U.decodeReturn(q("00000001" + zeros(44)), () => true)).toThrow(/unknown/);
    const manyIso = "00000001" + "00000001" + "00010002" + "00000001" + "00000001" + "00000000" + "00000000" + "00000000" + "00100000" + zeros(12);
    expect(() => U.decodeCommand(q(manyIso))).toThrow(/number_of_packets/);
  });
});
