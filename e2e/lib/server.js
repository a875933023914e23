// Starts the real server on a free port with a fresh data directory and reads what it prints:
// the owner's email and password on first start, then `listening on http://ADDR`.
//
// It runs `ciclo serve` from target/debug/ciclo, or the binary CICLO_E2E_BIN names.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { targetDir } from "./paths.js";

export const OWNER_PASSWORD = "e2e correct horse battery";

export async function startServer() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ciclo-e2e-"));
  const bin = process.env.CICLO_E2E_BIN || path.join(targetDir, "debug", "ciclo");
  if (!fs.existsSync(bin)) {
    throw new Error(`no server binary at ${bin}: run \`npm --prefix e2e test\` (its pretest builds it) or set CICLO_E2E_BIN`);
  }
  const child = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    env: { ...process.env, CICLO_OWNER_PASSWORD: OWNER_PASSWORD },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let errors = "";
  child.stderr.on("data", (chunk) => {
    errors += chunk;
    if (process.env.CICLO_E2E_VERBOSE) process.stderr.write(chunk);
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s:\n${output}\n${errors}`)), 60_000);
    child.stdout.on("data", (chunk) => {
      output += chunk;
      const match = output.match(/listening on (http:\/\/[^\s]+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${output}\n${errors}`));
    });
  });
  const email = (output.match(/owner email:\s+(\S+)/) || [])[1] || "owner@ciclo.local";
  const printed = (output.match(/owner password:\s+(\S.*)/) || [])[1];
  const password = printed && !printed.startsWith("(") ? printed.trim() : OWNER_PASSWORD;
  return {
    url,
    email,
    password,
    dataDir,
    logs: () => errors,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((resolve) => {
          const timer = setTimeout(() => { child.kill("SIGKILL"); resolve(); }, 5_000);
          child.on("exit", () => { clearTimeout(timer); resolve(); });
        });
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
