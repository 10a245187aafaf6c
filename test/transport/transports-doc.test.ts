/** docs/transports.md says what the code does: checked here. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { quickAckRouteCommand, serialWire as F, usbDescriptors as D, ccidWire as C, VPCD_PORT_DEFAULT } from "../../src/transport/index.ts";
import { hexOf } from "./support/test-card.ts";
import { TSHARK_DECODE_AS } from "./support/tshark.ts";

const DOC = readFileSync(new URL("../../docs/transports.md", import.meta.url), "utf8");
const CODES = ["NO_CARD", "TIMEOUT", "DISCONNECTED", "PROTOCOL", "UNAVAILABLE", "BAD_TARGET"];

describe("docs/transports.md", () => {
  it("lists every ChannelError code", () => {
    for (const code of CODES) expect(DOC).toContain(`| \`${code}\` |`);
  });

  it("serial: every frame type in the table has the code's value", () => {
    const types: Record<string, number> = {
      APDU: F.TYPE_APDU, POWER_ON: F.TYPE_POWER_ON, POWER_OFF: F.TYPE_POWER_OFF, RESET: F.TYPE_RESET,
      RESPONSE: F.TYPE_RESPONSE, ATR: F.TYPE_ATR, ACK: F.TYPE_ACK, ERROR: F.TYPE_ERROR,
    };
    for (const [name, value] of Object.entries(types)) {
      expect(DOC).toContain(`| 0x${value.toString(16).toUpperCase().padStart(2, "0")} ${name} |`);
    }
    expect(DOC).toContain(`0x01 card mute`);
    expect(F.ERROR_CARD_MUTE).toBe(0x01);
    expect(DOC).toContain(`0x02 not powered`);
    expect(F.ERROR_NOT_POWERED).toBe(0x02);
    expect(DOC).toContain(`0x03 bad frame`);
    expect(F.ERROR_BAD_FRAME).toBe(0x03);
    expect(DOC).toContain(`0x04 unknown type`);
    expect(F.ERROR_UNKNOWN_TYPE).toBe(0x04);
  });

  it("serial: the example frame, SOF, check values and timeouts", () => {
    const example = /POWER_ON\s+with SEQ 0x2A is `([0-9A-F ]+)`/.exec(DOC)?.[1];
    expect(example?.replace(/ /g, "").toLowerCase()).toBe(hexOf(F.encodeSerialFrame({ seq: 0x2a, type: F.TYPE_POWER_ON, payload: new Uint8Array(0) })));
    expect(DOC).toContain("| 0 | 2 | SOF | `A5 5A` |");
    expect([F.SERIAL_SOF0, F.SERIAL_SOF1]).toEqual([0xa5, 0x5a]);
    expect(DOC).toContain(`CRC-8("123456789") = 0x${F.crc8(new TextEncoder().encode("123456789")).toString(16).toUpperCase()}`);
    expect(DOC).toContain(`CRC-16("123456789") = 0x${F.crc16(new TextEncoder().encode("123456789")).toString(16).toUpperCase()}`);
    expect(DOC).toContain(`inter-byte timeout (${F.INTER_BYTE_TIMEOUT_MS} ms)`);
    expect(DOC).toContain(`Default ${F.DEFAULT_BAUD_RATE} baud`);
  });

  it("USB: VID:PID, dwFeatures, message length and endpoints", () => {
    expect(DOC).toContain(`VID:PID **${D.UKEY_VENDOR_ID.toString(16)}:${D.UKEY_PRODUCT_ID.toString(16).padStart(4, "0")}**`);
    expect(DOC).toContain(`dwFeatures 0x${(D.CCID_FEATURE_AUTO_CONFIG | D.CCID_FEATURE_LEVEL_EXTENDED_APDU).toString(16).toUpperCase().padStart(8, "0")}`);
    expect(DOC).toContain(`dwMaxCCIDMessageLength ${C.CCID_MAX_MESSAGE_BYTES}`);
    expect(DOC).toContain(`bulk-OUT 0x${D.UKEY_BULK_OUT_EP.toString(16).padStart(2, "0")}, bulk-IN 0x${D.UKEY_BULK_IN_EP.toString(16)}`);
    expect(DOC).toContain(`interrupt-IN 0x${D.UKEY_INTERRUPT_IN_EP.toString(16)}`);
  });

  it("vpcd: the default port and the quickack command", () => {
    expect(DOC).toContain(`CHANNELID = ${VPCD_PORT_DEFAULT}`);
    expect(DOC).toContain(`sudo ${quickAckRouteCommand().join(" ")}`);
  });

  it("tshark: the decode-as options the capture test uses", () => {
    expect(DOC.replace(/\\\n\s*/g, "")).toContain(TSHARK_DECODE_AS.join(" "));
  });
});
