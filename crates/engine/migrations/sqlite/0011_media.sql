-- Photos uploaded with reports (v11), addressed by a hash of their bytes.
CREATE TABLE media (
    id           TEXT    PRIMARY KEY,
    content_type TEXT    NOT NULL,
    bytes        BLOB    NOT NULL,
    created_at   INTEGER NOT NULL
);
