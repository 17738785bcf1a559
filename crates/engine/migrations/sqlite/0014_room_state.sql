-- The rooms' live state (v14), so that a restart (or another node) continues exactly.
-- Written on change only: alarm transitions, alert transitions, silences, case links.
-- The CAP chain of each alert is read back from cap_messages.

-- Per (device, rule): the sensing alarm's state (normal, pending or firing, since when)
-- and the case its firing filed.
CREATE TABLE alarm_states (
    device   TEXT    NOT NULL,
    rule     TEXT    NOT NULL,
    state    TEXT    NOT NULL,
    since    INTEGER NOT NULL,
    case_id  INTEGER,
    PRIMARY KEY (device, rule)
);
-- Per alert fingerprint (rule@region): pending or firing, since when, at which level,
-- the last value, and whether its firing was told (its all-clear will be too).
CREATE TABLE alert_states (
    fingerprint  TEXT    PRIMARY KEY,
    rule         TEXT    NOT NULL,
    region       TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    since        INTEGER NOT NULL,
    level        TEXT    NOT NULL,
    value        REAL,
    told         INTEGER NOT NULL
);
-- Silences of alert rules (an ended one keeps its row: ids are never reused).
CREATE TABLE silences (
    id       INTEGER PRIMARY KEY,
    rule     TEXT    NOT NULL,
    region   TEXT    NOT NULL,
    owner    TEXT    NOT NULL,
    reason   TEXT    NOT NULL,
    ends_at  INTEGER NOT NULL
);
-- The case each alert filed.
CREATE TABLE alert_cases (
    fingerprint  TEXT    PRIMARY KEY,
    case_id      INTEGER NOT NULL
);
-- The open case each data rule raised per subject (lone-elder rule: per household).
CREATE TABLE data_rule_cases (
    rule     TEXT    NOT NULL,
    subject  TEXT    NOT NULL,
    case_id  INTEGER NOT NULL,
    PRIMARY KEY (rule, subject)
);
