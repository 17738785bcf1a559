-- Photos uploaded with reports (v11), addressed by a hash of their bytes.
CREATE TABLE media (
    id           TEXT    PRIMARY KEY,
    content_type TEXT    NOT NULL,
    bytes        BYTEA   NOT NULL,
    created_at   BIGINT  NOT NULL
);
