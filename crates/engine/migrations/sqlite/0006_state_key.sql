-- Per-state ordered scans for case lists filtered by several states (v6).
CREATE INDEX cases_state_key ON cases (state, due_key, id);
