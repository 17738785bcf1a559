-- Index-backed keyset pagination (v5): the deadline sort key is a real, non-null column.
ALTER TABLE cases ADD COLUMN due_key INTEGER NOT NULL DEFAULT 9223372036854775807;
UPDATE cases SET due_key = COALESCE(due_at, 9223372036854775807);
CREATE INDEX cases_due_key ON cases (due_key, id);
CREATE INDEX cases_sub_due ON cases (subdistrict, due_key, id);
CREATE INDEX cases_created_id ON cases (created_at, id);
CREATE INDEX cases_updated_id ON cases (updated_at, id);
