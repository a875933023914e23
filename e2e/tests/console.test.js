// The operator console in a real headless Chromium against the real server: sign in, search,
// the customer 360 page, editing with a validation error, un-merge, CSV import with a rejected
// row and its report, API keys, and switching language. Screenshots of the main screens go to
// target/e2e-screenshots/ (desktop and phone widths).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { startServer } from "../lib/server.js";
import { launchBrowser, screenshot, DESKTOP, PHONE } from "../lib/browser.js";
import { seed } from "../lib/seed.js";

let server;
let chromium;
let data;
let context;
let page;

async function signIn(p, email, password) {
  await p.goto(`${server.url}/login`);
  await p.locator("#f-email").fill(email);
  await p.locator("#f-password").fill(password);
  await Promise.all([p.waitForLoadState("load"), p.locator("form[action='/login'] button[type=submit]").click()]);
}

/** Whether core's dashboard is implemented yet (the page shows the 500 page while it panics). */
async function dashboardWorks(p) {
  return (await p.locator(".kpis").count()) > 0;
}

describe("operator console", { timeout: 300_000 }, () => {
  before(async () => {
    server = await startServer();
    data = await seed(server);
    chromium = await launchBrowser();
    context = await chromium.browser.newContext({ locale: "pt-BR", viewport: DESKTOP });
    page = await context.newPage();
    // Destructive buttons ask for confirmation (data-confirm); the tests say yes.
    page.on("dialog", (dialog) => dialog.accept());
  });

  after(async () => {
    await context?.close();
    await chromium?.close();
    await server?.stop();
  });

  test("sign in: a wrong password is refused in Portuguese, the right one opens the console", async (t) => {
    await signIn(page, server.email, "not the password");
    assert.match(await page.locator("[role=alert]").innerText(), /E-mail ou senha incorretos/);
    assert.equal(await page.locator("html").getAttribute("lang"), "pt-BR");

    await signIn(page, server.email, server.password);
    assert.equal(new URL(page.url()).pathname, "/");
    if (!(await dashboardWorks(page))) {
      // Core's dashboard() is still a todo!(): the console shows its friendly 500 page.
      assert.match(await page.locator("h1").innerText(), /Algo deu errado/);
      assert.doesNotMatch(await page.content(), /panicked|not yet implemented/);
      t.diagnostic("dashboard() not implemented in core yet: dashboard checks skipped");
      return;
    }
    assert.match(await page.locator("h1").innerText(), /Visão geral/);
    assert.ok((await page.locator("svg.chart").count()) >= 4, "four SVG charts");
    await screenshot(page, "dashboard-desktop");
  });

  test("search a customer", async () => {
    await page.goto(`${server.url}/customers`);
    assert.equal(await page.locator("h1").innerText(), "Clientes");
    assert.equal(await page.locator("tbody tr").count(), 25, "a full first page");
    await screenshot(page, "customers-desktop");
    await page.getByRole("link", { name: "Próxima" }).click();
    assert.ok((await page.locator("tbody tr").count()) >= 1, "a second page");
    await page.getByRole("link", { name: "Anterior" }).click();
    assert.equal(await page.locator("tbody tr").count(), 25);

    await page.getByLabel("Buscar").fill("ana sou");
    await page.getByRole("button", { name: "Aplicar" }).click();
    const rows = page.locator("tbody tr");
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().innerText(), /Ana Souza/);
    assert.match(await rows.first().innerText(), /R\$ 1\.494,36/, "total spent in pt-BR money");

    // The export link downloads the current filter as CSV through the API, with the session.
    const exportHref = await page.getByRole("link", { name: "Exportar CSV" }).getAttribute("href");
    assert.match(exportHref, /^\/api\/v1\/exports\/customers\.csv\?search=ana\+sou$/);
    const exported = await page.request.get(`${server.url}${exportHref}`);
    assert.equal(exported.status(), 200);
    const csvLines = (await exported.text()).trim().split("\n");
    assert.equal(csvLines.length, 2, "header and Ana");
    assert.match(csvLines[1], /Ana Souza/);

    // Search by phone digits finds her too.
    await page.getByLabel("Buscar").fill("98765");
    await page.getByRole("button", { name: "Aplicar" }).click();
    assert.match(await page.locator("tbody").innerText(), /Ana Souza/);
  });

  test("open the customer 360 page, with orders and an infinitely scrolling timeline", async () => {
    await page.getByRole("link", { name: "Ana Souza" }).click();
    assert.equal(await page.locator("h1").innerText(), "Ana Souza");
    assert.match(await page.locator("#orders").innerText(), /Pedido PED-1001/);
    assert.match(await page.locator("#orders").innerText(), /Camiseta azul/);
    assert.match(await page.locator(".kpis").innerText(), /R\$ 1\.494,36/);
    const timeline = page.locator("#timeline-list li.event");
    assert.equal(await timeline.count(), 20, "first timeline page");
    assert.match(await page.locator("#timeline").innerText(), /WhatsApp/);
    await screenshot(page, "customer360-desktop");
    // Scrolling to the end loads the next page of events (fetched as an HTML fragment).
    await page.locator(".timeline-more a").scrollIntoViewIfNeeded();
    await page.waitForFunction(() => document.querySelectorAll("#timeline-list li.event").length > 20);
    const total = await timeline.count();
    assert.ok(total > 20 && total <= 40, `timeline grew to ${total}`);

    // Filters: only WhatsApp.
    await page.getByLabel("Canal").selectOption("whatsapp");
    await page.getByRole("button", { name: "Filtrar" }).click();
    assert.equal(await page.locator("#timeline-list li.event").count(), 1);
    assert.match(await page.locator("#timeline-list").innerText(), /Message Received/);
  });

  test("edit a field, and see a validation error next to a bad email", async () => {
    await page.locator("#f-city").fill("Campinas");
    await page.getByRole("button", { name: "Salvar" }).click();
    assert.match(await page.locator(".flash-ok").innerText(), /Alterações salvas/);
    assert.equal(await page.locator("#f-city").inputValue(), "Campinas");

    await page.locator("#f-email").fill("ana@@example");
    await page.getByRole("button", { name: "Salvar" }).click();
    const error = page.locator("#f-email-error");
    assert.match(await error.innerText(), /Digite um e-mail válido/);
    assert.equal(await page.locator("#f-email").getAttribute("aria-invalid"), "true");
    assert.equal(await page.locator("#f-email").inputValue(), "ana@@example", "what was typed is kept");
    assert.doesNotMatch(await page.content(), /invalid_email|panicked/);
    await screenshot(page, "customer360-validation-desktop");
  });

  test("un-merge a profile that was merged automatically", async () => {
    await page.goto(`${server.url}/customers/${data.carla}`);
    const merges = page.locator("#identities .merge-list li.merge");
    assert.equal(await merges.count(), 1);
    await page.getByRole("button", { name: "Desfazer mesclagem" }).click();
    assert.match(await page.locator(".flash-ok").innerText(), /Mesclagem desfeita/);
    assert.match(await page.locator("#identities").innerText(), /Desfeita em/);
    assert.equal(await page.getByRole("button", { name: "Desfazer mesclagem" }).count(), 0);
  });

  test("import a CSV with a bad row, then download the rejected rows report", async () => {
    await page.goto(`${server.url}/imports`);
    const csv = [
      "Nome;E-mail;Telefone;Cidade",
      "Diego Alves;diego@example.com;+55 31 98888-7777;Belo Horizonte",
      "Erro Total;isto-nao-e-email;;Recife",
      "Fabiana Rocha;fabiana@example.com;;Salvador",
    ].join("\n");
    await page.getByLabel("Arquivo", { exact: true }).setInputFiles({ name: "clientes.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
    await page.getByRole("button", { name: "Enviar e pré-visualizar" }).click();
    assert.equal(await page.locator("h1").innerText(), "Associe as colunas");
    assert.equal(await page.getByLabel("Coluna “E-mail”").inputValue(), "email", "mapping proposed from the header");
    assert.equal(await page.locator(".preview-table tbody tr").count(), 3);
    await page.getByRole("button", { name: "Importar", exact: true }).click();
    await page.waitForURL(/\/imports\/imp_/, { timeout: 30_000 });
    assert.equal(await page.locator("h1").innerText(), "Resultado da importação");
    assert.match(await page.locator(".kpis").innerText(), /Criados\s+2/);
    assert.match(await page.locator(".kpis").innerText(), /Rejeitadas\s+1/);
    assert.match(await page.locator("section[aria-labelledby=h-rejected]").innerText(), /Digite um e-mail válido/);
    await screenshot(page, "import-result-desktop");

    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Baixar linhas rejeitadas (CSV)" }).click(),
    ]);
    const report = fs.readFileSync(await download.path(), "utf8");
    const lines = report.trim().split("\n");
    assert.equal(lines[0], "line,code,field,reason");
    assert.match(lines[1], /^3,invalid_email,email,/);
    assert.equal(lines.length, 2);
  });

  test("create an API key, see its secret once, use it, revoke it", async () => {
    await page.goto(`${server.url}/settings`);
    await page.locator("#key-name").fill("Loja virtual");
    await page.getByRole("button", { name: "Criar chave" }).click();
    const secret = await page.locator("#new-secret").inputValue();
    assert.match(secret, /^sk_/);
    await screenshot(page, "settings-desktop");
    const me = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(me.status, 200, "the new key works");

    await page.goto(`${server.url}/settings`);
    assert.equal(await page.locator("#new-secret").count(), 0, "the secret is not shown again");
    await page.getByRole("button", { name: "Revogar Loja virtual" }).click();
    assert.match(await page.locator(".flash-ok").innerText(), /Chave de API revogada/);
    assert.match(await page.locator("#api-keys").innerText(), /Revogada/);
    const refused = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(refused.status, 401, "the revoked key no longer works");
  });

  test("switch language: Portuguese ↔ English", async () => {
    await page.goto(`${server.url}/customers?search=ana`);
    await page.locator(".topbar .lang-switch button[value=en]").click();
    assert.equal(await page.locator("html").getAttribute("lang"), "en");
    assert.equal(await page.locator("h1").innerText(), "Customers");
    assert.match(await page.locator("tbody").innerText(), /R\$1,494\.36/, "money in English style");
    assert.equal(new URL(page.url()).search, "?search=ana", "stays on the same page");

    await page.goto(`${server.url}/settings`);
    await page.getByLabel("Language of the console").selectOption("pt-BR");
    await page.getByRole("button", { name: "Save" }).first().click();
    assert.equal(await page.locator("h1").innerText(), "Configurações");
    assert.match(await page.locator(".flash-ok").innerText(), /Preferência de idioma salva/);

    // The choice is saved on the account: another device with an English browser gets it too.
    const other = await chromium.browser.newContext({ locale: "en-US" });
    const o = await other.newPage();
    try {
      await signIn(o, server.email, server.password);
      assert.equal(await o.locator("html").getAttribute("lang"), "pt-BR");
    } finally {
      await other.close();
    }
    // Back to following the browser, as the other tests expect.
    await page.goto(`${server.url}/settings`);
    await page.getByLabel("Idioma do console").selectOption("auto");
    await page.getByRole("button", { name: "Salvar" }).first().click();
    assert.match(await page.locator(".flash-ok").innerText(), /(Preferência de idioma salva|Language preference saved)/);
  });

  test("phone width: the main screens fit and stay usable", async () => {
    const phone = await chromium.browser.newContext({ locale: "en-US", viewport: PHONE, isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    try {
      await signIn(p, server.email, server.password);
      assert.equal(await p.locator("html").getAttribute("lang"), "en");
      if (await dashboardWorks(p)) await screenshot(p, "dashboard-phone", { fullPage: false });
      for (const [path, name] of [
        ["/customers", "customers-phone"],
        [`/customers/${data.ana}`, "customer360-phone"],
        ["/settings", "settings-phone"],
        ["/imports", "imports-phone"],
      ]) {
        await p.goto(`${server.url}${path}`);
        const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 1, `${path} scrolls sideways by ${overflow}px`);
        // What a phone shows first, and (for the long pages) a second screen further down.
        await screenshot(p, name, { fullPage: false });
        if (path.startsWith("/customers/")) {
          await p.locator("#timeline").scrollIntoViewIfNeeded();
          await screenshot(p, `${name}-timeline`, { fullPage: false });
        }
      }
    } finally {
      await phone.close();
    }
  });
});
