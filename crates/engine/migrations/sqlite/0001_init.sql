-- cityos schema v1 (SQLite). Times are i64 milliseconds since the Unix epoch (UTC).
CREATE TABLE cases (
    id              INTEGER PRIMARY KEY,
    number          TEXT    NOT NULL UNIQUE,
    category        TEXT    NOT NULL,
    domain          TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    priority        INTEGER NOT NULL,
    lon             REAL    NOT NULL,
    lat             REAL    NOT NULL,
    district        TEXT,
    subdistrict     TEXT,
    community       TEXT,
    grid            TEXT,
    lead_department TEXT,
    channel         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    due_at          INTEGER,
    overdue         INTEGER NOT NULL,
    reporters       INTEGER NOT NULL,
    escalations     INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    body            TEXT    NOT NULL
);
CREATE INDEX cases_state_due ON cases (state, due_at);
CREATE INDEX cases_subdistrict ON cases (subdistrict, state);
CREATE INDEX cases_created ON cases (created_at);

-- The log is the truth: append-only, one row per transition.
CREATE TABLE case_log (
    case_id    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    from_state TEXT,
    to_state   TEXT    NOT NULL,
    note       TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    PRIMARY KEY (case_id, seq)
);
CREATE TRIGGER case_log_no_update BEFORE UPDATE ON case_log
BEGIN SELECT RAISE(ABORT, 'case_log is append-only'); END;
CREATE TRIGGER case_log_no_delete BEFORE DELETE ON case_log
BEGIN SELECT RAISE(ABORT, 'case_log is append-only'); END;

CREATE TABLE reports (
    id       INTEGER PRIMARY KEY,
    case_id  INTEGER NOT NULL,
    channel  TEXT    NOT NULL,
    category TEXT    NOT NULL,
    lon      REAL    NOT NULL,
    lat      REAL    NOT NULL,
    text     TEXT    NOT NULL,
    contact  TEXT,
    at       INTEGER NOT NULL
);
CREATE INDEX reports_case ON reports (case_id);

CREATE TABLE tasks (
    case_id    INTEGER NOT NULL,
    department TEXT    NOT NULL,
    lead       INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    since      INTEGER NOT NULL,
    PRIMARY KEY (case_id, department)
);
CREATE INDEX tasks_department ON tasks (department, state);
