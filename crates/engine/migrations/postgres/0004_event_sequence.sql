-- A global, ordered event number on every log entry (v4): the live event stream's cursor.
ALTER TABLE case_log ADD COLUMN gseq BIGINT;
CREATE INDEX case_log_gseq ON case_log (gseq);
