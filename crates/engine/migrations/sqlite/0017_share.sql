-- Data sharing (v17): the tamper-evident audit trail and the grants of datasets.

-- The audit trail: append-only, each entry holding the hash of the one before it
-- (cityos_core::audit). seq is given by the writer, 1, 2, 3, … without gaps.
CREATE TABLE audit_log (
    seq      INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    actor    TEXT   NOT NULL,
    action   TEXT   NOT NULL,
    subject  TEXT   NOT NULL,
    detail   TEXT   NOT NULL,
    prev     TEXT   NOT NULL,
    hash     TEXT   NOT NULL
);
-- A department's (or machine's) access to columns of another's dataset: requested,
-- then approved or refused by the owner; an approved grant may be revoked.
CREATE TABLE grants (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset       TEXT   NOT NULL,
    consumer      TEXT   NOT NULL,
    columns       TEXT   NOT NULL,
    purpose       TEXT   NOT NULL,
    until         INTEGER NOT NULL,
    unmask        INTEGER NOT NULL,
    state         TEXT   NOT NULL,
    requested_by  TEXT   NOT NULL,
    requested_at  INTEGER NOT NULL,
    decided_by    TEXT,
    decided_at    INTEGER,
    reason        TEXT   NOT NULL
);
CREATE INDEX grants_dataset ON grants (dataset, consumer);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
-- The case log chained per case: each entry's chain is the hash of the case's previous
-- entry's chain and this entry (cityos_core::audit::log_link); NULL for entries written
-- before version 17 (a case's chain starts after them).
ALTER TABLE case_log ADD COLUMN chain TEXT;
