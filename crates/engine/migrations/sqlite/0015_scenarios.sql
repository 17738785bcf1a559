-- Scenario packs (v15): what an administrator changed through the API, so that a
-- restart runs the same packs in the same state, and the audit trail of every change.

-- Per pack: enabled or not, and the text a reload put in force (NULL: the pack as
-- shipped or read from the scenarios directory).
CREATE TABLE scenario_packs (
    name        TEXT    PRIMARY KEY,
    enabled     INTEGER NOT NULL,
    text        TEXT,
    updated_at  INTEGER NOT NULL
);
-- Every change: enable, disable, reload (ok) and refused reloads (ok = 0, with the
-- problems as a JSON array of "line:column: message").
CREATE TABLE scenario_audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    pack      TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    version   TEXT    NOT NULL,
    ok        INTEGER NOT NULL,
    problems  TEXT    NOT NULL
);
CREATE INDEX scenario_audit_pack ON scenario_audit (pack, id);
