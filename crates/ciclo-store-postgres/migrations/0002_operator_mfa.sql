-- Second factor (TOTP) per operator, with hashed recovery codes.
CREATE TABLE operator_mfa (
    operator_id TEXT COLLATE "C" PRIMARY KEY,
    totp_secret TEXT NOT NULL,
    enabled_at TIMESTAMPTZ,
    recovery_code_hashes JSONB NOT NULL,
    last_used_step BIGINT,
    created_at TIMESTAMPTZ NOT NULL
);
