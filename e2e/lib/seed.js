// Test data, put in through the JSON API and the Segment-compatible ingestion endpoint, the way
// real data arrives: customers (one with orders and a varied timeline), an automatic merge to
// undo, and enough people to fill more than one page of the list.
export async function apiSession(base, email, password) {
  const response = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (!response.ok) throw new Error(`API login failed: ${response.status} ${await response.text()}`);
  const cookie = response.headers.get("set-cookie").split(";")[0];
  const { csrf_token } = await response.json();
  const call = async (method, path, body) => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: { cookie, "x-csrf-token": csrf_token, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return { call };
}

async function ingest(base, writeKey, batch) {
  const r = await fetch(`${base}/v1/batch`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Basic ${Buffer.from(`${writeKey}:`).toString("base64")}`,
    },
    body: JSON.stringify({ batch }),
  });
  if (!r.ok) throw new Error(`batch: ${r.status} ${await r.text()}`);
}

const FIRST = ["Marcos", "Juliana", "Pedro", "Fernanda", "Rafael", "Patrícia", "Lucas", "Beatriz", "Thiago", "Camila"];
const LAST = ["Oliveira", "Santos", "Pereira", "Costa", "Rodrigues", "Almeida", "Nascimento", "Araújo", "Ribeiro", "Gomes"];

export async function seed(server) {
  const api = await apiSession(server.url, server.email, server.password);
  const workspace = await api.call("GET", "/api/v1/workspace");
  const writeKey = workspace.write_key;

  const ana = await api.call("POST", "/api/v1/customers", {
    name: "Ana Souza",
    email: "ana.souza@example.com",
    phone: "+55 11 98765-4321",
    city: "São Paulo",
    state: "SP",
    country: "BR",
    tags: ["vip"],
    user_id: "ana-1",
  });
  await api.call("POST", "/api/v1/customers", {
    name: "Bruno Lima",
    email: "bruno.lima@example.com",
    city: "Rio de Janeiro",
  });
  for (let i = 0; i < 28; i++) {
    await api.call("POST", "/api/v1/customers", {
      name: `${FIRST[i % 10]} ${LAST[(i * 3) % 10]}`,
      email: `cliente${i}@example.com`,
      city: i % 2 ? "Curitiba" : "Belo Horizonte",
    });
  }

  // Ana's timeline: orders, pages, an email, a WhatsApp message, an in-store visit.
  const now = Date.now();
  const at = (minutesAgo) => new Date(now - minutesAgo * 60_000).toISOString();
  const batch = [];
  for (let i = 0; i < 30; i++) {
    batch.push({
      type: "page", userId: "ana-1", name: `Produto ${i + 1}`, messageId: `e2e-page-${i}`,
      properties: { url: `https://loja.example.com/p/${i + 1}`, title: `Produto ${i + 1}` },
      timestamp: at(60 * 24 * 3 + i * 7),
    });
  }
  batch.push({
    type: "track", userId: "ana-1", event: "Order Completed", messageId: "e2e-order-1", timestamp: at(600),
    properties: {
      order_id: "PED-1001", total: 259.8, currency: "BRL",
      products: [
        { product_id: "SKU-1", sku: "CAM-AZ-M", name: "Camiseta azul", category: "Roupas", price: 79.9, quantity: 2 },
        { product_id: "SKU-2", sku: "BON-01", name: "Boné", category: "Acessórios", price: 100, quantity: 1 },
      ],
    },
  });
  batch.push({
    type: "track", userId: "ana-1", event: "Order Completed", messageId: "e2e-order-2", timestamp: at(60 * 24 * 20),
    properties: { order_id: "PED-0950", total: 1234.56, currency: "BRL", products: [{ sku: "TEN-42", name: "Tênis de corrida", price: 1234.56, quantity: 1 }] },
  });
  batch.push({ type: "track", userId: "ana-1", event: "Email Opened", messageId: "e2e-email-1", timestamp: at(300), properties: { channel: "email", subject: "Ofertas da semana" } });
  batch.push({ type: "track", userId: "ana-1", event: "Message Received", messageId: "e2e-wa-1", timestamp: at(200), properties: { channel: "whatsapp", text: "Oi! Meu pedido já saiu?" } });
  batch.push({ type: "track", userId: "ana-1", event: "Store Visit", messageId: "e2e-store-1", timestamp: at(100), properties: { channel: "store", store: "Loja Paulista" } });
  await ingest(server.url, writeKey, batch);

  // Carla: first seen anonymously, then identified: the two profiles merge automatically.
  await ingest(server.url, writeKey, [
    { type: "identify", userId: "carla-1", messageId: "e2e-carla-1", traits: { name: "Carla Dias", email: "carla.dias@example.com" }, timestamp: at(50) },
    { type: "page", anonymousId: "anon-carla", messageId: "e2e-carla-2", name: "Home", properties: { url: "https://loja.example.com/" }, timestamp: at(40) },
    { type: "identify", anonymousId: "anon-carla", messageId: "e2e-carla-3", traits: { phone: "+55 21 99876-5432", email: "carla.dias@example.com" }, timestamp: at(30) },
  ]);
  const carla = (await api.call("GET", "/api/v1/customers?search=carla")).items[0];
  return { ana: ana.id, carla: carla.id, writeKey };
}
