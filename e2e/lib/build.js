// Builds the server the tests start (the real `ciclo` binary), unless CICLO_E2E_BIN names one
// already built.
import { spawnSync } from "node:child_process";
import { repoRoot } from "./paths.js";

if (process.env.CICLO_E2E_BIN) {
  console.log(`e2e: using ${process.env.CICLO_E2E_BIN}`);
  process.exit(0);
}
const result = spawnSync("cargo", ["build", "-p", "ciclo"], { cwd: repoRoot, stdio: "inherit" });
process.exit(result.status ?? 1);
