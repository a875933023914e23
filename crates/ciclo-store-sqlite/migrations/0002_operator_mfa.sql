-- Second factor (TOTP) per operator, with hashed recovery codes.
CREATE TABLE operator_mfa (
    operator_id TEXT PRIMARY KEY NOT NULL,
    totp_secret TEXT NOT NULL,
    enabled_at INTEGER,
    recovery_code_hashes TEXT NOT NULL,
    last_used_step INTEGER,
    created_at INTEGER NOT NULL
);
