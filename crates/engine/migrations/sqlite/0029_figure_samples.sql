-- The command centre's headline figures over time (v29, issue 21): one sample per
-- 5-minute bucket (whole district: open cases, those marked overdue, handled cases and
-- those handled on time), so the centre can compare with the same time yesterday.
CREATE TABLE figure_samples (
    bucket     BIGINT PRIMARY KEY,
    at         BIGINT NOT NULL,
    open_cases BIGINT NOT NULL,
    overdue    BIGINT NOT NULL,
    handled    BIGINT NOT NULL,
    on_time    BIGINT NOT NULL
);
