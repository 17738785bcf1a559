-- A sub-district's cases newest first, and its intake today, without sorting or
-- scanning all of them (v10).
CREATE INDEX cases_sub_created ON cases (subdistrict, created_at, id);
