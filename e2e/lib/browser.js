// Headless Chromium from Debian's package, driven by playwright-core. Never downloads a browser.
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { screenshotDir } from "./paths.js";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get update && apt-get install -y chromium chromium-driver`);
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
      // No --user-data-dir here: playwright refuses it in launch() and instead gives every
      // launch a fresh temporary profile of its own (removed on close).
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
    },
  };
}

/** Desktop and phone viewports for screenshots. */
export const DESKTOP = { width: 1366, height: 900 };
export const PHONE = { width: 390, height: 844 };

/** Saves a screenshot under target/e2e-screenshots/NAME.png (the whole page unless told). */
export async function screenshot(page, name, { fullPage = true } = {}) {
  fs.mkdirSync(screenshotDir, { recursive: true });
  const file = path.join(screenshotDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}
