-- 为老助餐 (v18): the meals room's canteens, menus, elders, account links and orders,
-- each a JSON body by kind and id; and the elders' meal accounts, append-only.
CREATE TABLE meal_rows (
    kind  TEXT    NOT NULL,
    id    TEXT    NOT NULL,
    body  TEXT    NOT NULL,
    at    INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);
-- One entry per (elder, seq): a second write of the same entry fails its transaction,
-- so a retried checkout cannot charge twice.
CREATE TABLE meal_ledger (
    elder      TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    amount     INTEGER NOT NULL,
    reference  TEXT    NOT NULL,
    PRIMARY KEY (elder, seq)
);
-- The ledger explains every fen: nothing in it is ever changed or removed.
CREATE TRIGGER meal_ledger_no_update BEFORE UPDATE ON meal_ledger
BEGIN SELECT RAISE(ABORT, 'meal_ledger is append-only'); END;
CREATE TRIGGER meal_ledger_no_delete BEFORE DELETE ON meal_ledger
BEGIN SELECT RAISE(ABORT, 'meal_ledger is append-only'); END;
