-- Case counts kept in step with the cases, in the same transaction (v7): statistics read
-- this small table instead of grouping every case. Empty string / -1 stand for "none".
CREATE TABLE case_counts (
    state       TEXT    NOT NULL,
    domain      TEXT    NOT NULL,
    subdistrict TEXT    NOT NULL,
    lead        TEXT    NOT NULL,
    on_time     BIGINT  NOT NULL,
    n           BIGINT  NOT NULL,
    PRIMARY KEY (state, domain, subdistrict, lead, on_time)
);
INSERT INTO case_counts (state, domain, subdistrict, lead, on_time, n)
SELECT state, domain, COALESCE(subdistrict, ''), COALESCE(lead_department, ''), COALESCE(handle_on_time, -1), COUNT(*)
FROM cases GROUP BY 1, 2, 3, 4, 5;

