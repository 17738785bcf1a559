-- Vital signs (v13): each indicator's value rolled up per region into 1-minute and
-- 1-hour buckets (step in seconds, bucket start in ms), and the CAP public warnings
-- published, each kept as the XML document that was sent.
CREATE TABLE indicator_rollups (
    indicator  TEXT    NOT NULL,
    region     TEXT    NOT NULL,
    step       BIGINT NOT NULL,
    bucket     BIGINT NOT NULL,
    n          BIGINT NOT NULL,
    sum        DOUBLE PRECISION NOT NULL,
    min        DOUBLE PRECISION NOT NULL,
    max        DOUBLE PRECISION NOT NULL,
    last       DOUBLE PRECISION NOT NULL,
    last_at    BIGINT NOT NULL,
    PRIMARY KEY (indicator, region, step, bucket)
);
CREATE TABLE cap_messages (
    identifier   TEXT    PRIMARY KEY,
    fingerprint  TEXT    NOT NULL,
    msg_type     TEXT    NOT NULL,
    sent         BIGINT NOT NULL,
    headline     TEXT    NOT NULL,
    xml          TEXT    NOT NULL
);
CREATE INDEX cap_messages_sent ON cap_messages (sent);
CREATE INDEX cap_messages_fingerprint ON cap_messages (fingerprint, sent);
