-- Several nodes on one database (issue 20).
-- Ids come from sequences, reserved in blocks (a sequence's increment is its block size):
-- every node's engine takes `nextval` and owns [value, value + increment) alone.
CREATE SEQUENCE case_ids INCREMENT BY 64 MINVALUE 1;
CREATE SEQUENCE report_ids INCREMENT BY 64 MINVALUE 1;
CREATE SEQUENCE event_ids INCREMENT BY 1024 MINVALUE 1;
SELECT setval('case_ids', (SELECT COALESCE(MAX(id), 0) FROM cases) + 1, false);
SELECT setval('report_ids', (SELECT COALESCE(MAX(id), 0) FROM reports) + 1, false);
SELECT setval('event_ids', (SELECT COALESCE(MAX(gseq), 0) FROM case_log) + 1, false);

-- Partitions of case state (by sub-district unless configured otherwise), each held by
-- one node under a lease. Times are the database's clock (ms since the epoch), so the
-- nodes' own clocks never decide who holds what. `epoch` grows at every change of owner:
-- a batch commits only while its node holds the partition at the epoch it decided under.
CREATE TABLE partition_leases (
    partition  TEXT   PRIMARY KEY,
    owner      TEXT   NOT NULL,
    address    TEXT   NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- The nodes seen lately (their share of partitions is the partitions over the live nodes).
CREATE TABLE cluster_nodes (
    node    TEXT   PRIMARY KEY,
    address TEXT   NOT NULL,
    seen_at BIGINT NOT NULL
);
