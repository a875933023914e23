-- 0001: the whole initial schema (the SQLite adapter's 0001 is the same version).
--
-- Conventions:
-- * identifiers, keys and anything compared or sorted byte-wise are `COLLATE "C"`, so that
--   keyset cursors, prefix searches and ORDER BY agree with each other and with SQLite whatever
--   the database's default collation is, and so that btree prefix scans work without
--   text_pattern_ops;
-- * every table but `workspaces` and `operators` (which are global by nature) carries
--   `workspace_id`, first in every key and index, and every query filters on it;
-- * money is BIGINT in minor units, time is timestamptz, free-form data is jsonb;
-- * no foreign keys: the adapter deletes dependants explicitly (see delete_customer), and FK
--   checks on `events` would cost an index probe per ingested event.

CREATE TABLE workspaces (
    id              text COLLATE "C" PRIMARY KEY,
    name            text NOT NULL,
    write_key       text COLLATE "C" NOT NULL,
    locale          text NOT NULL,
    time_zone       text NOT NULL,
    currency        text NOT NULL,
    default_region  text NOT NULL,
    created_at      timestamptz NOT NULL,
    CONSTRAINT workspaces_write_key UNIQUE (write_key)
);

-- Operators sign in once and may belong to several workspaces, so they are global.
CREATE TABLE operators (
    id              text COLLATE "C" PRIMARY KEY,
    -- Stored in lower case by the adapter.
    email           text COLLATE "C" NOT NULL,
    name            text NOT NULL,
    password_hash   text NOT NULL,
    locale          text,
    active          boolean NOT NULL,
    created_at      timestamptz NOT NULL,
    CONSTRAINT operators_email UNIQUE (email)
);

CREATE TABLE memberships (
    workspace_id    text COLLATE "C" NOT NULL,
    operator_id     text COLLATE "C" NOT NULL,
    role            text NOT NULL,
    PRIMARY KEY (workspace_id, operator_id)
);
CREATE INDEX memberships_operator ON memberships (operator_id);

CREATE TABLE sessions (
    token_hash      text COLLATE "C" PRIMARY KEY,
    workspace_id    text COLLATE "C" NOT NULL,
    operator_id     text COLLATE "C" NOT NULL,
    csrf_token      text NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE api_keys (
    workspace_id    text COLLATE "C" NOT NULL,
    id              text COLLATE "C" NOT NULL,
    name            text NOT NULL,
    role            text NOT NULL,
    prefix          text NOT NULL,
    key_hash        text COLLATE "C" NOT NULL,
    created_at      timestamptz NOT NULL,
    last_used_at    timestamptz,
    revoked_at      timestamptz,
    PRIMARY KEY (workspace_id, id),
    CONSTRAINT api_keys_key_hash UNIQUE (key_hash)
);
CREATE INDEX api_keys_newest ON api_keys (workspace_id, created_at DESC, id DESC);

-- A profile is two rows with the same key. `customers` holds what people and identify calls
-- change, with the indexes of search and filters; `customer_activity` holds what every ingested
-- event or order changes. Ingestion rewrites the activity row of every profile an event touches,
-- and a new last_seen_at is a change of an indexed column, which rules out a HOT update: each
-- index of the table gets an entry for the new row version, whatever columns it covers. Apart,
-- that is three btree entries for a narrow row, instead of every index of the profile, the GIN
-- search index with a dozen lexemes per profile among them, for a wide one. Both tables leave
-- room on their pages for HOT updates.
CREATE TABLE customers (
    workspace_id        text COLLATE "C" NOT NULL,
    id                  text COLLATE "C" NOT NULL,
    name                text,
    email               text COLLATE "C",
    phone               text COLLATE "C",
    whatsapp            text COLLATE "C",
    birthday            date,
    locale              text,
    time_zone           text,
    city                text,
    state               text,
    country             text,
    tags                text[] NOT NULL DEFAULT '{}',
    traits              jsonb NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    merged_into         text COLLATE "C",
    -- Derived by the adapter from `name`: the lower-cased name ('' when none), the key of the
    -- Name sort and of its cursor.
    sort_name           text COLLATE "C" NOT NULL DEFAULT '',
    -- Derived by the adapter: name words, the email and phone digit suffixes, for prefix search
    -- through the GIN index (see search.rs).
    search              tsvector NOT NULL DEFAULT ''::tsvector,
    -- Derived by the adapter: tags and city lower-cased (by ciclo, not by the database, whose
    -- lower() depends on its locale), for the case-insensitive filters.
    tag_keys            text[] COLLATE "C" NOT NULL DEFAULT '{}',
    city_key            text COLLATE "C",
    PRIMARY KEY (workspace_id, id)
) WITH (fillfactor = 90);

CREATE TABLE customer_activity (
    workspace_id        text COLLATE "C" NOT NULL,
    id                  text COLLATE "C" NOT NULL,
    first_seen_at       timestamptz NOT NULL,
    last_seen_at        timestamptz NOT NULL,
    orders_count        bigint NOT NULL DEFAULT 0,
    total_spent_minor   bigint NOT NULL DEFAULT 0,
    first_order_at      timestamptz,
    last_order_at       timestamptz,
    PRIMARY KEY (workspace_id, id)
) WITH (fillfactor = 90);

-- Keyset pagination, one index per CustomerSort (the primary key of `customers` serves Newest).
-- Backward scans serve the descending sorts. Merged profiles are few, so the list filters them
-- out while walking the index (the activity sorts join `customers` for merged_into).
CREATE INDEX customer_activity_last_seen ON customer_activity (workspace_id, last_seen_at, id);
CREATE INDEX customer_activity_total_spent ON customer_activity (workspace_id, total_spent_minor, id);
CREATE INDEX customers_sort_name ON customers (workspace_id, sort_name, id) WHERE merged_into IS NULL;
CREATE INDEX customers_merged_into ON customers (workspace_id, merged_into) WHERE merged_into IS NOT NULL;
CREATE INDEX customers_search ON customers USING gin (search);
-- Prefix queries ('zeca.prado1':*) are estimated from the most common lexemes; with the default
-- statistics target a rare prefix looks as common as 'a':*, and the planner walks a sort index
-- through the whole table instead of asking the GIN index (135 ms against 2 ms at 1M profiles).
ALTER TABLE customers ALTER COLUMN search SET STATISTICS 1000;
CREATE INDEX customers_tags ON customers USING gin (tag_keys);
CREATE INDEX customers_city ON customers (workspace_id, city_key) WHERE merged_into IS NULL;

CREATE TABLE identities (
    workspace_id    text COLLATE "C" NOT NULL,
    kind            text COLLATE "C" NOT NULL,
    value           text COLLATE "C" NOT NULL,
    customer_id     text COLLATE "C" NOT NULL,
    source          text NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, kind, value)
);
CREATE INDEX identities_customer ON identities (workspace_id, customer_id);

CREATE TABLE merges (
    workspace_id    text COLLATE "C" NOT NULL,
    id              text COLLATE "C" NOT NULL,
    winner_id       text COLLATE "C" NOT NULL,
    loser_id        text COLLATE "C" NOT NULL,
    via_kind        text,
    via_value       text,
    message_id      text,
    source          text NOT NULL,
    actor           text,
    -- The CustomerPatch that was filled, encoded so that "cleared" and "untouched" differ.
    filled          jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    undone_at       timestamptz,
    undone_by       text,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX merges_winner ON merges (workspace_id, winner_id);
CREATE INDEX merges_loser ON merges (workspace_id, loser_id);

CREATE TABLE identity_conflicts (
    workspace_id    text COLLATE "C" NOT NULL,
    id              text COLLATE "C" NOT NULL,
    customer_a      text COLLATE "C" NOT NULL,
    customer_b      text COLLATE "C" NOT NULL,
    via_kind        text NOT NULL,
    via_value       text NOT NULL,
    message_id      text,
    created_at      timestamptz NOT NULL,
    resolution      text,
    resolved_at     timestamptz,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX identity_conflicts_newest ON identity_conflicts (workspace_id, created_at DESC, id DESC);
CREATE INDEX identity_conflicts_a ON identity_conflicts (workspace_id, customer_a);
CREATE INDEX identity_conflicts_b ON identity_conflicts (workspace_id, customer_b);

-- The busiest table: only two indexes, the de-duplication key (as primary key) and the
-- timeline.
CREATE TABLE events (
    workspace_id    text COLLATE "C" NOT NULL,
    message_id      text COLLATE "C" NOT NULL,
    id              text COLLATE "C" NOT NULL,
    customer_id     text COLLATE "C" NOT NULL,
    event_type      text NOT NULL,
    name            text,
    channel         text NOT NULL,
    source          text NOT NULL,
    user_id         text,
    anonymous_id    text,
    properties      jsonb NOT NULL,
    context         jsonb NOT NULL,
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    CONSTRAINT events_message_id PRIMARY KEY (workspace_id, message_id)
);
CREATE INDEX events_timeline ON events (workspace_id, customer_id, occurred_at DESC, id DESC);

CREATE TABLE orders (
    workspace_id    text COLLATE "C" NOT NULL,
    id              text COLLATE "C" NOT NULL,
    customer_id     text COLLATE "C" NOT NULL,
    external_id     text COLLATE "C" NOT NULL,
    total_minor     bigint NOT NULL,
    currency        text NOT NULL,
    placed_at       timestamptz NOT NULL,
    source          text NOT NULL,
    event_id        text COLLATE "C",
    PRIMARY KEY (workspace_id, id),
    CONSTRAINT orders_external_id UNIQUE (workspace_id, external_id)
);
CREATE INDEX orders_customer ON orders (workspace_id, customer_id, placed_at DESC, id DESC);

CREATE TABLE order_items (
    workspace_id    text COLLATE "C" NOT NULL,
    order_id        text COLLATE "C" NOT NULL,
    item_index      integer NOT NULL,
    product_id      text,
    sku             text,
    name            text,
    category        text,
    price_minor     bigint NOT NULL,
    quantity        bigint NOT NULL,
    PRIMARY KEY (workspace_id, order_id, item_index)
);

CREATE TABLE imports (
    workspace_id    text COLLATE "C" NOT NULL,
    id              text COLLATE "C" NOT NULL,
    kind            text NOT NULL,
    file_name       text NOT NULL,
    status          text NOT NULL,
    rows_total      bigint NOT NULL,
    rows_created    bigint NOT NULL,
    rows_updated    bigint NOT NULL,
    rows_unchanged  bigint NOT NULL,
    rows_rejected   bigint NOT NULL,
    rejected        jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    actor           text,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX imports_newest ON imports (workspace_id, created_at DESC, id DESC);
