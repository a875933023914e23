// Two-factor sign-in in a real browser: set it up from the settings page (QR code and the key
// for typing in by hand), confirm with a code computed here like an authenticator app would
// (RFC 6238), keep the recovery codes (download), sign out, and sign in with password + code.
// Screenshots: target/e2e-screenshots/two-factor-setup.png, two-factor-login.png (and the
// recovery codes, the code step with an error, and the code step on a phone).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { startServer } from "../lib/server.js";
import { launchBrowser, screenshot, DESKTOP, PHONE } from "../lib/browser.js";
import { screenshotDir } from "../lib/paths.js";

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 (spaces and padding ignored) to bytes. */
function base32Decode(text) {
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of text.replace(/[\s=]/g, "").toUpperCase()) {
    const index = BASE32.indexOf(ch);
    if (index < 0) throw new Error(`not base32: ${ch}`);
    value = ((value << 5) | index) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP (HMAC-SHA1, 30-second steps) for a key given as bytes. */
function totpFromBytes(key, unixSeconds, digits = 6) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = crypto.createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, "0");
}

const totp = (secret, unixSeconds) => totpFromBytes(base32Decode(secret), unixSeconds);
const step = (unixSeconds) => Math.floor(unixSeconds / 30);
const now = () => Date.now() / 1000;

let server;
let chromium;
let context;
let page;
let secret;
let confirmedAt;
let recoveryCodes;

async function signInWithPassword(p) {
  await p.goto(`${server.url}/login`);
  await p.locator("#f-email").fill(server.email);
  await p.locator("#f-password").fill(server.password);
  await Promise.all([p.waitForLoadState("load"), p.locator("form[action='/login'] button[type=submit]").click()]);
}

describe("two-factor sign-in", { timeout: 180_000 }, () => {
  before(async () => {
    server = await startServer();
    chromium = await launchBrowser();
    context = await chromium.browser.newContext({ locale: "pt-BR", viewport: DESKTOP });
    page = await context.newPage();
    page.on("dialog", (dialog) => dialog.accept());
  });

  after(async () => {
    await context?.close();
    await chromium?.close();
    await server?.stop();
  });

  test("the TOTP of this test matches RFC 6238's test vectors", () => {
    const key = Buffer.from("12345678901234567890");
    assert.equal(totpFromBytes(key, 59, 8), "94287082");
    assert.equal(totpFromBytes(key, 1111111109, 8), "07081804");
    assert.equal(totpFromBytes(key, 20000000000, 8), "65353130");
    assert.deepEqual(base32Decode("GEZDGNBV GY3TQOJQ"), Buffer.from("1234567890"));
  });

  test("set it up from the settings page: QR code, key, first code, recovery codes", async () => {
    await signInWithPassword(page);
    await page.goto(`${server.url}/settings`);
    const section = page.locator("#two-factor");
    assert.match(await section.innerText(), /Desativada/);
    await section.getByRole("button", { name: "Configurar dois fatores" }).click();
    assert.equal(new URL(page.url()).search, "?two_factor=setup", "the key is not in the URL");

    const qr = section.getByRole("img", { name: /QR code que adiciona o ciclo/ });
    assert.ok(await qr.isVisible(), "the QR code is shown");
    const box = await qr.boundingBox();
    assert.ok(box.width >= 180 && box.height >= 180, `QR code is ${box.width}×${box.height}`);
    assert.equal(await section.locator("figure figcaption").innerText(), "Leia com o seu aplicativo autenticador.");
    assert.equal(await section.getByRole("heading", { name: "Chave para digitar à mão" }).count(), 1);
    secret = (await section.locator("#tf-secret").innerText()).trim();
    assert.match(secret, /^[A-Z2-7]{4}( [A-Z2-7]{4}){7}$/, "a 160-bit key in groups of four");
    await screenshot(page, "two-factor-setup");
    await section.screenshot({ path: path.join(screenshotDir, "two-factor-setup-section.png") });

    // A wrong code: the error next to the field, the same key still there.
    const wrong = totp(secret, now()) === "000000" ? "111111" : "000000";
    await section.getByLabel("Código de 6 dígitos do aplicativo").fill(wrong);
    await section.getByRole("button", { name: "Ativar" }).click();
    assert.match(await page.locator("#tf-code-error").innerText(), /Este código não é válido/);
    assert.equal(await page.locator("#tf-code").getAttribute("aria-invalid"), "true");
    assert.equal((await page.locator("#tf-secret").innerText()).trim(), secret);

    confirmedAt = now();
    await page.locator("#tf-code").fill(totp(secret, confirmedAt));
    await page.getByRole("button", { name: "Ativar" }).click();
    const saveNow = page.locator("#two-factor .secret-box");
    assert.match(await saveNow.innerText(), /Guarde agora os seus códigos de recuperação/);
    recoveryCodes = (await page.locator("#recovery-codes").innerText()).trim().split("\n");
    assert.equal(recoveryCodes.length, 10);
    await screenshot(page, "two-factor-recovery-codes");

    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Baixar (.txt)" }).click(),
    ]);
    assert.equal(download.suggestedFilename(), "ciclo-recovery-codes.txt");
    const file = fs.readFileSync(await download.path(), "utf8");
    for (const code of recoveryCodes) assert.ok(file.includes(`${code}\n`), `${code} in the file`);

    await page.getByRole("link", { name: "Já guardei" }).click();
    const status = await page.locator("#two-factor").innerText();
    assert.match(status, /Ativada\s+desde \d\d\/\d\d\/\d{4}\./);
    assert.match(status, /Códigos de recuperação restantes: 10/);
    assert.doesNotMatch(await page.content(), new RegExp(recoveryCodes[0]), "codes shown once");
    await page.locator("#two-factor").screenshot({ path: path.join(screenshotDir, "two-factor-on-section.png") });
  });

  test("sign out, then sign in with password and a code from the app", async () => {
    await page.getByRole("button", { name: "Sair" }).click();
    await signInWithPassword(page);
    assert.equal(new URL(page.url()).pathname, "/login", "no session yet");
    assert.doesNotMatch(page.url(), /challenge/);
    assert.equal(await page.locator("h1").innerText(), "Verificação em duas etapas");
    const code = page.getByLabel("Código", { exact: true });
    assert.ok(await code.evaluate((el) => el === document.activeElement), "the code field has the focus");
    await screenshot(page, "two-factor-login");

    await code.fill("12345");
    await page.getByRole("button", { name: "Verificar" }).click();
    assert.match(await page.locator("#f-code-error").innerText(), /Este código não é válido/);
    await screenshot(page, "two-factor-login-error");

    // A code is accepted once per 30-second step: wait for the step after the confirmation.
    if (step(now()) <= step(confirmedAt)) {
      await new Promise((resolve) => setTimeout(resolve, ((step(confirmedAt) + 1) * 30 - now()) * 1000 + 200));
    }
    await page.locator("#f-code").fill(totp(secret, now()));
    await Promise.all([page.waitForLoadState("load"), page.getByRole("button", { name: "Verificar" }).click()]);
    assert.equal(new URL(page.url()).pathname, "/");
    const cookies = await context.cookies(server.url);
    const session = cookies.find((c) => c.name === "ciclo_session");
    assert.ok(session?.httpOnly && session.sameSite === "Lax", "the usual session cookie");
    await page.goto(`${server.url}/settings`);
    assert.match(await page.locator("#two-factor").innerText(), /Ativada/);
  });

  test("a recovery code signs in once; the code step fits a phone", async () => {
    const phone = await chromium.browser.newContext({ locale: "en-US", viewport: PHONE, isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    try {
      await signInWithPassword(p);
      assert.equal(await p.locator("h1").innerText(), "Two-step verification");
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `the code step scrolls sideways by ${overflow}px`);
      await screenshot(p, "two-factor-login-phone", { fullPage: false });
      await p.getByLabel("Code", { exact: true }).fill(recoveryCodes[0]);
      await Promise.all([p.waitForLoadState("load"), p.getByRole("button", { name: "Verify" }).click()]);
      assert.equal(new URL(p.url()).pathname, "/");

      await p.goto(`${server.url}/settings`);
      assert.match(await p.locator("#two-factor").innerText(), /Recovery codes left: 9/);
      const settingsOverflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(settingsOverflow <= 1, `settings scroll sideways by ${settingsOverflow}px`);
      await p.locator("#two-factor").scrollIntoViewIfNeeded();
      await screenshot(p, "two-factor-settings-phone", { fullPage: false });
      await p.getByRole("button", { name: "Sign out" }).click();
      await signInWithPassword(p);
      await p.getByLabel("Code", { exact: true }).fill(recoveryCodes[0]);
      await p.getByRole("button", { name: "Verify" }).click();
      assert.match(await p.locator("#f-code-error").innerText(), /This code is not valid/);
    } finally {
      await phone.close();
    }
  });
});
