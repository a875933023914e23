-- 0001 init: the first schema (accounts, customers, identity graph, events, orders, imports).
--
-- Conventions (see src/lib.rs):
--   * timestamps are INTEGER unix microseconds (UTC); dates are TEXT 'YYYY-MM-DD';
--   * money is INTEGER minor units;
--   * lists and objects are JSON text;
--   * foreign keys are checked at commit (DEFERRABLE INITIALLY DEFERRED), so that a use case
--     may write related rows in any order inside one transaction (except an event, which needs
--     its profile written first: see events);
--   * every table but workspaces and operators (which are global) carries workspace_id (events
--     and the two derived search tables its integer workspace_seq), and its keys and indexes start with
--     it, so no query reads across workspaces; the exceptions are the lookups that find the
--     workspace in the first place (session token hash, API key hash, write key) and an
--     operator's memberships.

CREATE TABLE workspaces (
    -- A compact key for the derived search tables (see customer_search_terms).
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    write_key TEXT NOT NULL,
    locale TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    currency TEXT NOT NULL,
    default_region TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT workspaces_id UNIQUE (id),
    CONSTRAINT workspaces_write_key UNIQUE (write_key)
);

CREATE TABLE operators (
    id TEXT NOT NULL PRIMARY KEY,
    -- Always lower case (the adapter lowers it), so the unique index is case-insensitive.
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    locale TEXT,
    active INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT operators_email UNIQUE (email)
);

CREATE TABLE memberships (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) DEFERRABLE INITIALLY DEFERRED,
    operator_id TEXT NOT NULL REFERENCES operators (id) DEFERRABLE INITIALLY DEFERRED,
    role TEXT NOT NULL,
    PRIMARY KEY (workspace_id, operator_id)
) WITHOUT ROWID;
CREATE INDEX memberships_by_operator ON memberships (operator_id, workspace_id);

CREATE TABLE sessions (
    token_hash TEXT NOT NULL PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) DEFERRABLE INITIALLY DEFERRED,
    operator_id TEXT NOT NULL REFERENCES operators (id) DEFERRABLE INITIALLY DEFERRED,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_operator ON sessions (workspace_id, operator_id);

CREATE TABLE api_keys (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) DEFERRABLE INITIALLY DEFERRED,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER,
    PRIMARY KEY (workspace_id, id),
    CONSTRAINT api_keys_key_hash UNIQUE (key_hash)
);
CREATE INDEX api_keys_newest ON api_keys (workspace_id, created_at DESC, id DESC);

CREATE TABLE customers (
    -- The rowid, made explicit so that it never changes (VACUUM may renumber implicit rowids):
    -- the derived search tables refer to profiles by it.
    seq INTEGER PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) DEFERRABLE INITIALLY DEFERRED,
    id TEXT NOT NULL,
    name TEXT,
    email TEXT,
    phone TEXT,
    whatsapp TEXT,
    birthday TEXT,
    locale TEXT,
    time_zone TEXT,
    city TEXT,
    state TEXT,
    country TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    traits TEXT NOT NULL DEFAULT '{}',
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    orders_count INTEGER NOT NULL DEFAULT 0,
    total_spent_minor INTEGER NOT NULL DEFAULT 0,
    first_order_at INTEGER,
    last_order_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    merged_into TEXT,
    -- Derived columns, computed by the adapter from the fields above on every write:
    -- the folded name (lower case, accents and punctuation removed) for the Name sort,
    sort_name TEXT NOT NULL DEFAULT '',
    -- the folded city for the city filter,
    city_key TEXT,
    -- and every search term of the profile, each preceded by U+001F, to check a search on the
    -- row itself when walking a sort index (the same terms are in customer_search_terms).
    search_text TEXT NOT NULL DEFAULT '',
    CONSTRAINT customers_id UNIQUE (workspace_id, id)
);
-- One index per sort, holding only surviving profiles (the lists never show merged ones).
CREATE INDEX customers_by_last_seen ON customers (workspace_id, last_seen_at, id) WHERE merged_into IS NULL;
CREATE INDEX customers_by_total_spent ON customers (workspace_id, total_spent_minor, id) WHERE merged_into IS NULL;
-- The name index carries search_text: a search sorted by name walks it checking each entry without
-- reading the row, since name matches cluster where the name sorts and the walk may pass many
-- rows before reaching them.
CREATE INDEX customers_by_name ON customers (workspace_id, sort_name, id, search_text) WHERE merged_into IS NULL;
CREATE INDEX customers_by_city ON customers (workspace_id, city_key) WHERE merged_into IS NULL;
CREATE INDEX customers_merged_into ON customers (workspace_id, merged_into) WHERE merged_into IS NOT NULL;

-- The two tables below are derived from customers rows and kept in step by the adapter, which
-- deletes a profile's rows by their full key (it knows the old terms from search_text and tags).
-- They refer to the workspace and the profile by their integer seq rather than their text ids:
-- a row is then a third of the size, and these tables hold several rows per profile. No foreign
-- key, so that deleting a customer needs no index on customer_seq here.
--
-- Prefix search over surviving profiles: one row per term, a term being 'n:' and a suffix of the
-- folded name that starts at a word, 'e:' and the email, or 'p:' and the digits of a phone (with
-- and without the country code, and without the area code where there is one).
CREATE TABLE customer_search_terms (
    workspace_seq INTEGER NOT NULL,
    term TEXT NOT NULL,
    customer_seq INTEGER NOT NULL,
    PRIMARY KEY (workspace_seq, term, customer_seq)
) WITHOUT ROWID;

-- Tags of surviving profiles, for the tag filter.
CREATE TABLE customer_tags (
    workspace_seq INTEGER NOT NULL,
    tag TEXT NOT NULL,
    customer_seq INTEGER NOT NULL,
    PRIMARY KEY (workspace_seq, tag, customer_seq)
) WITHOUT ROWID;

CREATE TABLE identities (
    workspace_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, kind, value),
    FOREIGN KEY (workspace_id, customer_id) REFERENCES customers (workspace_id, id) DEFERRABLE INITIALLY DEFERRED
) WITHOUT ROWID;
CREATE INDEX identities_by_customer ON identities (workspace_id, customer_id);

CREATE TABLE merges (
    workspace_id TEXT NOT NULL,
    id TEXT NOT NULL,
    winner_id TEXT NOT NULL,
    loser_id TEXT NOT NULL,
    via_kind TEXT,
    via_value TEXT,
    message_id TEXT,
    source TEXT NOT NULL,
    actor TEXT,
    filled TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    undone_at INTEGER,
    undone_by TEXT,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, winner_id) REFERENCES customers (workspace_id, id) DEFERRABLE INITIALLY DEFERRED,
    FOREIGN KEY (workspace_id, loser_id) REFERENCES customers (workspace_id, id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX merges_by_winner ON merges (workspace_id, winner_id);
CREATE INDEX merges_by_loser ON merges (workspace_id, loser_id);

CREATE TABLE identity_conflicts (
    workspace_id TEXT NOT NULL,
    id TEXT NOT NULL,
    customer_a TEXT NOT NULL,
    customer_b TEXT NOT NULL,
    via_kind TEXT NOT NULL,
    via_value TEXT NOT NULL,
    message_id TEXT,
    created_at INTEGER NOT NULL,
    resolution TEXT,
    resolved_at INTEGER,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, customer_a) REFERENCES customers (workspace_id, id) DEFERRABLE INITIALLY DEFERRED,
    FOREIGN KEY (workspace_id, customer_b) REFERENCES customers (workspace_id, id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX identity_conflicts_newest ON identity_conflicts (workspace_id, created_at DESC, id DESC);
CREATE INDEX identity_conflicts_by_a ON identity_conflicts (workspace_id, customer_a);
CREATE INDEX identity_conflicts_by_b ON identity_conflicts (workspace_id, customer_b);

-- The hottest table. It refers to the workspace and the profile by their integer seq, like the
-- derived search tables, rather than by their text ids: every index entry then holds two small
-- integers where it held some 60 bytes of ids, so the indexes are about half the size and an
-- ingested event dirties fewer pages. The adapter maps ids to seqs (ids stay the public API). No
-- foreign key (it would need the text ids): the adapter only writes an event whose profile it
-- found, and deleting a profile deletes its events. No index on id: nothing looks an event up by
-- id, and every index costs ingestion throughput. The rowid keeps insertion order.
CREATE TABLE events (
    workspace_seq INTEGER NOT NULL,
    customer_seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    name TEXT,
    channel TEXT NOT NULL,
    source TEXT NOT NULL,
    user_id TEXT,
    anonymous_id TEXT,
    properties TEXT NOT NULL,
    context TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    CONSTRAINT events_message_id UNIQUE (workspace_seq, message_id)
);
-- The timeline index orders a profile's events by time only: with the event id as well, every
-- entry would be twice as long, and this index is where ingestion writes at random (one entry per
-- event, at its profile's place). Events of the same microsecond are put in id order when read,
-- a sort of each run of equal times (SQLite's "temp b-tree for right part of order by").
CREATE INDEX events_timeline ON events (workspace_seq, customer_seq, timestamp DESC);

CREATE TABLE orders (
    workspace_id TEXT NOT NULL,
    id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    external_id TEXT NOT NULL,
    total_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    placed_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    event_id TEXT,
    PRIMARY KEY (workspace_id, id),
    CONSTRAINT orders_external_id UNIQUE (workspace_id, external_id),
    FOREIGN KEY (workspace_id, customer_id) REFERENCES customers (workspace_id, id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX orders_by_customer ON orders (workspace_id, customer_id, placed_at DESC, id DESC);

CREATE TABLE order_items (
    workspace_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    product_id TEXT,
    sku TEXT,
    name TEXT,
    category TEXT,
    price_minor INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, order_id, position),
    FOREIGN KEY (workspace_id, order_id) REFERENCES orders (workspace_id, id) DEFERRABLE INITIALLY DEFERRED
) WITHOUT ROWID;

CREATE TABLE imports (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) DEFERRABLE INITIALLY DEFERRED,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    file_name TEXT NOT NULL,
    status TEXT NOT NULL,
    rows_total INTEGER NOT NULL,
    rows_created INTEGER NOT NULL,
    rows_updated INTEGER NOT NULL,
    rows_unchanged INTEGER NOT NULL,
    rows_rejected INTEGER NOT NULL,
    rejected TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    actor TEXT,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX imports_newest ON imports (workspace_id, created_at DESC, id DESC);
