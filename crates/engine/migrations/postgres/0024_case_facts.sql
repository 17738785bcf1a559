-- Evaluation speed (v24, issue 17): each case's log folded so far for the measures
-- (`cityos_core::evaluation::CaseFold` as JSON), written in the batch transaction beside
-- the case and its new log entries (as `case_counts` is), so a period's evaluation reads
-- one small row per case instead of replaying every log. Cases stored before this
-- migration have no row and are folded from their log when evaluated.
CREATE TABLE case_facts (
    case_id    BIGINT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    fold       TEXT    NOT NULL
);
CREATE INDEX case_facts_created ON case_facts (created_at, case_id);
