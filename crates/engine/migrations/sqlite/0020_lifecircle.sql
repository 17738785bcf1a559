-- The life circle (v20): what a district officer uploaded — facility lists (CSV or
-- GeoJSON) and the walking network (GeoJSON lines) — kept as sent, so a restart builds
-- the same model. `name` is the upload's name, or 'network' for the network.
CREATE TABLE lifecircle_uploads (
    name        TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL,
    format      TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    at          INTEGER NOT NULL
);
