// Where things are: the repository root, cargo's target directory, the screenshots folder.
import path from "node:path";
import { fileURLToPath } from "node:url";

export const e2eRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const repoRoot = path.resolve(e2eRoot, "..");
export const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(repoRoot, process.env.CARGO_TARGET_DIR)
  : path.join(repoRoot, "target");
export const screenshotDir = path.join(targetDir, "e2e-screenshots");
