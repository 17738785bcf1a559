-- Evaluation (v19, issue 17): the scheduled monthly reports (考核月报), kept for download
-- as generated — XLSX, CSV and the print-ready HTML page; no personal data is in them.
CREATE TABLE evaluation_reports (
    name       TEXT    PRIMARY KEY,
    created_at BIGINT  NOT NULL,
    xlsx       BYTEA    NOT NULL,
    csv        TEXT    NOT NULL,
    html       TEXT    NOT NULL
);
