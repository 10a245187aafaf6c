/** Small socket helpers shared by the TCP-based transports. */
import { connect, type Socket } from "node:net";
import { ChannelError } from "./channel.ts";

export const CONNECT_TIMEOUT_MS = 3000;

/** Connect with a timeout; a refused connection is UNAVAILABLE, a silent one TIMEOUT. */
export function connectTcp(host: string, port: number, timeoutMs = CONNECT_TIMEOUT_MS): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ChannelError("TIMEOUT", `connecting to ${host}:${port} took more than ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new ChannelError("UNAVAILABLE", `cannot connect to ${host}:${port}: ${error.code ?? error.message}`));
    });
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
