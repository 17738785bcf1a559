-- Several nodes (v28, issue 20): which of a work queue's messages were applied. The
-- readings queue's holder writes it in the same transaction as the alarm states a batch
-- changed, so a batch delivered again (its holder died before acknowledging it) is
-- recognised and not applied twice. `queue` names the stream and when it was made; `seq`:
-- every message up to it was applied; `above`: those applied beyond it (ranges `a-b`,
-- comma-separated — batches delivered again come back after newer ones).
CREATE TABLE queue_marks (
    queue TEXT   PRIMARY KEY,
    seq   BIGINT NOT NULL,
    above TEXT   NOT NULL DEFAULT ''
);
