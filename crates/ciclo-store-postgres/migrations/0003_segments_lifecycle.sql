-- Segments and lists, their members and count history; the evaluation queue; computed
-- attributes (lifecycle stage, scores) with the stage history; workspace settings; wrong
-- second-factor codes in a row.

CREATE TABLE workspace_settings (
    workspace_id    text COLLATE "C" NOT NULL,
    key             text COLLATE "C" NOT NULL,
    value           jsonb NOT NULL,
    PRIMARY KEY (workspace_id, key)
);

CREATE TABLE segments (
    workspace_id    text COLLATE "C" NOT NULL,
    id              text COLLATE "C" NOT NULL,
    name            text NOT NULL,
    -- Lower-cased by ciclo; "C" so that the list's order agrees with SQLite's.
    name_key        text COLLATE "C" NOT NULL,
    description     text NOT NULL DEFAULT '',
    kind            text NOT NULL,
    definition      jsonb,
    member_count    bigint NOT NULL DEFAULT 0,
    evaluated_at    timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, id),
    CONSTRAINT segments_name UNIQUE (workspace_id, name_key)
);

CREATE TABLE segment_members (
    workspace_id    text COLLATE "C" NOT NULL,
    segment_id      text COLLATE "C" NOT NULL,
    customer_id     text COLLATE "C" NOT NULL,
    since           timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, segment_id, customer_id)
);
CREATE INDEX segment_members_by_customer ON segment_members (workspace_id, customer_id);

CREATE TABLE segment_counts (
    workspace_id    text COLLATE "C" NOT NULL,
    segment_id      text COLLATE "C" NOT NULL,
    at              timestamptz NOT NULL,
    count           bigint NOT NULL
);
CREATE INDEX segment_counts_by_segment ON segment_counts (workspace_id, segment_id, at);

CREATE TABLE dirty_customers (
    seq             bigserial PRIMARY KEY,
    workspace_id    text COLLATE "C" NOT NULL,
    customer_id     text COLLATE "C" NOT NULL,
    CONSTRAINT dirty_customers_key UNIQUE (workspace_id, customer_id)
);

CREATE TABLE customer_computed (
    workspace_id    text COLLATE "C" NOT NULL,
    customer_id     text COLLATE "C" NOT NULL,
    stage           text,
    stage_since     timestamptz,
    scores          jsonb NOT NULL DEFAULT '{}',
    scores_at       timestamptz,
    PRIMARY KEY (workspace_id, customer_id)
);
CREATE INDEX customer_computed_by_stage ON customer_computed (workspace_id, stage, customer_id);

CREATE TABLE stage_changes (
    -- Insertion order, for a stable history when two changes share a time.
    seq             bigserial PRIMARY KEY,
    workspace_id    text COLLATE "C" NOT NULL,
    customer_id     text COLLATE "C" NOT NULL,
    from_stage      text,
    to_stage        text NOT NULL,
    at              timestamptz NOT NULL
);
CREATE INDEX stage_changes_by_customer ON stage_changes (workspace_id, customer_id, at);
CREATE INDEX stage_changes_by_time ON stage_changes (workspace_id, at);

-- Counting events by name for segments ("performed X in the last 7 days").
CREATE INDEX events_by_name ON events (workspace_id, name, occurred_at);

ALTER TABLE operator_mfa ADD COLUMN failed_attempts bigint NOT NULL DEFAULT 0;
