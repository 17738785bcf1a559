-- Several nodes (v28, issue 20): how far a work queue's messages were applied. The
-- readings queue's holder raises its mark in the same transaction as the alarm states a
-- batch changed, so a batch delivered again (its holder died before acknowledging it) is
-- recognised and not applied twice. `queue` names the stream and when it was made.
CREATE TABLE queue_marks (
    queue TEXT   PRIMARY KEY,
    seq   BIGINT NOT NULL
);
