/**
 * Opening a serial port (real or pty) with @serialport/stream + @serialport/bindings-cpp.
 * The native binding loads on first use, so importing src/transport never depends on it.
 */
import type { AutoDetectTypes } from "@serialport/bindings-cpp";
import type { SerialPortStream } from "@serialport/stream";
import { ChannelError } from "./channel.ts";

export type SerialPort = SerialPortStream;

async function loadSerialport(): Promise<{ Stream: typeof SerialPortStream; binding: AutoDetectTypes }> {
  try {
    const [{ SerialPortStream: Stream }, { autoDetect }] = await Promise.all([import("@serialport/stream"), import("@serialport/bindings-cpp")]);
    return { Stream, binding: autoDetect() };
  } catch (error) {
    throw new ChannelError("UNAVAILABLE", `serial support (@serialport/bindings-cpp) cannot load: ${(error as Error).message}`);
  }
}

export async function openSerialPort(path: string, baudRate: number): Promise<SerialPort> {
  const { Stream, binding } = await loadSerialport();
  return new Promise((resolve, reject) => {
    let port: SerialPortStream;
    try {
      port = new Stream({ binding, path, baudRate, autoOpen: false });
    } catch (error) {
      reject(new ChannelError("BAD_TARGET", `serial port ${path}: ${(error as Error).message}`));
      return;
    }
    port.open((error) => {
      if (error) reject(new ChannelError("UNAVAILABLE", `cannot open serial port ${path}: ${error.message}`));
      else resolve(port);
    });
  });
}

export function closeSerialPort(port: SerialPort): Promise<void> {
  return new Promise((resolve) => {
    if (!port.isOpen) return resolve();
    port.close(() => resolve());
  });
}
