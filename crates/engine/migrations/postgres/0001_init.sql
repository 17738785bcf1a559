-- cityos schema v1 (PostgreSQL). Times are i64 milliseconds since the Unix epoch (UTC).
CREATE TABLE cases (
    id              BIGINT PRIMARY KEY,
    number          TEXT    NOT NULL UNIQUE,
    category        TEXT    NOT NULL,
    domain          TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    priority        BIGINT  NOT NULL,
    lon             DOUBLE PRECISION    NOT NULL,
    lat             DOUBLE PRECISION    NOT NULL,
    district        TEXT,
    subdistrict     TEXT,
    community       TEXT,
    grid            TEXT,
    lead_department TEXT,
    channel         TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    due_at          BIGINT,
    overdue         BIGINT  NOT NULL,
    reporters       BIGINT  NOT NULL,
    escalations     BIGINT  NOT NULL,
    version         BIGINT  NOT NULL,
    body            TEXT    NOT NULL
);
CREATE INDEX cases_state_due ON cases (state, due_at);
CREATE INDEX cases_subdistrict ON cases (subdistrict, state);
CREATE INDEX cases_created ON cases (created_at);

-- The log is the truth: append-only, one row per transition.
CREATE TABLE case_log (
    case_id    BIGINT  NOT NULL,
    seq        BIGINT  NOT NULL,
    at         BIGINT  NOT NULL,
    actor      TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    from_state TEXT,
    to_state   TEXT    NOT NULL,
    note       TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    PRIMARY KEY (case_id, seq)
);

CREATE TABLE reports (
    id       BIGINT PRIMARY KEY,
    case_id  BIGINT  NOT NULL,
    channel  TEXT    NOT NULL,
    category TEXT    NOT NULL,
    lon      DOUBLE PRECISION    NOT NULL,
    lat      DOUBLE PRECISION    NOT NULL,
    text     TEXT    NOT NULL,
    contact  TEXT,
    at       BIGINT  NOT NULL
);
CREATE INDEX reports_case ON reports (case_id);

CREATE TABLE tasks (
    case_id    BIGINT  NOT NULL,
    department TEXT    NOT NULL,
    lead       BIGINT  NOT NULL,
    state      TEXT    NOT NULL,
    since      BIGINT  NOT NULL,
    PRIMARY KEY (case_id, department)
);
CREATE INDEX tasks_department ON tasks (department, state);
CREATE FUNCTION cityos_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'case_log is append-only'; END $$;
CREATE TRIGGER case_log_no_change BEFORE UPDATE OR DELETE ON case_log
FOR EACH ROW EXECUTE FUNCTION cityos_log_append_only();
