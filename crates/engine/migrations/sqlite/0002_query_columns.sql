-- Columns for case lists and statistics (v2).
ALTER TABLE cases ADD COLUMN title TEXT NOT NULL DEFAULT '';
-- 1 when the handle deadline was met on time, 0 when late, NULL while not handled.
ALTER TABLE cases ADD COLUMN handle_on_time INTEGER;
CREATE INDEX cases_community ON cases (community);
CREATE INDEX cases_grid ON cases (grid);
CREATE INDEX cases_updated ON cases (updated_at);
