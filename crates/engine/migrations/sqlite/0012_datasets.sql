-- The data end's registry (v12): imported datasets with their owner, columns and
-- sensitivity; the rows are kept as one JSON array (datasets are small tables).
CREATE TABLE datasets (
    name         TEXT    PRIMARY KEY,
    owner        TEXT    NOT NULL,
    sensitivity  TEXT    NOT NULL,
    columns      TEXT    NOT NULL,
    rows         TEXT    NOT NULL,
    row_count    INTEGER NOT NULL,
    imported_at  INTEGER NOT NULL
);
