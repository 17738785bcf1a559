-- Overdue cases counted with the rest (v9): the deadline timer marks a case overdue, so
-- the statistics read the overdue figure from the maintained counts too.
DROP TABLE case_counts;
CREATE TABLE case_counts (
    state       TEXT    NOT NULL,
    domain      TEXT    NOT NULL,
    subdistrict TEXT    NOT NULL,
    lead        TEXT    NOT NULL,
    on_time     INTEGER NOT NULL,
    overdue     INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (state, domain, subdistrict, lead, on_time, overdue)
);
INSERT INTO case_counts (state, domain, subdistrict, lead, on_time, overdue, n)
SELECT state, domain, COALESCE(subdistrict, ''), COALESCE(lead_department, ''), COALESCE(handle_on_time, -1), CASE WHEN overdue <> 0 THEN 1 ELSE 0 END, COUNT(*)
FROM cases GROUP BY 1, 2, 3, 4, 5, 6;
