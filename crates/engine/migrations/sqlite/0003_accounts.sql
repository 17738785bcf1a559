-- Accounts and idempotent POSTs (v3).
CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    department    TEXT,
    scope         TEXT,
    created_at    INTEGER NOT NULL
);
-- The first answer to a POST with an Idempotency-Key, replayed to retries.
CREATE TABLE idempotency (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
