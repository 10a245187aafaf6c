/** A connected pseudo-terminal pair from socat, as a null-modem cable for serial tests. */
import { spawn, type ChildProcess } from "node:child_process";

export interface PtyPair {
  a: string;
  b: string;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 5000;

export function startPtyPair(): Promise<PtyPair> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn("socat", ["-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"], { stdio: ["ignore", "ignore", "pipe"] });
    let text = "";
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`socat gave no ptys: ${text}`));
    }, START_TIMEOUT_MS);
    child.stderr?.on("data", (d: Buffer) => {
      text += d.toString();
      const ptys = [...text.matchAll(/PTY is (\/dev\/pts\/\d+)/g)].map((m) => m[1] as string);
      if (ptys.length === 2 && text.includes("starting data transfer loop")) {
        clearTimeout(timer);
        resolve({
          a: ptys[0] as string,
          b: ptys[1] as string,
          stop: () => new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            child.once("exit", () => done());
            child.kill("SIGTERM");
          }),
        });
      }
    });
  });
}
