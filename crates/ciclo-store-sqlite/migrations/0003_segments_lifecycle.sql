-- Segments and lists, their members and count history; the evaluation queue; computed
-- attributes (lifecycle stage, scores) with the stage history; workspace settings; wrong
-- second-factor codes in a row.

CREATE TABLE workspace_settings (
    workspace_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (workspace_id, key)
);

CREATE TABLE segments (
    workspace_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    definition TEXT,
    member_count INTEGER NOT NULL DEFAULT 0,
    evaluated_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id),
    CONSTRAINT segments_name UNIQUE (workspace_id, name_key)
);

CREATE TABLE segment_members (
    workspace_id TEXT NOT NULL,
    segment_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    since INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, segment_id, customer_id)
) WITHOUT ROWID;
CREATE INDEX segment_members_by_customer ON segment_members (workspace_id, customer_id);

CREATE TABLE segment_counts (
    workspace_id TEXT NOT NULL,
    segment_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    count INTEGER NOT NULL
);
CREATE INDEX segment_counts_by_segment ON segment_counts (workspace_id, segment_id, at);

CREATE TABLE dirty_customers (
    seq INTEGER PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    CONSTRAINT dirty_customers_key UNIQUE (workspace_id, customer_id)
);

CREATE TABLE customer_computed (
    workspace_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    stage TEXT,
    stage_since INTEGER,
    scores TEXT NOT NULL DEFAULT '{}',
    scores_at INTEGER,
    PRIMARY KEY (workspace_id, customer_id)
) WITHOUT ROWID;
CREATE INDEX customer_computed_by_stage ON customer_computed (workspace_id, stage, customer_id);

CREATE TABLE stage_changes (
    -- Insertion order, for a stable history when two changes share a time.
    seq INTEGER PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    from_stage TEXT,
    to_stage TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX stage_changes_by_customer ON stage_changes (workspace_id, customer_id, at);
CREATE INDEX stage_changes_by_time ON stage_changes (workspace_id, at);

-- Counting events by name for segments ("performed X in the last 7 days"). It carries
-- customer_seq (a small integer), so that counting per profile reads no event row.
CREATE INDEX events_by_name ON events (workspace_seq, name, timestamp, customer_seq);

ALTER TABLE operator_mfa ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;
