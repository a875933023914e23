//! The demo data set: two years of a Brazilian online shop ("Minha Loja"), made deterministically
//! from a seed and loaded through the same ingestion use case as the Segment API.
//!
//! About 3,000 customers with pt-BR names, cities with their states, mobile phones in E.164 with
//! the city's real area code (DDD), emails, birthdays and tags; page views, `Product Viewed`,
//! `Added to Cart`, `Checkout Started` and `Order Completed` (a catalogue of 40 products in BRL),
//! email campaigns (`Email Opened`/`Email Clicked`, channel `email`) and WhatsApp messages
//! (`Message Sent`/`Message Read`, channel `whatsapp`).
//!
//! The identity graph gets a workout: some visitors browse anonymously and are identified at
//! sign-up; newsletter leads known only by email sign up later from another device (their two
//! anonymous profiles merge); customers log in from a second device (merge); and a few share
//! a family WhatsApp number with another customer (a conflict left for a person to resolve).
//!
//! Message ids and order ids come from the seed and the generation order, never from the clock,
//! so loading the same seed and size twice adds nothing the second time. Event times are spread
//! over the two years before `now`.

use chrono::{Datelike, Duration, NaiveDate, SecondsFormat};
use ciclo_core::ingest::{IngestReport, IngestSource, RejectedMessage};
use ciclo_core::Ciclo;
use ciclo_domain::operator::Workspace;
use ciclo_domain::Timestamp;
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::fmt;

pub const DEFAULT_SEED: u64 = 2024;
pub const DEFAULT_CUSTOMERS: usize = 3000;
/// Messages per ingestion call, as an SDK would batch them.
pub const BATCH_SIZE: usize = 500;
/// The shop's site, for page URLs.
const SITE: &str = "https://minhaloja.com.br";

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub seed: u64,
    pub customers: usize,
    /// The end of the two years the events are spread over.
    pub now: Timestamp,
}

impl DemoOptions {
    /// The default data set (seed 2024, 3,000 customers) ending at `now`.
    pub fn new(now: Timestamp) -> Self {
        DemoOptions {
            seed: DEFAULT_SEED,
            customers: DEFAULT_CUSTOMERS,
            now,
        }
    }
}

/// What loading the demo did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DemoReport {
    pub customers: usize,
    pub messages: usize,
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub seconds: f64,
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "demo: {} customers, {} messages: {} stored, {} already there, {} rejected ({:.1} s)",
            self.customers,
            self.messages,
            self.accepted,
            self.duplicates,
            self.rejected,
            self.seconds
        )
    }
}

/// Generates the data set and ingests it into `workspace` in batches of [`BATCH_SIZE`].
pub fn load(
    app: &Ciclo,
    workspace: &Workspace,
    options: &DemoOptions,
    show_progress: bool,
) -> anyhow::Result<DemoReport> {
    let started = std::time::Instant::now();
    let messages = generate(options);
    let bar = if show_progress {
        ProgressBar::new(messages.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} loading demo data [{bar:40}] {pos}/{len} messages ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut report = DemoReport {
        customers: options.customers,
        messages: messages.len(),
        ..Default::default()
    };
    let mut first_rejections: Vec<RejectedMessage> = Vec::new();
    for batch in messages.chunks(BATCH_SIZE) {
        let IngestReport {
            accepted,
            duplicates,
            rejected,
        } = app
            .ingest(workspace, batch, None, options.now, IngestSource("demo"))
            .map_err(|e| crate::app::explain(e).context("demo ingestion failed"))?;
        report.accepted += accepted;
        report.duplicates += duplicates;
        report.rejected += rejected.len();
        if first_rejections.len() < 5 {
            first_rejections.extend(rejected.into_iter().take(5 - first_rejections.len()));
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    for r in &first_rejections {
        tracing::warn!(message_id = ?r.message_id, code = %r.code, field = %r.field, "demo message rejected: {}", r.reason);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The data set as Segment messages, oldest first.
pub fn generate(options: &DemoOptions) -> Vec<Value> {
    let mut generator = Generator::new(options);
    let mut previous: Option<Person> = None;
    for index in 0..options.customers {
        let person = generator.person(index, previous.as_ref());
        generator.customer_story(&person);
        previous = Some(person);
    }
    generator.finish()
}

// --- reference data ----------------------------------------------------------------------------

#[rustfmt::skip]
const FEMALE_NAMES: &[&str] = &[
    "Maria", "Ana", "Francisca", "Antônia", "Adriana", "Juliana", "Márcia", "Fernanda", "Patrícia", "Aline", "Camila",
    "Amanda", "Bruna", "Jéssica", "Letícia", "Júlia", "Luciana", "Vanessa", "Mariana", "Gabriela", "Beatriz",
    "Larissa", "Rafaela", "Carolina", "Débora", "Tatiane", "Renata", "Sandra", "Simone", "Cláudia", "Priscila",
    "Natália", "Isabela", "Sofia", "Helena", "Alice", "Laura", "Manuela", "Valentina", "Lívia", "Ana Paula",
    "Maria Eduarda", "Ana Clara", "Luana", "Thaís", "Daniela", "Bianca", "Raquel", "Yasmin", "Cecília",
];

#[rustfmt::skip]
const MALE_NAMES: &[&str] = &[
    "José", "João", "Antônio", "Francisco", "Carlos", "Paulo", "Pedro", "Lucas", "Luiz", "Marcos", "Luís", "Gabriel",
    "Rafael", "Daniel", "Marcelo", "Bruno", "Eduardo", "Felipe", "Raimundo", "Rodrigo", "Gustavo", "Thiago",
    "Matheus", "Leonardo", "André", "Fernando", "Fábio", "Ricardo", "Diego", "Vinícius", "Henrique", "Arthur",
    "Miguel", "Heitor", "Davi", "Bernardo", "Samuel", "Enzo", "Caio", "Otávio", "João Pedro", "Luiz Henrique",
    "Carlos Eduardo", "Igor", "Sérgio", "Wellington", "Renato", "Murilo", "Júlio", "Benedito",
];

#[rustfmt::skip]
pub const SURNAMES: &[&str] = &[
    "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima", "Gomes", "Costa",
    "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes", "Vieira", "Barbosa", "Rocha", "Dias",
    "Nascimento", "Andrade", "Moreira", "Nunes", "Marques", "Machado", "Mendes", "Freitas", "Cardoso", "Ramos",
    "Gonçalves", "Santana", "Teixeira", "Araújo", "Cavalcanti", "Monteiro", "Moura", "Correia", "Pinto", "Batista",
    "Campos", "Melo", "Barros", "Castro", "Reis", "Azevedo", "Farias", "Sampaio",
];

/// First names of both lists, for other generators (the benchmark).
pub fn first_names() -> impl Iterator<Item = &'static str> {
    FEMALE_NAMES.iter().chain(MALE_NAMES).copied()
}

pub struct City {
    pub name: &'static str,
    pub state: &'static str,
    /// IANA time zone of the city.
    pub time_zone: &'static str,
    /// Area codes (DDD) of the city.
    pub ddd: &'static [u16],
    /// Relative share of customers.
    weight: u32,
}

const fn city(
    name: &'static str,
    state: &'static str,
    time_zone: &'static str,
    ddd: &'static [u16],
    weight: u32,
) -> City {
    City {
        name,
        state,
        time_zone,
        ddd,
        weight,
    }
}

#[rustfmt::skip]
pub const CITIES: &[City] = &[
    city("São Paulo", "SP", "America/Sao_Paulo", &[11], 28),
    city("Rio de Janeiro", "RJ", "America/Sao_Paulo", &[21], 13),
    city("Belo Horizonte", "MG", "America/Sao_Paulo", &[31], 6),
    city("Brasília", "DF", "America/Sao_Paulo", &[61], 6),
    city("Salvador", "BA", "America/Bahia", &[71], 5),
    city("Fortaleza", "CE", "America/Fortaleza", &[85], 5),
    city("Curitiba", "PR", "America/Sao_Paulo", &[41], 5),
    city("Recife", "PE", "America/Recife", &[81], 4),
    city("Porto Alegre", "RS", "America/Sao_Paulo", &[51], 4),
    city("Campinas", "SP", "America/Sao_Paulo", &[19], 3),
    city("Manaus", "AM", "America/Manaus", &[92], 3),
    city("Goiânia", "GO", "America/Sao_Paulo", &[62], 3),
    city("Belém", "PA", "America/Belem", &[91], 3),
    city("Florianópolis", "SC", "America/Sao_Paulo", &[48], 2),
    city("Niterói", "RJ", "America/Sao_Paulo", &[21], 2),
    city("Santos", "SP", "America/Sao_Paulo", &[13], 2),
    city("Ribeirão Preto", "SP", "America/Sao_Paulo", &[16], 2),
    city("Vitória", "ES", "America/Sao_Paulo", &[27], 2),
    city("Natal", "RN", "America/Fortaleza", &[84], 2),
    city("João Pessoa", "PB", "America/Fortaleza", &[83], 2),
    city("São Luís", "MA", "America/Fortaleza", &[98], 1),
    city("Maceió", "AL", "America/Maceio", &[82], 1),
    city("Teresina", "PI", "America/Fortaleza", &[86], 1),
    city("Campo Grande", "MS", "America/Campo_Grande", &[67], 1),
    city("Cuiabá", "MT", "America/Cuiaba", &[65], 1),
    city("Aracaju", "SE", "America/Maceio", &[79], 1),
    city("Londrina", "PR", "America/Sao_Paulo", &[43], 1),
    city("Joinville", "SC", "America/Sao_Paulo", &[47], 1),
    city("Uberlândia", "MG", "America/Sao_Paulo", &[34], 1),
];

pub struct Product {
    pub id: &'static str,
    pub sku: &'static str,
    pub name: &'static str,
    pub category: &'static str,
    /// Price in centavos.
    pub price_minor: i64,
}

const fn product(
    id: &'static str,
    sku: &'static str,
    name: &'static str,
    category: &'static str,
    price_minor: i64,
) -> Product {
    Product {
        id,
        sku,
        name,
        category,
        price_minor,
    }
}

pub const CATEGORIES: &[&str] = &[
    "Vestuário",
    "Calçados",
    "Acessórios",
    "Casa",
    "Beleza",
    "Esporte e Lazer",
];

#[rustfmt::skip]
pub const PRODUCTS: &[Product] = &[
    product("p001", "VES-CAM-BAS", "Camiseta Básica Algodão", "Vestuário", 5990),
    product("p002", "VES-CAM-IPE", "Camiseta Estampada Ipê", "Vestuário", 7990),
    product("p003", "VES-REG-DRY", "Regata Dry Fit", "Vestuário", 4990),
    product("p004", "VES-VES-MID", "Vestido Midi Floral", "Vestuário", 18990),
    product("p005", "VES-CAL-JNS", "Calça Jeans Slim", "Vestuário", 15990),
    product("p006", "VES-BER-SAR", "Bermuda Sarja", "Vestuário", 9990),
    product("p007", "VES-JAQ-CVT", "Jaqueta Corta-Vento", "Vestuário", 22990),
    product("p008", "VES-MOL-CAN", "Moletom Canguru", "Vestuário", 17990),
    product("p009", "VES-CAM-LIN", "Camisa de Linho", "Vestuário", 19990),
    product("p010", "VES-SAI-PLI", "Saia Plissada", "Vestuário", 12990),
    product("p011", "CAL-TEN-BRA", "Tênis Casual Branco", "Calçados", 24990),
    product("p012", "CAL-TEN-COR", "Tênis de Corrida Leve", "Calçados", 34990),
    product("p013", "CAL-SAN-RAS", "Sandália Rasteira de Couro", "Calçados", 11990),
    product("p014", "CAL-CHI-SLD", "Chinelo Slide", "Calçados", 6990),
    product("p015", "CAL-BOT-CHE", "Bota Chelsea", "Calçados", 39990),
    product("p016", "CAL-SAP-BFI", "Sapatilha Bico Fino", "Calçados", 13990),
    product("p017", "ACE-BON-ABA", "Boné Aba Curva", "Acessórios", 6990),
    product("p018", "ACE-MOC-URB", "Mochila Urbana", "Acessórios", 18990),
    product("p019", "ACE-BOL-TIR", "Bolsa Tiracolo", "Acessórios", 15990),
    product("p020", "ACE-OCU-RET", "Óculos de Sol Retrô", "Acessórios", 14990),
    product("p021", "ACE-CIN-COU", "Cinto de Couro", "Acessórios", 8990),
    product("p022", "ACE-CAR-SLM", "Carteira Slim", "Acessórios", 7990),
    product("p023", "ACE-REL-MIN", "Relógio Minimalista", "Acessórios", 29990),
    product("p024", "CAS-CAN-450", "Caneca de Cerâmica 450 ml", "Casa", 3990),
    product("p025", "CAS-TOA-BAN", "Jogo de Toalhas de Banho", "Casa", 14990),
    product("p026", "CAS-MAN-TRI", "Manta de Sofá em Tricô", "Casa", 16990),
    product("p027", "CAS-ALM-LIN", "Almofada de Linho", "Casa", 7990),
    product("p028", "CAS-VEL-MAR", "Vela Aromática Maracujá", "Casa", 5490),
    product("p029", "CAS-GAR-TER", "Garrafa Térmica 1 L", "Casa", 11990),
    product("p030", "CAS-POT-VID", "Kit Potes de Vidro", "Casa", 9990),
    product("p031", "BEL-HID-CUP", "Hidratante Corporal Cupuaçu", "Beleza", 4990),
    product("p032", "BEL-PER-BRI", "Colônia Brisa do Mar", "Beleza", 18990),
    product("p033", "BEL-SAB-KIT", "Kit Sabonetes Artesanais", "Beleza", 3990),
    product("p034", "BEL-SHA-SOL", "Shampoo Sólido", "Beleza", 4490),
    product("p035", "BEL-OLE-PRA", "Óleo Capilar de Pracaxi", "Beleza", 5990),
    product("p036", "BEL-PRO-F50", "Protetor Solar FPS 50", "Beleza", 6990),
    product("p037", "ESP-SQZ-750", "Garrafa Squeeze 750 ml", "Esporte e Lazer", 3990),
    product("p038", "ESP-TAP-YOG", "Tapete de Yoga", "Esporte e Lazer", 12990),
    product("p039", "ESP-TOA-PRA", "Toalha de Praia Listrada", "Esporte e Lazer", 8990),
    product("p040", "ESP-CAN-EST", "Canga Estampada", "Esporte e Lazer", 5990),
];

const EMAIL_DOMAINS: &[(&str, u32)] = &[
    ("gmail.com", 50),
    ("hotmail.com", 18),
    ("outlook.com", 8),
    ("yahoo.com.br", 8),
    ("uol.com.br", 5),
    ("bol.com.br", 4),
    ("terra.com.br", 3),
    ("icloud.com", 4),
];

const ACQUISITION: &[(&str, u32)] = &[
    ("instagram", 30),
    ("google", 25),
    ("indicacao", 12),
    ("tiktok", 10),
    ("facebook", 10),
    ("loja_fisica", 8),
    ("email", 5),
];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
];

const PAYMENT_METHODS: &[(&str, u32)] = &[
    ("pix", 45),
    ("cartao_credito", 40),
    ("boleto", 8),
    ("cartao_debito", 7),
];

/// Days between email campaigns, and between WhatsApp promotions.
const CAMPAIGN_EVERY_DAYS: i64 = 15;
const WHATSAPP_PROMO_EVERY_DAYS: i64 = 45;
const HISTORY_DAYS: i64 = 730;

// --- generation --------------------------------------------------------------------------------

/// One demo customer, drawn before their story is told.
struct Person {
    user_id: String,
    first_name: &'static str,
    last_name: String,
    email: String,
    /// E.164.
    phone: String,
    /// As the shop's form captured it (E.164 or `(11) 98765-4321`).
    phone_written: String,
    whatsapp: Option<String>,
    birthday: String,
    city: &'static City,
    acquisition: &'static str,
    newsletter: bool,
    whatsapp_opt_in: bool,
    orders: usize,
    favourite_category: &'static str,
    signup: Timestamp,
    /// Sessions on the shop after sign-up (besides those that end in an order).
    sessions: usize,
    /// The browser used at sign-up.
    device: String,
}

struct Generator {
    rng: ChaCha8Rng,
    seed: u64,
    now: Timestamp,
    start: Timestamp,
    /// (time, generation order, message): sorted by the first two at the end.
    out: Vec<(Timestamp, u64, Value)>,
    used_emails: HashSet<String>,
    used_phones: HashSet<String>,
}

impl Generator {
    fn new(options: &DemoOptions) -> Self {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            seed: options.seed,
            now: options.now,
            start: options.now - Duration::days(HISTORY_DAYS),
            out: Vec::with_capacity(options.customers * 40),
            used_emails: HashSet::new(),
            used_phones: HashSet::new(),
        }
    }

    fn finish(mut self) -> Vec<Value> {
        self.out.sort_by_key(|a| (a.0, a.1));
        self.out.into_iter().map(|(_, _, m)| m).collect()
    }

    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut pick = self.rng.gen_range(0..total);
        for (item, weight) in items {
            if pick < *weight {
                return *item;
            }
            pick -= weight;
        }
        items[items.len() - 1].0
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p.clamp(0.0, 1.0))
    }

    /// A random moment between `from` and `to` (clamped to the history window).
    fn between(&mut self, from: Timestamp, to: Timestamp) -> Timestamp {
        let from = from.max(self.start);
        let to = to.min(self.latest());
        if to <= from {
            return from.min(self.latest());
        }
        let span = (to - from).num_seconds().max(1);
        from + Duration::seconds(self.rng.gen_range(0..span))
    }

    /// The latest time an event may have: a minute before `now`.
    fn latest(&self) -> Timestamp {
        self.now - Duration::minutes(1)
    }

    fn later(&mut self, at: Timestamp, min_seconds: i64, max_seconds: i64) -> Timestamp {
        (at + Duration::seconds(self.rng.gen_range(min_seconds..=max_seconds))).min(self.latest())
    }

    fn uuid(&mut self) -> String {
        let a: u32 = self.rng.gen();
        let b: u16 = self.rng.gen();
        let c: u16 = self.rng.gen::<u16>() & 0x0fff;
        let d: u16 = (self.rng.gen::<u16>() & 0x3fff) | 0x8000;
        let e: u64 = self.rng.gen::<u64>() & 0xffff_ffff_ffff;
        format!("{a:08x}-{b:04x}-4{c:03x}-{d:04x}-{e:012x}")
    }

    fn person(&mut self, index: usize, previous: Option<&Person>) -> Person {
        let female = self.chance(0.55);
        let first_name = if female {
            *FEMALE_NAMES.choose(&mut self.rng).unwrap_or(&"Maria")
        } else {
            *MALE_NAMES.choose(&mut self.rng).unwrap_or(&"José")
        };
        let mut last_name = SURNAMES
            .choose(&mut self.rng)
            .unwrap_or(&"Silva")
            .to_string();
        if self.chance(0.45) {
            let second = SURNAMES.choose(&mut self.rng).unwrap_or(&"Santos");
            if *second != last_name {
                last_name = format!("{second} {last_name}");
            }
        }
        let city_weights: Vec<(usize, u32)> = CITIES
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.weight))
            .collect();
        let city = &CITIES[self.weighted(&city_weights)];
        let email = self.email(first_name, &last_name);
        let phone = self.phone(city);
        let phone_written = if self.chance(0.3) {
            national_format(&phone)
        } else {
            phone.clone()
        };
        // Most give their own mobile as WhatsApp; a few share the family's with the previous customer.
        let whatsapp = match previous {
            Some(p) if self.chance(0.01) => Some(p.phone.clone()),
            _ if self.chance(0.85) => Some(phone.clone()),
            _ => None,
        };
        let age = self.rng.gen_range(18..=72);
        let year = self.now.year() - age;
        let day = self.rng.gen_range(1..=365);
        let birthday_date = NaiveDate::from_yo_opt(year, day).unwrap_or_default();
        let birthday = if self.chance(0.2) {
            birthday_date.format("%d/%m/%Y").to_string()
        } else {
            birthday_date.format("%Y-%m-%d").to_string()
        };
        let acquisition = self.weighted(ACQUISITION);
        let newsletter = self.chance(0.6);
        let whatsapp_opt_in = whatsapp.is_some() && self.chance(0.55);
        // 35% never buy; the rest buy once or more, a few many times.
        let orders = if self.chance(0.35) {
            0
        } else {
            let mut n = 1;
            while n < 15 && self.chance(0.42) {
                n += 1;
            }
            n
        };
        let favourite_category = CATEGORIES
            .choose(&mut self.rng)
            .copied()
            .unwrap_or("Vestuário");
        // More customers joined recently (the shop grew).
        let u: f64 = self.rng.gen();
        let days_ago = (HISTORY_DAYS as f64 - 1.0) * u.powf(1.3) + 0.5;
        let signup = self.now - Duration::seconds((days_ago * 86_400.0) as i64);
        let engagement: f64 = self.rng.gen();
        let sessions = (engagement * engagement * 8.0) as usize + 1;
        let device = self.uuid();
        Person {
            user_id: format!("cli-{:05}", index + 1),
            first_name,
            last_name,
            email,
            phone,
            phone_written,
            whatsapp,
            birthday,
            city,
            acquisition,
            newsletter,
            whatsapp_opt_in,
            orders,
            favourite_category,
            signup,
            sessions,
            device,
        }
    }

    fn email(&mut self, first: &str, last: &str) -> String {
        let first = fold(first.split(' ').next().unwrap_or(first));
        let last = fold(last.rsplit(' ').next().unwrap_or(last));
        let domain = self.weighted(EMAIL_DOMAINS);
        for attempt in 0.. {
            let local = match (attempt, self.rng.gen_range(0..4)) {
                (0, 0) => format!("{first}.{last}"),
                (0, 1) => format!("{first}{last}"),
                (_, 2) => format!("{first}_{last}{}", self.rng.gen_range(70..=99)),
                _ => format!("{first}.{last}{}", self.rng.gen_range(1..=999)),
            };
            let email = format!("{local}@{domain}");
            if self.used_emails.insert(email.clone()) {
                return email;
            }
        }
        unreachable!("the loop above returns")
    }

    /// A mobile number of the city: +55, its DDD, 9 and eight digits.
    fn phone(&mut self, city: &City) -> String {
        loop {
            let ddd = city.ddd.choose(&mut self.rng).copied().unwrap_or(11);
            let subscriber: u32 = self.rng.gen_range(60_000_000..=99_999_999);
            let phone = format!("+55{ddd}9{subscriber:08}");
            if self.used_phones.insert(phone.clone()) {
                return phone;
            }
        }
    }

    fn push(&mut self, at: Timestamp, mut message: Map<String, Value>) {
        let sequence = self.out.len() as u64;
        message.insert(
            "messageId".into(),
            json!(format!("demo-{}-{sequence:07}", self.seed)),
        );
        message.insert(
            "timestamp".into(),
            json!(at.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        self.out.push((at, sequence, Value::Object(message)));
    }

    fn web_context(&mut self) -> Value {
        let agent = USER_AGENTS
            .choose(&mut self.rng)
            .copied()
            .unwrap_or(USER_AGENTS[0]);
        json!({"library": {"name": "analytics.js", "version": "4.1.0"}, "locale": "pt-BR", "userAgent": agent})
    }

    fn who(user_id: Option<&str>, anonymous_id: &str) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(u) = user_id {
            m.insert("userId".into(), json!(u));
        }
        m.insert("anonymousId".into(), json!(anonymous_id));
        m
    }

    fn page(
        &mut self,
        at: Timestamp,
        user_id: Option<&str>,
        anonymous_id: &str,
        name: &str,
        path: &str,
        title: &str,
    ) {
        let mut m = Self::who(user_id, anonymous_id);
        m.insert("type".into(), json!("page"));
        m.insert("name".into(), json!(name));
        m.insert(
            "properties".into(),
            json!({"path": path, "url": format!("{SITE}{path}"), "title": title}),
        );
        m.insert("context".into(), self.web_context());
        self.push(at, m);
    }

    fn track(
        &mut self,
        at: Timestamp,
        user_id: Option<&str>,
        anonymous_id: &str,
        event: &str,
        properties: Value,
    ) {
        let mut m = Self::who(user_id, anonymous_id);
        m.insert("type".into(), json!("track"));
        m.insert("event".into(), json!(event));
        m.insert("properties".into(), properties);
        m.insert("context".into(), self.web_context());
        self.push(at, m);
    }

    /// A message sent by the shop's systems (email, WhatsApp): known user, no browser.
    fn server_track(&mut self, at: Timestamp, user_id: &str, event: &str, properties: Value) {
        let mut m = Map::new();
        m.insert("type".into(), json!("track"));
        m.insert("userId".into(), json!(user_id));
        m.insert("event".into(), json!(event));
        m.insert("properties".into(), properties);
        m.insert(
            "context".into(),
            json!({"library": {"name": "ciclo-demo", "version": "1"}}),
        );
        self.push(at, m);
    }

    fn identify(
        &mut self,
        at: Timestamp,
        user_id: Option<&str>,
        anonymous_id: &str,
        traits: Value,
    ) {
        let mut m = Self::who(user_id, anonymous_id);
        m.insert("type".into(), json!("identify"));
        m.insert("traits".into(), traits);
        m.insert("context".into(), self.web_context());
        self.push(at, m);
    }

    fn pick_product(&mut self, favourite: &str) -> &'static Product {
        let pool: Vec<&'static Product> = if self.chance(0.6) {
            PRODUCTS
                .iter()
                .filter(|p| p.category == favourite)
                .collect()
        } else {
            PRODUCTS.iter().collect()
        };
        pool.choose(&mut self.rng).copied().unwrap_or(&PRODUCTS[0])
    }

    /// A browsing session: home, a category, some products; maybe a cart. Returns the end time
    /// and the products put in the cart.
    fn session(
        &mut self,
        at: Timestamp,
        user_id: Option<&str>,
        anonymous_id: &str,
        favourite: &str,
    ) -> (Timestamp, Vec<&'static Product>) {
        let mut t = at;
        if self.chance(0.6) {
            self.page(
                t,
                user_id,
                anonymous_id,
                "Home",
                "/",
                "Minha Loja | Moda, casa e beleza",
            );
            t = self.later(t, 5, 90);
        }
        let category = if self.chance(0.7) {
            favourite.to_string()
        } else {
            CATEGORIES
                .choose(&mut self.rng)
                .copied()
                .unwrap_or(favourite)
                .to_string()
        };
        let slug = slugify(&category);
        self.page(
            t,
            user_id,
            anonymous_id,
            "Categoria",
            &format!("/c/{slug}"),
            &format!("{category} | Minha Loja"),
        );
        t = self.later(t, 10, 120);
        let mut cart = Vec::new();
        let views = self.rng.gen_range(0..=3);
        for _ in 0..views {
            let p = self.pick_product(favourite);
            self.product_view(t, user_id, anonymous_id, p);
            t = self.later(t, 15, 240);
            if self.chance(0.2) {
                self.track(
                    t,
                    user_id,
                    anonymous_id,
                    "Added to Cart",
                    product_properties(p, 1),
                );
                cart.push(p);
                t = self.later(t, 5, 60);
            }
        }
        (t, cart)
    }

    fn product_view(
        &mut self,
        at: Timestamp,
        user_id: Option<&str>,
        anonymous_id: &str,
        p: &Product,
    ) {
        let path = format!("/p/{}", slugify(p.name));
        self.page(
            at,
            user_id,
            anonymous_id,
            "Produto",
            &path,
            &format!("{} | Minha Loja", p.name),
        );
        self.track(
            at + Duration::seconds(1),
            user_id,
            anonymous_id,
            "Product Viewed",
            product_properties(p, 1),
        );
    }

    fn traits(&self, person: &Person, tags: &[&str]) -> Value {
        let mut traits = json!({
            "firstName": person.first_name,
            "lastName": person.last_name,
            "email": person.email,
            "phone": person.phone_written,
            "birthday": person.birthday,
            "address": {"city": person.city.name, "state": person.city.state, "country": "BR"},
            "tags": tags,
            "acquisition_channel": person.acquisition,
            "newsletter_opt_in": person.newsletter,
            "whatsapp_opt_in": person.whatsapp_opt_in,
            "locale": "pt-BR",
            "time_zone": person.city.time_zone,
        });
        if let (Some(w), Some(obj)) = (&person.whatsapp, traits.as_object_mut()) {
            obj.insert("whatsapp".into(), json!(w));
        }
        traits
    }

    fn customer_story(&mut self, person: &Person) {
        let user = person.user_id.as_str();
        let mut tags: Vec<&str> = Vec::new();
        if person.newsletter {
            tags.push("newsletter");
        }
        if person.whatsapp_opt_in {
            tags.push("whatsapp");
        }
        if person.orders >= 5 {
            tags.push("vip");
        }
        tags.push(match person.favourite_category {
            "Vestuário" | "Calçados" | "Acessórios" => "moda",
            "Casa" => "casa",
            "Beleza" => "beleza",
            _ => "esporte",
        });
        let traits = self.traits(person, &tags);
        let signup = person.signup;
        let mut device = person.device.clone();

        let path: f64 = self.rng.gen();
        if path < 0.25 {
            // Browsed anonymously for a while, then signed up on the same browser: the anonymous
            // profile becomes the customer's.
            let sessions = self.rng.gen_range(1..=3);
            for _ in 0..sessions {
                let at = self.between(signup - Duration::days(30), signup - Duration::hours(1));
                self.session(at, None, &device, person.favourite_category);
            }
            self.page(
                signup - Duration::seconds(30),
                None,
                &device,
                "Cadastro",
                "/cadastro",
                "Crie sua conta | Minha Loja",
            );
            self.identify(signup, Some(user), &device, traits.clone());
        } else if path < 0.35 {
            // A newsletter lead known only by email, who signs up later on another device: the
            // lead and the new browser's profile merge into the customer.
            let lead_at = self.between(signup - Duration::days(90), signup - Duration::days(2));
            self.page(
                lead_at,
                None,
                &device,
                "Home",
                "/",
                "Minha Loja | Moda, casa e beleza",
            );
            let lead_traits = json!({"email": person.email, "firstName": person.first_name, "tags": ["newsletter", "lead"]});
            self.identify(lead_at + Duration::seconds(40), None, &device, lead_traits);
            device = self.uuid();
            let minutes = self.rng.gen_range(5..60);
            let browse_at = signup - Duration::minutes(minutes);
            self.session(browse_at, None, &device, person.favourite_category);
            self.identify(signup, Some(user), &device, traits.clone());
        } else {
            self.page(
                signup - Duration::seconds(45),
                None,
                &device,
                "Cadastro",
                "/cadastro",
                "Crie sua conta | Minha Loja",
            );
            self.identify(signup, Some(user), &device, traits.clone());
        }
        if person.whatsapp_opt_in {
            self.server_track(
                signup + Duration::seconds(5),
                user,
                "Message Sent",
                json!({"channel": "whatsapp", "template": "boas_vindas"}),
            );
        }

        // A second device: anonymous browsing, then a login that links it.
        if self.chance(0.15) {
            let other = self.uuid();
            let at = self.between(signup + Duration::days(1), self.now);
            let (end, _) = self.session(at, None, &other, person.favourite_category);
            let login = self.later(end, 10, 60);
            self.identify(login, Some(user), &other, json!({"email": person.email}));
        }

        // Sessions without an order; a cart left behind may get a WhatsApp reminder.
        for _ in 0..person.sessions {
            let at = self.between(signup, self.now);
            let (end, cart) = self.session(at, Some(user), &device, person.favourite_category);
            if !cart.is_empty() && person.whatsapp_opt_in && self.chance(0.5) {
                let sent = self.later(end, 3_600, 6 * 3_600);
                self.server_track(
                    sent,
                    user,
                    "Message Sent",
                    json!({"channel": "whatsapp", "template": "carrinho_abandonado"}),
                );
                if self.chance(0.7) {
                    let read = self.later(sent, 60, 7_200);
                    self.server_track(
                        read,
                        user,
                        "Message Read",
                        json!({"channel": "whatsapp", "template": "carrinho_abandonado"}),
                    );
                }
            }
        }

        // Orders.
        let mut times: Vec<Timestamp> = (0..person.orders)
            .map(|_| self.between(signup + Duration::minutes(2), self.now))
            .collect();
        times.sort();
        for (number, at) in times.into_iter().enumerate() {
            self.order(person, &device, at, number);
        }

        // Email campaigns to newsletter subscribers.
        if person.newsletter {
            let mut k = 0;
            loop {
                let sent =
                    self.start + Duration::days(CAMPAIGN_EVERY_DAYS * k) + Duration::hours(10);
                k += 1;
                if sent >= self.latest() {
                    break;
                }
                if sent < signup || !self.chance(0.3) {
                    continue;
                }
                let (id, name, subject) = campaign(sent, k);
                let opened = self.later(sent, 300, 48 * 3_600);
                self.server_track(opened, user, "Email Opened", json!({"channel": "email", "campaign_id": id, "campaign_name": name, "subject": subject}));
                if self.chance(0.25) {
                    let clicked = self.later(opened, 5, 600);
                    let p = self.pick_product(person.favourite_category);
                    let url = format!(
                        "{SITE}/p/{}?utm_source=email&utm_campaign={id}",
                        slugify(p.name)
                    );
                    self.server_track(clicked, user, "Email Clicked", json!({"channel": "email", "campaign_id": id, "campaign_name": name, "url": url}));
                }
            }
        }

        // WhatsApp promotions to those who opted in.
        if person.whatsapp_opt_in {
            let mut k = 0;
            loop {
                let sent = self.start
                    + Duration::days(WHATSAPP_PROMO_EVERY_DAYS * k + 7)
                    + Duration::hours(11);
                k += 1;
                if sent >= self.latest() {
                    break;
                }
                if sent < signup {
                    continue;
                }
                let template = format!("promo_{}", sent.format("%Y_%m"));
                self.server_track(
                    sent,
                    user,
                    "Message Sent",
                    json!({"channel": "whatsapp", "template": template}),
                );
                if self.chance(0.8) {
                    let read = self.later(sent, 30, 12 * 3_600);
                    self.server_track(
                        read,
                        user,
                        "Message Read",
                        json!({"channel": "whatsapp", "template": template}),
                    );
                }
            }
        }
    }

    fn order(&mut self, person: &Person, device: &str, at: Timestamp, number: usize) {
        let user = person.user_id.as_str();
        let mut t = at;
        let lines = self.rng.gen_range(1..=3);
        let mut items: Vec<(&'static Product, i64)> = Vec::new();
        for _ in 0..lines {
            let p = self.pick_product(person.favourite_category);
            if items.iter().any(|(q, _)| q.id == p.id) {
                continue;
            }
            let quantity = if self.chance(0.15) { 2 } else { 1 };
            self.product_view(t, Some(user), device, p);
            t = self.later(t, 20, 300);
            self.track(
                t,
                Some(user),
                device,
                "Added to Cart",
                product_properties(p, quantity),
            );
            t = self.later(t, 5, 120);
            items.push((p, quantity));
        }
        let order_id = format!(
            "PED-{}-{}-{:02}",
            self.seed,
            &person.user_id[4..],
            number + 1
        );
        let subtotal: i64 = items.iter().map(|(p, q)| p.price_minor * q).sum();
        let discount = if number == 0 && self.chance(0.3) {
            subtotal / 10
        } else {
            0
        };
        let shipping = if subtotal >= 19_900 { 0 } else { 1_990 };
        let total = subtotal - discount + shipping;
        let products: Vec<Value> = items
            .iter()
            .map(|(p, q)| {
                json!({"product_id": p.id, "sku": p.sku, "name": p.name, "category": p.category,
                       "price": money(p.price_minor), "quantity": q})
            })
            .collect();
        self.page(
            t,
            Some(user),
            device,
            "Checkout",
            "/checkout",
            "Finalizar compra | Minha Loja",
        );
        self.track(t, Some(user), device, "Checkout Started", json!({"order_id": order_id, "value": money(subtotal), "currency": "BRL", "products": products}));
        t = self.later(t, 30, 400);
        let payment = self.weighted(PAYMENT_METHODS);
        let mut properties = json!({
            "order_id": order_id,
            "total": money(total),
            "revenue": money(subtotal - discount),
            "shipping": money(shipping),
            "discount": money(discount),
            "currency": "BRL",
            "payment_method": payment,
            "products": products,
        });
        if discount > 0 {
            properties["coupon"] = json!("BEMVINDO10");
        }
        self.track(t, Some(user), device, "Order Completed", properties);
        if person.whatsapp_opt_in {
            let sent = self.later(t, 10, 120);
            self.server_track(sent, user, "Message Sent", json!({"channel": "whatsapp", "template": "confirmacao_pedido", "order_id": order_id}));
            if self.chance(0.9) {
                let read = self.later(sent, 30, 3 * 3_600);
                self.server_track(read, user, "Message Read", json!({"channel": "whatsapp", "template": "confirmacao_pedido", "order_id": order_id}));
            }
        }
    }
}

/// A campaign's id, name and subject, after the commercial calendar of its month.
fn campaign(sent: Timestamp, number: i64) -> (String, String, String) {
    let (name, subject) = match (sent.month(), sent.day()) {
        (11, 15..) => ("Black Friday", "Black Friday: até 50% off em toda a loja"),
        (12, ..=24) => ("Natal", "Presentes de Natal para quem você ama"),
        (5, ..=14) => ("Dia das Mães", "Dia das Mães: presentes com carinho"),
        (6, ..=12) => ("Dia dos Namorados", "Dia dos Namorados: presentes a dois"),
        (8, ..=14) => ("Dia dos Pais", "Dia dos Pais: ele merece"),
        (3, 10..=20) => ("Dia do Consumidor", "Semana do Consumidor: frete grátis"),
        (1, _) | (2, _) => ("Liquidação de Verão", "Liquidação de verão: últimas peças"),
        _ => ("Novidades", "Chegou coisa nova na Minha Loja"),
    };
    (
        format!("cmp-{}-{number:03}", sent.format("%Y%m")),
        name.to_string(),
        subject.to_string(),
    )
}

fn product_properties(p: &Product, quantity: i64) -> Value {
    json!({"product_id": p.id, "sku": p.sku, "name": p.name, "category": p.category,
           "price": money(p.price_minor), "quantity": quantity, "currency": "BRL",
           "url": format!("{SITE}/p/{}", slugify(p.name))})
}

/// Centavos as a decimal number of reais.
fn money(minor: i64) -> Value {
    json!((minor as f64) / 100.0)
}

/// `+5511987654321` → `(11) 98765-4321`.
fn national_format(e164: &str) -> String {
    let digits = &e164[3..];
    format!("({}) {}-{}", &digits[..2], &digits[2..7], &digits[7..])
}

/// Lower case without accents: for email addresses and URLs.
fn fold(text: &str) -> String {
    text.chars()
        .filter_map(|c| {
            let c = c.to_lowercase().next().unwrap_or(c);
            Some(match c {
                'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
                'é' | 'ê' | 'è' | 'ë' => 'e',
                'í' | 'î' | 'ì' | 'ï' => 'i',
                'ó' | 'ô' | 'õ' | 'ò' | 'ö' => 'o',
                'ú' | 'û' | 'ù' | 'ü' => 'u',
                'ç' => 'c',
                c if c.is_ascii_alphanumeric() => c,
                _ => return None,
            })
        })
        .collect()
}

fn slugify(text: &str) -> String {
    text.split_whitespace()
        .map(fold)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciclo_domain::contact::{Email, Phone};
    use ciclo_domain::event::{parse_message, EventType};
    use ciclo_domain::order::order_from_properties;
    use std::collections::HashMap;

    fn now() -> Timestamp {
        chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    fn small() -> DemoOptions {
        DemoOptions {
            seed: 7,
            customers: 300,
            now: now(),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_data() {
        assert_eq!(generate(&small()), generate(&small()));
        let other = generate(&DemoOptions { seed: 8, ..small() });
        assert_ne!(generate(&small()), other);
    }

    #[test]
    fn message_ids_do_not_depend_on_the_clock() {
        let ids = |now: Timestamp| -> HashSet<String> {
            generate(&DemoOptions { now, ..small() })
                .iter()
                .map(|m| m["messageId"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(ids(now()), ids(now() + Duration::days(40)));
    }

    #[test]
    fn every_message_is_valid_segment_and_in_the_last_two_years() {
        let options = small();
        let messages = generate(&options);
        let mut ids = HashSet::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut channels: HashMap<String, usize> = HashMap::new();
        let mut previous = None;
        for raw in &messages {
            let m = parse_message(raw, None, options.now, "unused")
                .unwrap_or_else(|e| panic!("{e:?} in {raw}"));
            assert!(
                ids.insert(m.message_id.clone()),
                "duplicate id {}",
                m.message_id
            );
            assert!(
                m.timestamp <= options.now
                    && m.timestamp >= options.now - Duration::days(HISTORY_DAYS + 1),
                "{raw}"
            );
            assert!(previous.is_none_or(|p| p <= m.timestamp), "oldest first");
            previous = Some(m.timestamp);
            *channels.entry(m.channel.clone()).or_default() += 1;
            let key = match m.event_type {
                EventType::Track => m.name.clone().unwrap_or_default(),
                other => other.as_str().to_string(),
            };
            if key == "Order Completed" {
                let order = order_from_properties(&m.properties, "BRL").unwrap();
                assert!(order.total_minor > 0 && !order.items.is_empty());
            }
            *names.entry(key).or_default() += 1;
        }
        for expected in [
            "identify",
            "page",
            "Product Viewed",
            "Added to Cart",
            "Checkout Started",
            "Order Completed",
            "Email Opened",
            "Email Clicked",
            "Message Sent",
            "Message Read",
        ] {
            assert!(
                names.get(expected).copied().unwrap_or(0) > 0,
                "no {expected}: {names:?}"
            );
        }
        for channel in ["web", "email", "whatsapp"] {
            assert!(
                channels.get(channel).copied().unwrap_or(0) > 0,
                "no {channel} events: {channels:?}"
            );
        }
    }

    #[test]
    fn contacts_are_valid_and_phones_carry_the_city_ddd() {
        let messages = generate(&small());
        let mut people = 0;
        for m in messages
            .iter()
            .filter(|m| m["type"] == "identify" && m["traits"]["phone"].is_string())
        {
            let traits = &m["traits"];
            Email::parse(traits["email"].as_str().unwrap()).unwrap();
            let phone = Phone::parse(traits["phone"].as_str().unwrap(), "BR").unwrap();
            let city = CITIES
                .iter()
                .find(|c| c.name == traits["address"]["city"])
                .unwrap();
            let ddd: u16 = phone.as_str()[3..5].parse().unwrap();
            assert!(city.ddd.contains(&ddd), "{phone} in {}", city.name);
            assert_eq!(&phone.as_str()[5..6], "9", "mobiles start with 9");
            assert_eq!(phone.as_str().len(), 14);
            if let Some(w) = traits["whatsapp"].as_str() {
                Phone::parse(w, "BR").unwrap();
            }
            assert!(ciclo_domain::customer::is_time_zone(
                traits["time_zone"].as_str().unwrap()
            ));
            people += 1;
        }
        assert!(
            people >= 300,
            "every customer is identified with full traits: {people}"
        );
    }

    #[test]
    fn the_full_data_set_has_the_promised_size() {
        let messages = generate(&DemoOptions::new(now()));
        let users: HashSet<&str> = messages
            .iter()
            .filter_map(|m| m["userId"].as_str())
            .collect();
        assert_eq!(users.len(), DEFAULT_CUSTOMERS);
        let orders = messages
            .iter()
            .filter(|m| m["event"] == "Order Completed")
            .count();
        assert!((3_000..8_000).contains(&orders), "{orders} orders");
        assert!(
            (50_000..200_000).contains(&messages.len()),
            "{} messages",
            messages.len()
        );
        let anonymous_only = messages.iter().filter(|m| m["userId"].is_null()).count();
        eprintln!(
            "{} messages, {orders} orders, {anonymous_only} anonymous",
            messages.len()
        );
        assert!(
            anonymous_only > 1_000,
            "{anonymous_only} anonymous messages"
        );
    }

    #[test]
    fn catalogue_and_reference_data() {
        assert_eq!(PRODUCTS.len(), 40);
        assert!(PRODUCTS
            .iter()
            .all(|p| CATEGORIES.contains(&p.category) && p.price_minor > 0));
        let ids: HashSet<&str> = PRODUCTS.iter().map(|p| p.id).collect();
        assert_eq!(ids.len(), 40);
        assert_eq!(fold("João Gonçalves"), "joaogoncalves");
        assert_eq!(slugify("Óculos de Sol Retrô"), "oculos-de-sol-retro");
        assert_eq!(national_format("+5511987654321"), "(11) 98765-4321");
    }
}
