-- 为老助餐 (v18): the meals room's canteens, menus, elders, account links and orders,
-- each a JSON body by kind and id; and the elders' meal accounts, append-only.
CREATE TABLE meal_rows (
    kind  TEXT    NOT NULL,
    id    TEXT    NOT NULL,
    body  TEXT    NOT NULL,
    at    BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
-- One entry per (elder, seq): a second write of the same entry fails its transaction,
-- so a retried checkout cannot charge twice.
CREATE TABLE meal_ledger (
    elder      TEXT    NOT NULL,
    seq        BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    kind       TEXT    NOT NULL,
    amount     BIGINT NOT NULL,
    reference  TEXT    NOT NULL,
    PRIMARY KEY (elder, seq)
);
-- The ledger explains every fen: nothing in it is ever changed or removed.
CREATE FUNCTION cityos_meal_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'meal_ledger is append-only'; END $$;
CREATE TRIGGER meal_ledger_no_change BEFORE UPDATE OR DELETE ON meal_ledger
FOR EACH ROW EXECUTE FUNCTION cityos_meal_ledger_append_only();
