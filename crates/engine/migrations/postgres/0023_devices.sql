-- The runtime device registry (v23, issue 22): devices registered, changed or
-- decommissioned through the API. The configuration's device file is the seed; a row
-- here for a seed device overrides it (its position, owner, tags, or its retirement).
-- Ids are never reused: a decommissioned device keeps its row (status 'retired').
CREATE TABLE device_registry (
    id          TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL,
    lon         DOUBLE PRECISION    NOT NULL,
    lat         DOUBLE PRECISION    NOT NULL,
    owner       TEXT,
    tags        TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    at          BIGINT NOT NULL
);
