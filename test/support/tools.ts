/**
 * Tests that need a system tool (pcscd, usbip, tshark, socat, openssl) call `needTool`.
 * Locally a missing tool skips the test with a printed reason; with CI=true it fails,
 * because CI installs every tool (scripts/install-system-deps.sh) and a skip there would
 * hide a broken install.
 */
import { spawnSync } from "node:child_process";

export const IN_CI = process.env.CI === "true" || process.env.CI === "1";

export function hasTool(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

/**
 * Returns true when every tool is present. When one is missing: in CI, throws (the test
 * fails); locally, prints why and returns false so the caller can `it.skipIf(!ok)`.
 */
export function needTools(...commands: string[]): boolean {
  const missing = commands.filter((c) => !hasTool(c));
  if (missing.length === 0) return true;
  const reason = `missing system tool(s): ${missing.join(", ")} (install with: bash scripts/install-system-deps.sh)`;
  if (IN_CI) throw new Error(`${reason}; CI must have them`);
  console.warn(`skipping: ${reason}`);
  return false;
}
