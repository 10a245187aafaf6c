/** Opening a serial port (real or pty) with @serialport/stream + @serialport/bindings-cpp. */
import { autoDetect } from "@serialport/bindings-cpp";
import { SerialPortStream } from "@serialport/stream";
import { ChannelError } from "./channel.ts";

export type SerialPort = SerialPortStream;

export function openSerialPort(path: string, baudRate: number): Promise<SerialPort> {
  return new Promise((resolve, reject) => {
    let port: SerialPortStream;
    try {
      port = new SerialPortStream({ binding: autoDetect(), path, baudRate, autoOpen: false });
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
