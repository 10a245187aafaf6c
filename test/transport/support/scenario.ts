/**
 * The APDU scenario every transport must carry unchanged: power on, select, PIN, short and
 * extended exchanges, errors as status words, power off. Until the COS is merged it runs
 * against TestCard.
 */
import { expect } from "vitest";
import type { ApduChannel } from "../../../src/transport/index.ts";
import { INS_ECHO, INS_GENERATE, INS_SELECT, INS_VERIFY, TEST_AID, TEST_PIN, hexOf, testAtr } from "./test-card.ts";

export function apdu(cla: number, ins: number, p1: number, p2: number, data?: Uint8Array, le?: number): Uint8Array {
  const body: number[] = [cla, ins, p1, p2];
  const extended = (data && data.length > 255) || (le !== undefined && le > 256);
  if (data && data.length) {
    if (extended) body.push(0, data.length >> 8, data.length & 0xff);
    else body.push(data.length);
    body.push(...data);
  }
  if (le !== undefined) {
    if (extended) {
      if (!data || !data.length) body.push(0);
      body.push((le >> 8) & 0xff, le & 0xff);
    } else body.push(le & 0xff);
  }
  return Uint8Array.from(body);
}

export function pattern(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + 11) & 0xff;
  return out;
}

export function generated(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + 3) & 0xff;
  return out;
}

const sw = (r: Uint8Array): string => hexOf(r.subarray(r.length - 2));
const data = (r: Uint8Array): string => hexOf(r.subarray(0, r.length - 2));

export async function runScenario(channel: ApduChannel, options: { extended?: boolean } = {}): Promise<void> {
  const atr = await channel.powerOn();
  expect(hexOf(atr)).toBe(hexOf(testAtr()));
  expect(sw(await channel.transmit(apdu(0x00, INS_SELECT, 0x04, 0x00, Uint8Array.of(0xa0, 0x00, 0x00, 0x00, 0x01))))).toBe("6a82");
  expect(sw(await channel.transmit(apdu(0x00, INS_SELECT, 0x04, 0x00, TEST_AID)))).toBe("9000");
  expect(sw(await channel.transmit(apdu(0x00, INS_VERIFY, 0x00, 0x01, Uint8Array.of(0x30, 0x30, 0x30, 0x30, 0x30, 0x30))))).toBe("63c2");
  expect(sw(await channel.transmit(apdu(0x00, INS_VERIFY, 0x00, 0x01, TEST_PIN)))).toBe("9000");
  const short = await channel.transmit(apdu(0x80, INS_ECHO, 0, 0, pattern(200), 0));
  expect(sw(short)).toBe("9000");
  expect(data(short)).toBe(hexOf(pattern(200)));
  expect(sw(await channel.transmit(Uint8Array.of(0x80, 0x77, 0, 0)))).toBe("6d00");
  if (options.extended !== false) {
    const big = await channel.transmit(apdu(0x80, INS_ECHO, 0, 0, pattern(3000), 65535));
    expect(sw(big)).toBe("9000");
    expect(data(big)).toBe(hexOf(pattern(3000)));
    const gen = await channel.transmit(apdu(0x80, INS_GENERATE, 0x04, 0x00, undefined, 1024));
    expect(data(gen)).toBe(hexOf(generated(1024)));
  }
  await channel.powerOff();
}
